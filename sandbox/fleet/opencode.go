package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// OpenCodePrefix is where [FindOrInstallOpenCode] installs OpenCode,
// relative to the sandbox user's HOME (npm's --prefix: the binary ends up
// in <prefix>/bin/opencode).
const OpenCodePrefix = ".opencode-lsp/npm"

// OpenCodeInstall says how to find or install OpenCode in a sandbox.
type OpenCodeInstall struct {
	// Candidates are tried in order: names looked up in the sandbox's PATH
	// or paths (the opencode binary setting, then "opencode"); the
	// install prefix's binary is always tried last.
	Candidates []string
	// Version is the pinned opencode-ai version to install when none is
	// found ("" = never install).
	Version string
	// Env is added to the commands' environment.
	Env map[string]string
	// Timeout bounds the install (default 10 minutes).
	Timeout time.Duration
	// Progress, when set, is told when an install starts.
	Progress func(msg string)
}

// OpenCodeFound is the OpenCode a sandbox has.
type OpenCodeFound struct {
	// Path is the binary's absolute path inside the sandbox.
	Path string
	// Version is what `opencode --version` printed.
	Version string
	// Installed is set when this call installed it.
	Installed bool
}

// ErrOpenCodeMissing: OpenCode is not in the sandbox and could not be
// installed; the error text says why and what to do.
var ErrOpenCodeMissing = errors.New("OpenCode is not installed in the sandbox")

// FindOrInstallOpenCode finds OpenCode in sb (the first candidate that
// `opencode --version` runs for) and, when there is none and in.Version is
// set, installs it with `npm install -g --prefix ~/.opencode-lsp/npm
// opencode-ai@<version>` (with network) and checks it again. Cloud
// sandboxes need it because their commands cannot see the daemon's
// binary.
func FindOrInstallOpenCode(ctx context.Context, sb sandbox.Sandbox, in OpenCodeInstall) (OpenCodeFound, error) {
	found, err := findOpenCode(ctx, sb, in)
	if err == nil || !errors.Is(err, ErrOpenCodeMissing) || in.Version == "" {
		return found, err
	}
	if in.Progress != nil {
		in.Progress("installing OpenCode " + in.Version + " in the sandbox")
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	script := "set -e\n" +
		"command -v npm >/dev/null 2>&1 || { echo 'opencode-lsp: npm is not installed in the sandbox' >&2; exit 97; }\n" +
		"npm install -g --no-fund --no-audit --prefix \"$HOME/" + OpenCodePrefix + "\" " + shellQuote("opencode-ai@"+in.Version) + "\n"
	var out bytes.Buffer
	st, err := sb.Exec(ctx, sandbox.Cmd{Shell: script, Env: in.Env, Network: true, Timeout: timeout, Stdout: &out, Stderr: &out, OutputLimit: 64 << 10})
	if err != nil {
		return OpenCodeFound{}, fmt.Errorf("installing OpenCode %s in the sandbox: %w", in.Version, err)
	}
	if st.Code == 97 {
		return OpenCodeFound{}, fmt.Errorf("%w and npm is not there to install it: use a sandbox image with Node.js, or with `opencode` on its PATH, or point the opencode binary setting at it", ErrOpenCodeMissing)
	}
	if st.Code != 0 {
		return OpenCodeFound{}, fmt.Errorf("%w: `npm install -g opencode-ai@%s` failed (exit %d): %s", ErrOpenCodeMissing, in.Version, st.Code, lastLines(out.String(), 5))
	}
	found, err = findOpenCode(ctx, sb, in)
	if err != nil {
		return found, fmt.Errorf("after installing opencode-ai@%s: %w", in.Version, err)
	}
	found.Installed = true
	return found, nil
}

// findOpenCode runs one script that tries every candidate.
func findOpenCode(ctx context.Context, sb sandbox.Sandbox, in OpenCodeInstall) (OpenCodeFound, error) {
	var b strings.Builder
	b.WriteString("for c in")
	for _, c := range in.Candidates {
		if c != "" {
			b.WriteString(" " + shellQuote(c))
		}
	}
	b.WriteString(" \"$HOME/" + OpenCodePrefix + "/bin/opencode\"; do\n")
	b.WriteString("  p=$(command -v \"$c\" 2>/dev/null) || continue\n")
	b.WriteString("  v=$(\"$p\" --version 2>/dev/null) || continue\n")
	b.WriteString("  printf 'opencode-lsp-found\\t%s\\t%s\\n' \"$p\" \"$v\"; exit 0\n")
	b.WriteString("done\nexit 3\n")
	var out bytes.Buffer
	st, err := sb.Exec(ctx, sandbox.Cmd{Shell: b.String(), Env: in.Env, Timeout: 2 * time.Minute, Stdout: &out, OutputLimit: 64 << 10})
	if err != nil {
		return OpenCodeFound{}, fmt.Errorf("looking for OpenCode in the sandbox: %w", err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "opencode-lsp-found\t"); ok && st.Code == 0 {
			path, version, _ := strings.Cut(rest, "\t")
			return OpenCodeFound{Path: path, Version: strings.TrimSpace(version)}, nil
		}
	}
	return OpenCodeFound{}, fmt.Errorf("%w (tried %s and ~/%s/bin/opencode)", ErrOpenCodeMissing, strings.Join(nonEmpty(in.Candidates), ", "), OpenCodePrefix)
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return []string{"(no name)"}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
