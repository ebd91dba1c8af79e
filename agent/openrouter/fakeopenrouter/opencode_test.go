package fakeopenrouter

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// opencodeBinary finds the pinned OpenCode (test/tools) from this package's
// directory; "" when it is not installed.
func opencodeBinary() string {
	p, err := filepath.Abs("../../../test/tools/node_modules/.bin/opencode")
	if err != nil {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// TestScriptDrivesRealOpenCode runs the real OpenCode agent (`opencode
// run`) offline against the fake in scripted agent mode, as
// shared/specs/opencode-offline.md describes: the scripted write, edit and
// bash steps must happen in the project, and the final text must come
// back.
func TestScriptDrivesRealOpenCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real OpenCode binary")
	}
	bin := opencodeBinary()
	if bin == "" {
		t.Skip("OpenCode is not installed in test/tools (npm ci there)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("OpenCode needs git on PATH")
	}
	root := t.TempDir()
	home := filepath.Join(root, "home")
	proj := filepath.Join(root, "proj")
	cfgDir := filepath.Join(home, ".config", "opencode")
	for _, d := range []string{proj, filepath.Join(cfgDir, "node_modules")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Pre-seed the config dir so OpenCode skips its background npm install
	// (opencode-offline.md §1.4).
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(cfgDir, "package.json"), `{"dependencies":{"@opencode-ai/plugin":"1.18.33"}}`)
	write(filepath.Join(cfgDir, "package-lock.json"), `{"name":"opencode","lockfileVersion":3,"requires":true,"packages":{"":{"dependencies":{"@opencode-ai/plugin":"1.18.33"}}}}`)

	script := &Script{
		Steps: []Step{
			{Tool: "write", Args: json.RawMessage(`{"filePath":"hello.txt","content":"hello from fake llm\nline2\n"}`)},
			{Tool: "edit", Args: json.RawMessage(`{"filePath":"hello.txt","oldString":"line2","newString":"line2 edited"}`)},
			{Tool: "bash", Args: json.RawMessage(`{"command":"echo out-from-bash","description":"Print a line"}`)},
		},
		FinalText: "All done by the script.",
	}
	srv := New(t, Options{APIKey: "fake-key", Script: script})

	config, _ := json.Marshal(map[string]any{
		"autoupdate": false, "share": "disabled", "lsp": false, "formatter": false,
		"enabled_providers": []string{"fake"}, "model": "fake/fake-model", "small_model": "fake/fake-model",
		"provider": map[string]any{"fake": map[string]any{
			"npm": "@ai-sdk/openai-compatible", "name": "Fake OpenRouter",
			"options": map[string]any{"baseURL": srv.URL, "apiKey": "fake-key"},
			"models": map[string]any{"fake-model": map[string]any{"name": "Fake Model", "tool_call": true,
				"limit": map[string]any{"context": 128000, "output": 4096}}},
		}},
		"permission": map[string]any{"edit": "allow", "bash": "allow", "webfetch": "deny", "external_directory": "deny"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--format", "json", "Create hello.txt please")
	cmd.Dir = proj
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"OPENCODE_DISABLE_AUTOUPDATE=1", "OPENCODE_DISABLE_MODELS_FETCH=1", "OPENCODE_DISABLE_SHARE=1",
		"OPENCODE_DISABLE_LSP_DOWNLOAD=1", "OPENCODE_DISABLE_DEFAULT_PLUGINS=1", "OPENCODE_DISABLE_EXTERNAL_SKILLS=1",
		"OPENCODE_DISABLE_CLAUDE_CODE=1", "OPENCODE_CONFIG_CONTENT=" + string(config),
		"npm_config_registry=http://127.0.0.1:9/", // nothing may reach the network
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opencode run: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(proj, "hello.txt"))
	if err != nil || string(got) != "hello from fake llm\nline2 edited\n" {
		t.Fatalf("hello.txt = %q (%v)\nopencode output:\n%s", got, err, out)
	}
	if !strings.Contains(string(out), "All done by the script.") || !strings.Contains(string(out), "out-from-bash") {
		t.Fatalf("final text or bash output missing from opencode's output:\n%s", out)
	}

	// What the fake saw: a title request (no tools) and, for the agent,
	// steps 0..3 with k growing by one each time.
	var ks []int
	titles := 0
	for _, r := range srv.ChatRequests() {
		if len(r.Tools) == 0 {
			titles++
			continue
		}
		ks = append(ks, StepIndex(r))
	}
	if titles != 1 || len(ks) != 4 || ks[0] != 0 || ks[1] != 1 || ks[2] != 2 || ks[3] != 3 {
		t.Fatalf("title requests %d, agent steps %v", titles, ks)
	}
	for _, r := range srv.Requests() {
		if r.Header.Get("Authorization") != "Bearer fake-key" {
			t.Fatalf("request without the configured key: %v", r.Header)
		}
	}
}
