package opencode

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// keyFile is where the launcher stores the API key, relative to OpenCode's
// private HOME; the provider config reads it with {file:~/...}.
const keyFile = ".opencode-lsp-key"

// offlineEnv switches off everything of OpenCode's that would reach
// the network or the user's own set-up (shared/specs/opencode-offline.md
// §1.1).
var offlineEnv = map[string]string{
	"OPENCODE_DISABLE_AUTOUPDATE":      "1",
	"OPENCODE_DISABLE_MODELS_FETCH":    "1",
	"OPENCODE_DISABLE_SHARE":           "1",
	"OPENCODE_DISABLE_LSP_DOWNLOAD":    "1",
	"OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
	"OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
	"OPENCODE_DISABLE_CLAUDE_CODE":     "1",
}

// configContent is OPENCODE_CONFIG_CONTENT: OpenRouter as an
// OpenAI-compatible provider (bundled with OpenCode, so nothing is
// installed at run time) with only the configured model, the permission
// policy, and every background feature off. OpenCode merges it last, over
// any opencode.json of the project. It holds no secret.
func configContent(c Config) string {
	perm := map[string]any{
		"edit":               string(c.Permissions.Edit.or(Ask)),
		"bash":               string(c.Permissions.Bash.or(Ask)),
		"webfetch":           string(c.Permissions.WebFetch.or(Ask)),
		"external_directory": string(Deny),
	}
	model := ProviderID + "/" + c.Model
	cfg := map[string]any{
		"$schema":    "https://opencode.ai/config.json",
		"autoupdate": false,
		"share":      "disabled",
		// Snapshots (a private git store of every step) feed OpenCode's own
		// diff and revert, which the driver does not use: the harvest diffs
		// the working copy. Off, each tool step is several hundred ms faster.
		"snapshot":          false,
		"lsp":               false,
		"formatter":         false,
		"enabled_providers": []string{ProviderID},
		"model":             model,
		"small_model":       model,
		"provider": map[string]any{
			ProviderID: map[string]any{
				"npm":  "@ai-sdk/openai-compatible",
				"name": "OpenRouter",
				"options": map[string]any{
					"baseURL": c.BaseURL,
					"apiKey":  "{file:~/" + keyFile + "}",
				},
				"models": map[string]any{
					c.Model: map[string]any{
						"name":      c.Model,
						"tool_call": true,
						"limit":     map[string]any{"context": c.ContextLimit, "output": c.OutputLimit},
					},
				},
			},
		},
		"permission": perm,
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

// launchScript is the shell the sandbox runs: it makes a private HOME for
// OpenCode (in $TMPDIR, /tmp or $HOME, the first writable one), writes the
// key file there (0600) and the pre-seeded config dir that stops OpenCode's
// background npm install (offline spec §1.4), removes the key from the
// environment, prints the HOME it chose, and execs `opencode serve`.
//
// Exit codes 97 (no writable HOME) and 98 (binary not found) are the
// launcher's own.
func launchScript(candidates []string, homeName, hostname string, port int) string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	b.WriteString("bin=\nfor c in")
	for _, c := range candidates {
		b.WriteString(" " + shellQuote(c))
	}
	b.WriteString("; do if command -v \"$c\" >/dev/null 2>&1; then bin=$(command -v \"$c\"); break; fi; done\n")
	b.WriteString("if [ -z \"$bin\" ]; then echo 'opencode-lsp: opencode binary not found' >&2; exit 98; fi\n")
	b.WriteString("h=\nfor d in \"${TMPDIR:-}\" /tmp \"${HOME:-}\"; do\n")
	b.WriteString("  [ -n \"$d\" ] || continue\n")
	b.WriteString("  if mkdir -p -m 700 \"$d/" + homeName + "\" 2>/dev/null && [ -w \"$d/" + homeName + "\" ]; then h=\"$d/" + homeName + "\"; break; fi\ndone\n")
	b.WriteString("if [ -z \"$h\" ]; then echo 'opencode-lsp: no writable directory for the OpenCode home' >&2; exit 97; fi\n")
	b.WriteString("umask 077\n")
	b.WriteString("mkdir -p \"$h/config/opencode/node_modules\" \"$h/data\" \"$h/cache\" \"$h/state\"\n")
	b.WriteString("printf '%s' \"$OPENCODE_LSP_KEY\" > \"$h/" + keyFile + "\"\n")
	b.WriteString("unset OPENCODE_LSP_KEY\n")
	b.WriteString("printf '%s\\n' " + shellQuote(`{"dependencies":{"@opencode-ai/plugin":"`+TestedVersion+`"}}`) + " > \"$h/config/opencode/package.json\"\n")
	b.WriteString("printf '%s\\n' " + shellQuote(`{"name":"opencode","lockfileVersion":3,"requires":true,"packages":{"":{"dependencies":{"@opencode-ai/plugin":"`+TestedVersion+`"}}}}`) + " > \"$h/config/opencode/package-lock.json\"\n")
	b.WriteString("umask 022\n")
	b.WriteString("export HOME=\"$h\" XDG_CONFIG_HOME=\"$h/config\" XDG_DATA_HOME=\"$h/data\" XDG_CACHE_HOME=\"$h/cache\" XDG_STATE_HOME=\"$h/state\"\n")
	b.WriteString("echo \"" + homeMarker + "$h\"\n")
	b.WriteString("exec \"$bin\" serve --port " + strconv.Itoa(port) + " --hostname " + shellQuote(hostname) + "\n")
	return b.String()
}

// homeMarker starts the launcher's line naming the HOME it chose.
const homeMarker = "opencode-lsp home: "

// listeningMarker starts OpenCode's readiness line on stdout.
const listeningMarker = "opencode server listening on "

// launchEnv is the environment of the launcher (added to the sandbox's
// minimal one).
func launchEnv(c Config, root, password string) map[string]string {
	env := make(map[string]string, len(offlineEnv)+5)
	for k, v := range offlineEnv {
		env[k] = v
	}
	// OpenCode takes its project folder from PWD, not from its working
	// directory: both must be the working copy.
	env["PWD"] = root
	env["OPENCODE_CONFIG_CONTENT"] = configContent(c)
	env["OPENCODE_SERVER_PASSWORD"] = password
	env["OPENCODE_LSP_KEY"] = c.APIKey
	return env
}

// shellQuote quotes s for POSIX sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
