package lsp_test

import (
	"encoding/json"
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
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// opencodeBinary is the real OpenCode, installed by scripts/setup.sh.
func opencodeBinary(t *testing.T) string {
	t.Helper()
	b, err := filepath.Abs("../test/tools/node_modules/.bin/opencode")
	if err == nil {
		if _, err = os.Stat(b); err == nil {
			return b
		}
	}
	t.Skipf("the real OpenCode is not installed (run scripts/setup.sh): %v", err)
	return ""
}

// localProviders gives every test its own sandbox state dir; the sandbox
// shows the OpenCode binary even when the checkout is under /tmp.
func localProviders(t *testing.T) lsp.ProviderFactory {
	dir := t.TempDir()
	return func(name string, st lsp.Settings) (sandbox.Provider, error) {
		return local.New(local.Options{StateDir: dir, ReadOnlyBinds: local.ToolBinds(st.Generate.OpenCodePath)})
	}
}

func step(tool string, args map[string]any) fakeopenrouter.Step {
	b, _ := json.Marshal(args)
	return fakeopenrouter.Step{Tool: tool, Args: b}
}

// generateEditor starts an editor whose server runs the real OpenCode
// against a scripted fake model, in a local sandbox.
func generateEditor(t *testing.T, script *fakeopenrouter.Script, caps map[string]any, extra map[string]any) (*lsptest.Editor, *fakeopenrouter.Server) {
	bin := opencodeBinary(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{Script: script})
	env := map[string]string{"OPENROUTER_API_KEY": sentinelKey, "OPENROUTER_BASE_URL": fake.URL}
	init := map[string]any{
		"openrouter": map[string]any{"model": "fake/fake-model"},
		"generate":   map[string]any{"opencodePath": bin, "bashPermission": "allow", "needsConfirmation": false},
	}
	for k, v := range extra {
		init[k] = v
	}
	e := lsptest.New(t, lsptest.Options{Capabilities: caps, InitializationOptions: init,
		Server: lsp.Options{Getenv: func(k string) string { return env[k] }, Providers: localProviders(t)}})
	return e, fake
}

// A script the agent made executable stays executable in the workspace.
func TestGenerateKeepsTheExecutableBit(t *testing.T) {
	ctx := ctxT(t)
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps:     []fakeopenrouter.Step{step("bash", map[string]any{"command": "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod +x run.sh", "description": "script"})},
		FinalText: "Wrote run.sh.",
	}, nil, nil)
	e.Initialize(ctx)
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "write a script"}, &res); err != nil || !res.Applied {
		t.Fatalf("%+v %v", res, err)
	}
	st, err := os.Stat(filepath.Join(e.Root, "run.sh"))
	if err != nil || st.Mode().Perm()&0o100 == 0 || e.ReadFile("run.sh") != "#!/bin/sh\necho hi\n" {
		t.Fatalf("run.sh: %v %v %q", st.Mode(), err, e.ReadFile("run.sh"))
	}
}

func TestGenerateHTMLPageAsOneWorkspaceEdit(t *testing.T) {
	ctx := ctxT(t)
	html := "<!doctype html>\n<html>\n<body>\n  <button id=\"go\">Click me</button>\n</body>\n</html>\n"
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			step("write", map[string]any{"filePath": "index.html", "content": html}),
			step("bash", map[string]any{"command": "node -e \"console.log(require('fs').readFileSync('index.html','utf8').includes('button'))\"", "description": "Check the page"}),
		},
		FinalText: "Created index.html with a button.",
	}, nil, nil)
	e.Initialize(ctx)
	e.WriteFile("README.md", "# site\n")
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "Create a simple HTML page with a button"}, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Applied || len(res.Files) != 1 || res.Files[0].Path != "index.html" || res.Files[0].Action != "created" {
		t.Fatalf("result: %+v", res)
	}
	if !strings.Contains(res.Message, "Created index.html with a button.") {
		t.Fatalf("message: %q", res.Message)
	}
	if len(res.Commands) != 1 || res.Commands[0].ExitCode == nil || *res.Commands[0].ExitCode != 0 || !strings.Contains(res.Commands[0].OutputTail, "true") {
		t.Fatalf("commands: %+v", res.Commands)
	}
	edits := e.Edits()
	if len(edits) != 1 {
		t.Fatalf("%d applyEdit requests, want one", len(edits))
	}
	if got := e.ReadFile("index.html"); got != html {
		t.Fatalf("index.html = %q", got)
	}
	// The agent worked in the sandbox, never in the workspace: nothing but
	// the applied file appeared there.
	entries, _ := os.ReadDir(e.Root)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if strings.Join(names, ",") != "README.md,index.html" {
		t.Fatalf("workspace holds %v", names)
	}
}

// An edit to an open buffer the user changed during the run is refused by
// version; the user's text stays, and the change set is kept for
// opencode.apply.
func TestGenerateRefusedByVersionKeepsChanges(t *testing.T) {
	ctx := ctxT(t)
	e, fake := generateEditor(t, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			{Tool: "edit", Args: json.RawMessage(`{"filePath":"app.js","oldString":"hello","newString":"hello, world"}`), DelayMs: 1500},
		},
		FinalText: "Edited app.js.",
	}, nil, nil)
	e.Initialize(ctx)
	e.WriteFile("app.js", "console.log('hello')\n")
	uri := e.Open(ctx, "app.js", "javascript", "console.log('hello')\n")
	done := make(chan error, 1)
	var res command.GenerateResult
	go func() {
		done <- e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "Say hello to the world", URI: uri}, &res)
	}()
	// Once the agent is at work, the user types.
	e.Await(60*time.Second, "the agent's first model call", func() bool { return len(fake.ChatRequests()) >= 2 })
	e.Change(ctx, uri, "console.log('hello') // mine\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.Applied || len(res.Files) != 1 || res.Files[0].Action != "modified" || !strings.Contains(res.Message, "not applied") {
		t.Fatalf("result: %+v", res)
	}
	if d, _ := e.Doc(uri); d.Text != "console.log('hello') // mine\n" {
		t.Fatalf("user's text lost: %q", d.Text)
	}
	// Re-applying is refused again (still stale), and the changes are kept.
	if err := e.Execute(ctx, command.Apply, command.ApplyArgs{RunID: res.RunID}, nil); err == nil || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("apply of a stale change set: %v", err)
	}
	if err := e.Execute(ctx, command.Apply, command.ApplyArgs{RunID: res.RunID}, nil); err == nil || strings.Contains(err.Error(), "no pending") {
		t.Fatalf("the change set was lost after a refused apply: %v", err)
	}
	// The user undoes their typing: now the kept change applies, to the
	// document's current version.
	e.Change(ctx, uri, "console.log('hello')\n")
	var applied command.GenerateResult
	if err := e.Execute(ctx, command.Apply, command.ApplyArgs{RunID: res.RunID}, &applied); err != nil || !applied.Applied {
		t.Fatalf("apply after undo: %+v %v", applied, err)
	}
	if d, _ := e.Doc(uri); d.Text != "console.log('hello, world')\n" {
		t.Fatalf("after apply: %q", d.Text)
	}
}

func TestGenerateApplyFalseReturnsChangesThenApplies(t *testing.T) {
	ctx := ctxT(t)
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps:     []fakeopenrouter.Step{step("write", map[string]any{"filePath": "notes/todo.txt", "content": "1. ship\n"})},
		FinalText: "Done.",
	}, nil, nil)
	e.Initialize(ctx)
	no := false
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "write a todo list", Apply: &no}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Applied || len(res.Files) != 1 || len(e.Edits()) != 0 || e.ReadFile("notes/todo.txt") != "" {
		t.Fatalf("apply:false applied something: %+v edits=%d", res, len(e.Edits()))
	}
	var applied command.GenerateResult
	if err := e.Execute(ctx, command.Apply, command.ApplyArgs{RunID: res.RunID}, &applied); err != nil || !applied.Applied {
		t.Fatalf("apply: %+v %v", applied, err)
	}
	if got := e.ReadFile("notes/todo.txt"); got != "1. ship\n" {
		t.Fatalf("after apply: %q", got)
	}
}

func TestGenerateCancelLeavesWorkspaceUntouched(t *testing.T) {
	ctx := ctxT(t)
	e, fake := generateEditor(t, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			step("write", map[string]any{"filePath": "a.txt", "content": "a\n"}),
			{Tool: "write", Args: json.RawMessage(`{"filePath":"b.txt","content":"b\n"}`), DelayMs: 60000},
		},
		FinalText: "never",
	}, nil, nil)
	e.Initialize(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "two files"}, nil) }()
	e.Await(60*time.Second, "the second step", func() bool { return len(fake.ChatRequests()) >= 2 })
	var cr command.CancelResult
	if err := e.Execute(ctx, command.Cancel, command.CancelArgs{}, &cr); err != nil || len(cr.Cancelled) != 1 {
		t.Fatalf("cancel: %+v %v", cr, err)
	}
	if err := <-done; rpcCode(err) != -32803 || !strings.Contains(err.Error(), "was cancelled") {
		t.Fatalf("cancelled generate answered %v", err)
	}
	if len(e.Edits()) != 0 || e.ReadFile("a.txt") != "" {
		t.Fatal("a cancelled run changed the workspace")
	}
}

// eglot: no resource operations; the new file is written by the server and
// the rest is one edit.
func TestGenerateForClientWithoutResourceOperations(t *testing.T) {
	ctx := ctxT(t)
	caps := lsptest.FullCapabilities()
	caps["workspace"].(map[string]any)["workspaceEdit"] = map[string]any{"documentChanges": true}
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			step("write", map[string]any{"filePath": "server.js", "content": "const express = require('express')\n"}),
			{Tool: "edit", Args: json.RawMessage(`{"filePath":"package.json","oldString":"\"deps\": 0","newString":"\"deps\": 1"}`)},
		},
		FinalText: "ok",
	}, caps, nil)
	e.Initialize(ctx)
	e.WriteFile("package.json", "{\"deps\": 0}\n")
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "Create a Node.js Express API with a /hello endpoint"}, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Applied || e.ReadFile("server.js") != "const express = require('express')\n" || e.ReadFile("package.json") != "{\"deps\": 1}\n" {
		t.Fatalf("result %+v server.js=%q package.json=%q", res, e.ReadFile("server.js"), e.ReadFile("package.json"))
	}
	for _, c := range e.Edits()[0].Edit.DocumentChanges {
		if c.CreateFile != nil {
			t.Fatal("CreateFile sent to a client without resource operations")
		}
	}
}

// opencode.ask routes by prefix and keywords; "both" runs chat and the
// agent at once and returns both.
func TestAskRoutes(t *testing.T) {
	ctx := ctxT(t)
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps:     []fakeopenrouter.Step{step("write", map[string]any{"filePath": "README.md", "content": "# demo\n"})},
		FinalText: "Wrote the README.",
		TitleText: "A README explains a project.", // what a plain chat request (no tools) gets
	}, nil, nil)
	e.Initialize(ctx)

	var chatOnly command.AskResult
	if err := e.Execute(ctx, command.Ask, command.AskArgs{Prompt: "what is a README for?"}, &chatOnly); err != nil {
		t.Fatal(err)
	}
	if chatOnly.Route != "chat" || chatOnly.Chat == nil || chatOnly.Chat.Text != "A README explains a project." || chatOnly.Generate != nil {
		t.Fatalf("chat route: %+v", chatOnly)
	}
	var both command.AskResult
	if err := e.Execute(ctx, command.Ask, command.AskArgs{Prompt: "/both write a README"}, &both); err != nil {
		t.Fatal(err)
	}
	if both.Route != "both" || both.Chat == nil || both.Generate == nil || !both.Generate.Applied ||
		len(both.Generate.Files) != 1 || both.Generate.Files[0].Path != "README.md" {
		t.Fatalf("both route: %+v", both)
	}
	if e.ReadFile("README.md") != "# demo\n" {
		t.Fatal("the generate half did not apply")
	}
	if err := e.Execute(ctx, command.Ask, command.AskArgs{Prompt: "/build"}, nil); err == nil || !strings.Contains(err.Error(), "prompt") {
		t.Fatalf("empty prompt after a prefix: %v", err)
	}
}

// The output of commands the agent ran becomes diagnostics, as with
// opencode.run.
func TestGenerateCommandOutputBecomesDiagnostics(t *testing.T) {
	ctx := ctxT(t)
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			step("write", map[string]any{"filePath": "main.go", "content": "package main\n\nfunc main() {\n\tvar x int = \"no\"\n\t_ = x\n}\n"}),
			step("bash", map[string]any{"command": "go vet ./...", "description": "vet"}),
		},
		FinalText: "Vet fails.",
	}, nil, nil)
	e.Initialize(ctx)
	e.WriteFile("go.mod", goMod)
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "write main.go and vet it"}, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 1 || res.Commands[0].ExitCode == nil || *res.Commands[0].ExitCode == 0 {
		t.Fatalf("commands: %+v", res.Commands)
	}
	uri := e.URI("main.go")
	e.Await(10*time.Second, "a diagnostic from the agent's go vet", func() bool { return len(e.Diagnostics(uri)) == 1 })
	if d := e.Diagnostics(uri)[0]; d.Range.Start.Line != 3 || d.Code != "go" {
		t.Fatalf("diagnostic: %+v", d)
	}
}

// A file the agent created but the editor did not apply is not left in the
// working copy: the next run that creates it again reports it again.
func TestGenerateUnappliedCreationIsReportedAgain(t *testing.T) {
	ctx := ctxT(t)
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps:     []fakeopenrouter.Step{step("bash", map[string]any{"command": "echo hi > made.txt", "description": "make"})},
		FinalText: "Made.",
	}, nil, nil)
	e.Initialize(ctx)
	no := false
	for i := 0; i < 2; i++ {
		var res command.GenerateResult
		if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "make a file", Apply: &no}, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Files) != 1 || res.Files[0].Path != "made.txt" || res.Files[0].Action != "created" {
			t.Fatalf("run %d: files %+v", i+1, res.Files)
		}
	}
}

// The agent's changes to what git ignores (an npm install's node_modules)
// stay in the sandbox; a file the user deleted since an earlier run is gone
// from the working copy too.
func TestGenerateLeavesIgnoredFilesAndMirrorsDeletions(t *testing.T) {
	ctx := ctxT(t)
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{step("bash", map[string]any{
			"command":     "mkdir -p node_modules/dep && echo x > node_modules/dep/index.js && echo app > app.js",
			"description": "install"})},
		FinalText: "Installed.",
	}, nil, nil)
	e.Initialize(ctx)
	e.WriteFile(".gitignore", "node_modules/\n")
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "set up the app"}, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Files[0].Path != "app.js" || !strings.Contains(res.Message, "git ignores") {
		t.Fatalf("result: %+v", res)
	}
	if e.ReadFile("node_modules/dep/index.js") != "" {
		t.Fatal("an ignored dependency reached the workspace")
	}
	// The user deletes the applied file; a run no longer sees it.
	if err := os.Remove(filepath.Join(e.Root, "app.js")); err != nil {
		t.Fatal(err)
	}
	var run command.RunResult
	if err := e.Execute(ctx, command.Run, command.RunArgs{Command: "ls"}, &run); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(run.OutputTail, "app.js") || !strings.Contains(run.OutputTail, "node_modules") {
		t.Fatalf("working copy after the user deleted app.js: %q", run.OutputTail)
	}
}

// A directory of the workspace that is a symlink to somewhere else is not a
// way out: the sandbox never shows it, and a file the agent writes "in" it
// is refused rather than created outside.
func TestGenerateNeverWritesThroughAWorkspaceSymlink(t *testing.T) {
	ctx := ctxT(t)
	outside := t.TempDir()
	e, _ := generateEditor(t, &fakeopenrouter.Script{
		Steps:     []fakeopenrouter.Step{step("bash", map[string]any{"command": "mkdir -p out && echo x > out/escaped.txt && echo y > ok.txt", "description": "write"})},
		FinalText: "Done.",
	}, nil, nil)
	e.Initialize(ctx)
	if err := os.Symlink(outside, filepath.Join(e.Root, "out")); err != nil {
		t.Fatal(err)
	}
	var res command.GenerateResult
	if err := e.Execute(ctx, command.Generate, command.GenerateArgs{Prompt: "write files"}, &res); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "escaped.txt")); err == nil {
		t.Fatal("a file was written outside the workspace through a symlink")
	}
	if len(res.Files) != 1 || res.Files[0].Path != "ok.txt" || !strings.Contains(res.Message, "symlink") {
		t.Fatalf("result: %+v", res)
	}
}
