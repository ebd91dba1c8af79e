package daytona

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// maxInlineScript is the longest base64 script put in a process/execute
// command line; Linux caps one argument at 128 KiB. Longer scripts are
// uploaded first.
const maxInlineScript = 96 << 10

// script runs a POSIX sh script with process/execute. The daemon splits
// commands on spaces and runs no shell (corrections §4), so the script
// travels base64-encoded: `sh -c "echo <b64> | base64 -d | sh"`. It is
// wrapped in `{ ... } </dev/null` so the shell reads all of it before running
// anything and no command can read the rest of it from stdin. It returns the
// combined output; a non-zero exit is an error naming op.
func (s *Sandbox) script(ctx context.Context, op, script string, timeout time.Duration) (string, error) {
	code, out, err := s.scriptCode(ctx, op, script, timeout)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return out, &Error{Op: op + " in sandbox", Sandbox: s.id,
			Message: fmt.Sprintf("exit code %d: %s", code, strings.TrimSpace(lastLines(out, 5)))}
	}
	return out, nil
}

func (s *Sandbox) scriptCode(ctx context.Context, op, script string, timeout time.Duration) (int, string, error) {
	full := "{\n" + script + "\n} </dev/null\n"
	enc := base64.StdEncoding.EncodeToString([]byte(full))
	if len(enc) <= maxInlineScript {
		return s.tb.execute(ctx, op+" in sandbox", `sh -c "echo `+enc+` | base64 -d | sh"`, "", timeout)
	}
	name := "script-" + randHex(8) + ".sh"
	dir := s.state + "/tmp"
	if err := s.tb.bulkUpload(ctx, []uploadFile{bytesFile(dir+"/"+name, []byte(full))}); err != nil {
		return 0, "", err
	}
	return s.tb.execute(ctx, op+" in sandbox", `sh -c "sh `+name+`; r=$?; rm -f `+name+`; exit $r"`, dir, timeout)
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			n--
			if n == 0 {
				return s[i+1:]
			}
		}
	}
	return s
}

func bytesFile(p string, b []byte) uploadFile {
	return uploadFile{Path: p, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// relPath checks a workspace-relative slash path and returns it cleaned
// ("." for the root). Absolute paths and paths leaving the root are refused
// with sandbox.ErrPathEscape.
func relPath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path %q contains NUL", p)
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") && strings.HasPrefix(p, "\\") {
		return "", fmt.Errorf("%q: %w", p, sandbox.ErrPathEscape)
	}
	c := path.Clean("/" + p)
	// Clean("/"+p) hides ".." that leave the root; compare with the plain
	// clean to detect them.
	if pc := path.Clean(p); pc == ".." || strings.HasPrefix(pc, "../") {
		return "", fmt.Errorf("%q: %w", p, sandbox.ErrPathEscape)
	}
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
}

// Outcomes of the path checks the scripts below print.
const (
	checkOK      = "ok"
	checkEscape  = "escape"
	checkMissing = "missing"
	checkNotFile = "notfile"
	checkNotDir  = "notdir"
)

// checkScript prints where rel leads once symlinks are resolved: escape when
// outside the working copy, missing, notfile (want a file) or notdir (want a
// directory), else ok.
func (s *Sandbox) checkScript(rel string, wantDir bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "R=$(cd %s 2>/dev/null && pwd -P) || { echo %s; exit 0; }\n", shq(s.root), checkMissing)
	fmt.Fprintf(&b, "t=$(realpath -m -- %s 2>/dev/null) || { echo %s; exit 0; }\n", shq(s.root+"/"+rel), checkMissing)
	fmt.Fprintf(&b, "case \"$t\" in \"$R\"|\"$R\"/*) ;; *) echo %s; exit 0;; esac\n", checkEscape)
	if wantDir {
		fmt.Fprintf(&b, "[ -d \"$t\" ] || { [ -e \"$t\" ] && echo %s || echo %s; exit 0; }\n", checkNotDir, checkMissing)
	} else {
		fmt.Fprintf(&b, "[ -f \"$t\" ] || { [ -e \"$t\" ] && echo %s || echo %s; exit 0; }\n", checkNotFile, checkMissing)
	}
	fmt.Fprintf(&b, "echo %s\n", checkOK)
	return b.String()
}

// ReadFile returns a file of the working copy. A path that leaves the working
// copy, also through a symlink, is refused with an error wrapping
// sandbox.ErrPathEscape; a missing file gives one wrapping
// sandbox.ErrNotFound. The symlink check and the download run concurrently.
func (s *Sandbox) ReadFile(ctx context.Context, name string) ([]byte, error) {
	const op = "read file"
	if err := s.enter(); err != nil {
		return nil, s.opErr(op, err)
	}
	defer s.running.Done()
	rel, err := relPath(name)
	if err != nil {
		return nil, s.opErr(op, err)
	}
	if rel == "." {
		return nil, s.opErr(op, fmt.Errorf("%q is the working copy's root", name))
	}
	full := s.root + "/" + rel
	var (
		wg      sync.WaitGroup
		files   map[string][]byte
		failed  map[string]*Error
		dlErr   error
		check   string
		checkEr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		files, failed, dlErr = s.tb.bulkDownload(ctx, []string{full})
	}()
	check, checkEr = s.script(ctx, op, s.checkScript(rel, false), time.Minute)
	wg.Wait()
	if checkEr != nil {
		return nil, s.opErr(op, checkEr)
	}
	switch lastLines(check, 1) {
	case checkOK:
	case checkEscape:
		return nil, s.opErr(op, fmt.Errorf("%q: %w", name, sandbox.ErrPathEscape))
	case checkMissing:
		return nil, s.opErr(op, fmt.Errorf("%q: %w", name, sandbox.ErrNotFound))
	case checkNotFile:
		return nil, s.opErr(op, fmt.Errorf("%q is not a regular file", name))
	default:
		return nil, s.opErr(op, fmt.Errorf("unexpected answer of the path check: %q", check))
	}
	if dlErr != nil {
		return nil, s.opErr(op, dlErr)
	}
	if e, ok := failed[full]; ok {
		return nil, s.opErr(op, fmt.Errorf("%q: %w", name, e))
	}
	data, ok := files[full]
	if !ok {
		return nil, s.opErr(op, fmt.Errorf("%q: the download has no part for it", name))
	}
	return data, nil
}

// WriteFile writes a file of the working copy, creating parent directories.
// The content is uploaded to the provider's state directory, then moved into
// place by a script that first checks that the target, its symlinks
// resolved, stays inside the working copy. mode 0 means 0644.
func (s *Sandbox) WriteFile(ctx context.Context, name string, data []byte, mode fs.FileMode) error {
	const op = "write file"
	if err := s.enter(); err != nil {
		return s.opErr(op, err)
	}
	defer s.running.Done()
	rel, err := relPath(name)
	if err != nil {
		return s.opErr(op, err)
	}
	if rel == "." {
		return s.opErr(op, fmt.Errorf("%q is the working copy's root", name))
	}
	perm := mode.Perm()
	if perm == 0 {
		perm = 0o644
	}
	tmp := s.state + "/tmp/write-" + randHex(8)
	if err := s.tb.bulkUpload(ctx, []uploadFile{bytesFile(tmp, data)}); err != nil {
		return s.opErr(op, err)
	}
	full := s.root + "/" + rel
	var b strings.Builder
	fmt.Fprintf(&b, "T=%s\n", shq(tmp))
	fmt.Fprintf(&b, "R=$(cd %s 2>/dev/null && pwd -P) || { rm -f \"$T\"; echo %s; exit 0; }\n", shq(s.root), checkMissing)
	fmt.Fprintf(&b, "t=$(realpath -m -- %s 2>/dev/null) || { rm -f \"$T\"; echo %s; exit 0; }\n", shq(full), checkMissing)
	fmt.Fprintf(&b, "case \"$t\" in \"$R\"/*) ;; *) rm -f \"$T\"; echo %s; exit 0;; esac\n", checkEscape)
	fmt.Fprintf(&b, "[ -d \"$t\" ] && { rm -f \"$T\"; echo %s; exit 0; }\n", checkNotFile)
	fmt.Fprintf(&b, "mkdir -p -- \"$(dirname -- \"$t\")\" && chmod %o \"$T\" && mv -f -- \"$T\" \"$t\" || { rm -f \"$T\"; exit 1; }\n", perm)
	fmt.Fprintf(&b, "echo %s\n", checkOK)
	out, err := s.script(ctx, op, b.String(), time.Minute)
	if err != nil {
		return s.opErr(op, err)
	}
	switch lastLines(out, 1) {
	case checkOK:
		return nil
	case checkEscape:
		return s.opErr(op, fmt.Errorf("%q: %w", name, sandbox.ErrPathEscape))
	case checkNotFile:
		return s.opErr(op, fmt.Errorf("%q is a directory", name))
	default:
		return s.opErr(op, fmt.Errorf("unexpected answer: %q", out))
	}
}

var errNotDir = errors.New("not a directory")
