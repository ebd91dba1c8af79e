package lsp_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
	"github.com/opencode-lsp/opencode-lsp/sandbox/fleet"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

const (
	cloudE2BKey     = "e2b_SENTINEL_e2b_key_0123456789abcdef"
	cloudDaytonaKey = "dtn_SENTINEL_daytona_key_0123456789ab"
)

// cloudFakes are the two cloud fakes and the server environment that points
// the daemon's real providers at them (the services' own variables).
type cloudFakes struct {
	e2b     *fakee2b.Server
	daytona *fakedaytona.Server
	env     map[string]string
}

func newCloudFakes(t *testing.T) *cloudFakes {
	t.Helper()
	f := &cloudFakes{e2b: fakee2b.New(t, fakee2b.Options{APIKey: cloudE2BKey})}
	var err error
	if f.daytona, err = fakedaytona.New(fakedaytona.Options{APIKey: cloudDaytonaKey}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.daytona.Close() })
	f.env = map[string]string{
		"E2B_API_KEY": cloudE2BKey, "E2B_API_URL": f.e2b.APIURL, "E2B_SANDBOX_URL": f.e2b.SandboxURL, "E2B_DOMAIN": f.e2b.Domain,
		"DAYTONA_API_KEY": cloudDaytonaKey, "DAYTONA_API_URL": f.daytona.APIURL(),
		"XDG_STATE_HOME": t.TempDir(),
	}
	return f
}

func (f *cloudFakes) live() int { return len(f.e2b.SandboxIDs()) + len(f.daytona.SandboxIDs()) }

// cloudEditor starts an editor whose server builds the real providers from
// env (no provider factory), with settings init.
// The local sandbox keeps its state in a temporary directory.
func cloudEditor(t *testing.T, root string, env map[string]string, init map[string]any) *lsptest.Editor {
	getenv := func(k string) string { return env[k] }
	real := lsp.DefaultProviders(slog.New(slog.DiscardHandler), getenv)
	localDir := t.TempDir()
	providers := func(name string, st lsp.Settings) (sandbox.Provider, error) {
		if name == "local" {
			return local.New(local.Options{StateDir: localDir, ReadOnlyBinds: local.ToolBinds(st.Generate.OpenCodePath)})
		}
		return real(name, st)
	}
	return lsptest.New(t, lsptest.Options{Root: root, InitializationOptions: init,
		Server: lsp.Options{Getenv: getenv, Logger: debugLogger(), Providers: providers}})
}

// normalizeEdit renders an applyEdit request with the workspace root's URI
// replaced, so that edits made in different workspaces compare equal.
func normalizeEdit(t *testing.T, e *lsptest.Editor, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: filepath.ToSlash(e.Root)}).String()
	return strings.ReplaceAll(string(b), u, "file:///WORKSPACE")
}

// opencode.generate in an E2B and a Daytona sandbox (the fakes, with the
// real OpenCode and the scripted model) produces the same workspace edit as
// in the local sandbox; each key reaches only its own service.
func TestGenerateInCloudSandboxes(t *testing.T) {
	bin := opencodeBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clouds := newCloudFakes(t)
	html := "<!doctype html>\n<html>\n<body>\n  <button id=\"go\">Click me</button>\n</body>\n</html>\n"
	readme := "# site\n\nA page.\n"
	script := func() *fakeopenrouter.Script {
		return &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("write", map[string]any{"filePath": "index.html", "content": html}),
				step("edit", map[string]any{"filePath": "README.md", "oldString": "A page.", "newString": "A page with a button."}),
				step("bash", map[string]any{"command": "grep -c button index.html", "description": "Count buttons"}),
			},
			FinalText: "Created index.html and described it in README.md.",
		}
	}
	run := func(t *testing.T, provider string) (string, command.GenerateResult, *fakeopenrouter.Server, *lsptest.Editor) {
		fake := fakeopenrouter.New(t, fakeopenrouter.Options{Script: script()})
		env := map[string]string{"OPENROUTER_API_KEY": sentinelKey, "OPENROUTER_BASE_URL": fake.URL}
		for k, v := range clouds.env {
			env[k] = v
		}
		e := cloudEditor(t, t.TempDir(), env, map[string]any{
			"sandbox":    provider,
			"openrouter": map[string]any{"model": "fake/fake-model"},
			"generate":   map[string]any{"opencodePath": bin, "bashPermission": "allow", "needsConfirmation": false},
		})
		e.Initialize(ctx)
		e.WriteFile("README.md", readme)
		var res command.GenerateResult
		if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "Create a page with a button"}, &res); err != nil {
			t.Fatalf("%s: %v", provider, err)
		}
		edits := e.Edits()
		if len(edits) != 1 {
			t.Fatalf("%s: %d applyEdit requests", provider, len(edits))
		}
		return normalizeEdit(t, e, edits[0]), res, fake, e
	}

	var localEdit string
	var localRes command.GenerateResult
	t.Run("local", func(t *testing.T) {
		localEdit, localRes, _, _ = run(t, "local")
	})
	if localEdit == "" {
		t.Fatal("the local run failed")
	}
	for _, provider := range []string{"e2b", "daytona"} {
		t.Run(provider, func(t *testing.T) {
			edit, res, orFake, e := run(t, provider)
			if edit != localEdit {
				t.Fatalf("the %s edit differs from the local one:\n%s\nlocal:\n%s", provider, edit, localEdit)
			}
			if !res.Applied || len(res.Files) != 2 || res.Message != localRes.Message || len(res.Commands) != 1 ||
				res.Commands[0].ExitCode == nil || *res.Commands[0].ExitCode != 0 || strings.TrimSpace(res.Commands[0].OutputTail) != "1" {
				t.Fatalf("result: %+v (local %+v)", res, localRes)
			}
			if e.ReadFile("index.html") != html || e.ReadFile("README.md") != "# site\n\nA page with a button.\n" {
				t.Fatal("workspace not edited as expected")
			}
			// opencode.status shows the sandbox and its seconds.
			var st command.StatusResult
			if err := e.Execute(ctx, command.Status, struct{}{}, &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Sandboxes) != 1 || st.Sandboxes[0].Provider != provider || st.Sandboxes[0].ID == "" ||
				st.Sandboxes[0].State != "idle" || st.Sandboxes[0].CreatedAt == "" || st.Usage[provider] <= 0 {
				t.Fatalf("status: %+v", st)
			}
			checkKeys(t, provider, clouds, orFake)
			// Shutdown kills the sandbox.
			if code := e.Shutdown(ctx); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			if n := clouds.live(); n != 0 {
				t.Fatalf("%d sandboxes left after shutdown", n)
			}
		})
	}
}

// checkKeys asserts that every key went only to its own service: the E2B
// key only as X-API-KEY to E2B's control plane, the Daytona key only as the
// bearer token of Daytona's API and toolbox, the OpenRouter key never in a
// header or a URL of either cloud (it reaches the sandbox only inside the
// body of the request that starts OpenCode, as the launcher's environment,
// which writes it to a 0600 file in OpenCode's private HOME), and no cloud
// key ever to OpenRouter.
func checkKeys(t *testing.T, provider string, f *cloudFakes, or *fakeopenrouter.Server) {
	t.Helper()
	for _, r := range f.e2b.Requests() {
		hdr := headerText(r.Header)
		target := r.Path + "?" + r.RawQuery
		for _, k := range []string{cloudDaytonaKey, sentinelKey} {
			if strings.Contains(hdr, k) || strings.Contains(target, k) {
				t.Fatalf("E2B %s %s carries another service's key in a header or the URL", r.Service, r.Path)
			}
		}
		if strings.Contains(string(r.Body), cloudDaytonaKey) {
			t.Fatalf("E2B %s %s carries the Daytona key", r.Service, r.Path)
		}
		if strings.Contains(string(r.Body), sentinelKey) && r.Path != "/process.Process/Start" {
			t.Fatalf("the OpenRouter key reached E2B in %s %s", r.Service, r.Path)
		}
		if strings.Contains(hdr, cloudE2BKey) && (r.Service != fakee2b.ServiceAPI || r.Header.Get("X-API-KEY") != cloudE2BKey) {
			t.Fatalf("the E2B key went to %s %s", r.Service, r.Path)
		}
	}
	if provider == "e2b" {
		started := 0
		for _, r := range f.e2b.Requests() {
			if r.Service == fakee2b.ServicePreview {
				started++
				if strings.Contains(headerText(r.Header), cloudE2BKey) {
					t.Fatal("the E2B key went to a preview URL")
				}
			}
		}
		if started == 0 {
			t.Fatal("OpenCode was not reached through the E2B preview URL")
		}
	}
	previews := 0
	for _, r := range f.daytona.Requests() {
		hdr := headerText(r.Header)
		target := r.Path + "?" + r.Query.Encode()
		for _, k := range []string{cloudE2BKey, sentinelKey} {
			if strings.Contains(hdr, k) || strings.Contains(target, k) || strings.Contains(r.Query.Encode(), url.QueryEscape(k)) {
				t.Fatalf("Daytona %s %s carries another service's key", r.Target, r.Path)
			}
		}
		if strings.Contains(hdr, cloudDaytonaKey) && r.Target == "preview" {
			t.Fatal("the Daytona key went to a preview URL")
		}
		if r.Target == "preview" {
			previews++
			if r.Header.Get("X-Daytona-Preview-Token") != "" {
				t.Fatal("the preview token reached the sandbox's server")
			}
		}
	}
	if provider == "daytona" && previews == 0 {
		t.Fatal("OpenCode was not reached through the Daytona preview URL")
	}
	for _, r := range or.Requests() {
		text := headerText(r.Header) + r.Path + string(r.Body)
		if strings.Contains(text, cloudE2BKey) || strings.Contains(text, cloudDaytonaKey) {
			t.Fatalf("a cloud key reached OpenRouter in %s", r.Path)
		}
	}
}

func headerText(h map[string][]string) string {
	var b strings.Builder
	for k, vs := range h {
		b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	return b.String()
}

// The budget refuses the cloud sandbox over the limit with a message that
// names the setting; nothing is created.
func TestBudgetRefusesCloudSandbox(t *testing.T) {
	ctx := ctxT(t)
	clouds := newCloudFakes(t)
	e := cloudEditor(t, t.TempDir(), clouds.env, map[string]any{"budget": map[string]any{"maxConcurrent": 1}})
	e.Initialize(ctx)
	e.WriteFile("main.sh", "echo hi\n")
	var res command.RunResult
	if err := e.Execute(ctx, command.Run, command.RunArgs{Command: "echo hi", Sandbox: "e2b"}, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.OutputTail, "hi") || len(clouds.e2b.SandboxIDs()) != 1 {
		t.Fatalf("run in e2b: %+v", res)
	}
	err := e.Execute(ctx, command.Run, command.RunArgs{Command: "echo hi", Sandbox: "daytona"}, &res)
	if err == nil || !strings.Contains(err.Error(), "budget allows 1 at a time") || !strings.Contains(err.Error(), "opencode.budget.maxConcurrent") {
		t.Fatalf("over the limit: %v", err)
	}
	if len(clouds.daytona.SandboxIDs()) != 0 {
		t.Fatal("the refused sandbox was created")
	}
	for _, r := range clouds.daytona.Requests() {
		if r.Method == "POST" && r.Path == "/api/sandbox" {
			t.Fatal("the refused sandbox reached Daytona")
		}
	}
	// The local sandbox is never budgeted.
	if err := e.Execute(ctx, command.Run, command.RunArgs{Command: "echo hi", Sandbox: "local"}, &res); err != nil {
		t.Fatal(err)
	}
	// The usage file is in the state directory.
	if _, err := os.Stat(filepath.Join(clouds.env["XDG_STATE_HOME"], "opencode-lsp", fleet.UsageFile)); err != nil {
		t.Fatal(err)
	}
	e.Shutdown(ctx)
	if clouds.live() != 0 {
		t.Fatal("sandboxes left after shutdown")
	}
}

// At initialized the server kills, in the background, the sandboxes a
// daemon of this user that is gone left running.
func TestOrphansKilledAtStartup(t *testing.T) {
	ctx := ctxT(t)
	clouds := newCloudFakes(t)
	// A daemon that crashed left one sandbox in each cloud.
	factory := lsp.DefaultProviders(slog.New(slog.DiscardHandler), func(k string) string { return clouds.env[k] })
	m := fleet.New(fleet.Options{
		Provider: func(name string) (sandbox.Provider, error) { return factory(name, lsp.DefaultSettings()) },
		Instance: fleet.Instance{Owner: fleet.NewInstance().Owner, ID: "999999999-1-crashed"},
	})
	for _, p := range []string{"e2b", "daytona"} {
		l, err := m.Acquire(ctx, p, fleet.Workspace{Root: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	if clouds.live() != 2 {
		t.Fatal("setup")
	}
	e := cloudEditor(t, t.TempDir(), clouds.env, nil)
	e.Initialize(ctx)
	e.Await(60*time.Second, "the orphans to be killed", func() bool { return clouds.live() == 0 })
}

func debugLogger() *slog.Logger {
	if os.Getenv("OPENCODE_LSP_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// An OpenCode that does not come up in a cloud sandbox fails generate with
// "OpenCode API failed" and says how to find out why; the sandbox is still
// closed at shutdown.
func TestGenerateInCloudReportsOpenCodeFailure(t *testing.T) {
	ctx := ctxT(t)
	clouds := newCloudFakes(t)
	// An opencode that answers --version but dies at `serve`.
	broken := filepath.Join(t.TempDir(), "opencode")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\n[ \"$1\" = --version ] && { echo 1.18.33; exit 0; }\necho 'Error: cannot bind' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OPENROUTER_API_KEY": sentinelKey, "OPENROUTER_BASE_URL": "http://127.0.0.1:1"}
	for k, v := range clouds.env {
		env[k] = v
	}
	e := cloudEditor(t, t.TempDir(), env, map[string]any{
		"sandbox":    "e2b",
		"openrouter": map[string]any{"model": "fake/fake-model"},
		"generate":   map[string]any{"opencodePath": broken},
	})
	e.Initialize(ctx)
	err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "anything"}, nil)
	if err == nil || !strings.Contains(err.Error(), "OpenCode API failed in the e2b sandbox") ||
		!strings.Contains(err.Error(), "opencode-lsp doctor --providers e2b") || !strings.Contains(err.Error(), "cannot bind") {
		t.Fatalf("generate with a broken OpenCode: %v", err)
	}
	if strings.Contains(err.Error(), sentinelKey) {
		t.Fatal("the error quotes the key")
	}
	e.Shutdown(ctx)
	if clouds.live() != 0 {
		t.Fatal("sandbox left after shutdown")
	}
}
