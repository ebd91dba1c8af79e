package lsp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
)

// Test-only commands.
var (
	serversMu sync.Mutex
	servers   = map[string]*lsp.Server{} // by test name passed as argument
	started   = make(chan string, 64)
)

func init() {
	// test.sleep {"ms": N, "id": "…"}: a long run with progress.
	lsp.RegisterTestCommand("test.sleep", func(ctx context.Context, s *lsp.Server, arg json.RawMessage) (any, error) {
		var a struct {
			Ms int    `json:"ms"`
			ID string `json:"id"`
		}
		_ = json.Unmarshal(arg, &a)
		return s.WithRun(ctx, "sleep", "Sleeping", func(ctx context.Context, report func(string)) (any, error) {
			started <- a.ID
			report("sleeping")
			select {
			case <-time.After(time.Duration(a.Ms) * time.Millisecond):
				return map[string]string{"slept": a.ID}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	})
	lsp.RegisterTestCommand("test.panic", func(ctx context.Context, s *lsp.Server, arg json.RawMessage) (any, error) {
		panic("boom")
	})
	lsp.RegisterTestCommand("test.server", func(ctx context.Context, s *lsp.Server, arg json.RawMessage) (any, error) {
		var name string
		_ = json.Unmarshal(arg, &name)
		serversMu.Lock()
		servers[name] = s
		serversMu.Unlock()
		return nil, nil
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serverOf returns the *lsp.Server behind an editor.
func serverOf(t *testing.T, ctx context.Context, e *lsptest.Editor) *lsp.Server {
	t.Helper()
	if err := e.Execute(ctx, "test.server", t.Name(), nil); err != nil {
		t.Fatal(err)
	}
	serversMu.Lock()
	defer serversMu.Unlock()
	return servers[t.Name()]
}

func rpcCode(err error) jsonrpc2.Code {
	var e *jsonrpc2.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestLifecycle(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	// Before initialize: ServerNotInitialized.
	err := e.Call(ctx, "textDocument/codeAction", map[string]any{}, nil)
	if rpcCode(err) != -32002 {
		t.Fatalf("before initialize: got %v, want -32002", err)
	}
	res := e.Initialize(ctx)
	if res.Capabilities.PositionEncoding != "utf-16" || res.Capabilities.TextDocumentSync.Change != 1 {
		t.Fatalf("capabilities: %+v", res.Capabilities)
	}
	if err := e.Call(ctx, "initialize", map[string]any{"capabilities": map[string]any{}}, nil); rpcCode(err) != jsonrpc2.InvalidRequest {
		t.Fatalf("second initialize: got %v", err)
	}
	if err := e.Call(ctx, "no/suchMethod", map[string]any{}, nil); rpcCode(err) != jsonrpc2.MethodNotFound {
		t.Fatalf("unknown method: got %v", err)
	}
	if err := e.Call(ctx, "shutdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Call(ctx, "textDocument/codeAction", map[string]any{}, nil); rpcCode(err) != jsonrpc2.InvalidRequest {
		t.Fatalf("after shutdown: got %v", err)
	}
	if code := e.Exit(ctx); code != 0 {
		t.Fatalf("exit after shutdown: code %d, want 0", code)
	}
}

func TestExitWithoutShutdown(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	if code := e.Exit(ctx); code != 1 {
		t.Fatalf("exit without shutdown: code %d, want 1", code)
	}
}

func TestPositionEncodingNegotiation(t *testing.T) {
	for _, tc := range []struct {
		offered []string
		forced  string
		want    string
	}{
		{nil, "", "utf-16"},
		{[]string{"utf-8", "utf-16", "utf-32"}, "", "utf-8"},
		{[]string{"utf-32", "utf-8", "utf-16"}, "", "utf-32"},
		{[]string{"utf-7", "utf-16"}, "", "utf-16"},
		{[]string{"utf-8", "utf-32"}, "utf-32", "utf-32"},
		{[]string{"utf-8"}, "utf-32", "utf-8"}, // forced but not offered: the client's choice
		{[]string{"utf-8"}, "utf-16", "utf-16"},
	} {
		caps := lsptest.FullCapabilities()
		caps["general"] = map[string]any{"positionEncodings": tc.offered}
		opts := lsptest.Options{Capabilities: caps}
		if tc.forced != "" {
			opts.InitializationOptions = map[string]any{"positionEncoding": tc.forced}
		}
		e := lsptest.New(t, opts)
		if got := e.Initialize(ctxT(t)).Capabilities.PositionEncoding; got != tc.want {
			t.Errorf("offered %v forced %q: got %q, want %q", tc.offered, tc.forced, got, tc.want)
		}
	}
}

func TestCodeActions(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	uri := e.Open(ctx, "main.go", "go", "package main\n\nfunc main() {\n\tx := 1\n}\n")
	rng := protocol.Range{Start: protocol.Position{Line: 2}, End: protocol.Position{Line: 3, Character: 3}}
	inRange := protocol.Diagnostic{Range: protocol.Range{Start: protocol.Position{Line: 3, Character: 1}, End: protocol.Position{Line: 3, Character: 2}},
		Message: "declared and not used: x", Source: "opencode", Code: "go"}
	outOfRange := protocol.Diagnostic{Range: protocol.Range{Start: protocol.Position{Line: 0}, End: protocol.Position{Line: 0, Character: 4}}, Message: "elsewhere"}
	actions := e.CodeActions(ctx, uri, rng, []protocol.Diagnostic{inRange, outOfRange})
	var titles []string
	for _, a := range actions {
		titles = append(titles, a.Title)
		if !strings.HasPrefix(a.Title, "OpenCode: ") || a.Command == nil || a.Edit != nil {
			t.Errorf("action %+v is not a command-only OpenCode action", a)
		}
	}
	want := "OpenCode: Explain selection|OpenCode: Ask about selection…|OpenCode: Generate…|OpenCode: Run in sandbox|OpenCode: Fix with OpenCode"
	if got := strings.Join(titles, "|"); got != want {
		t.Fatalf("titles:\n got %s\nwant %s", got, want)
	}
	fix := actions[4]
	if fix.Kind != protocol.QuickFix || len(fix.Diagnostics) != 1 || fix.Command.Command != command.Generate {
		t.Fatalf("fix action: %+v", fix)
	}
	arg, _ := json.Marshal(fix.Command.Arguments[0])
	if !strings.Contains(string(arg), "declared and not used: x") {
		t.Fatalf("fix prompt does not quote the diagnostic: %s", arg)
	}
	// only: ["quickfix"] keeps the fix alone.
	var onlyFix []protocol.CodeAction
	if err := e.Call(ctx, "textDocument/codeAction", map[string]any{"textDocument": map[string]any{"uri": uri}, "range": rng,
		"context": map[string]any{"diagnostics": []protocol.Diagnostic{inRange}, "only": []string{"quickfix"}}}, &onlyFix); err != nil {
		t.Fatal(err)
	}
	if len(onlyFix) != 1 || onlyFix[0].Title != "OpenCode: Fix with OpenCode" {
		t.Fatalf("only quickfix: %+v", onlyFix)
	}
}

func TestCodeActionsAsCommandsForOldClients(t *testing.T) {
	ctx := ctxT(t)
	caps := lsptest.FullCapabilities()
	delete(caps["textDocument"].(map[string]any), "codeAction")
	e := lsptest.New(t, lsptest.Options{Capabilities: caps})
	e.Initialize(ctx)
	uri := e.Open(ctx, "untitled.txt", "plaintext", "hello")
	var cmds []protocol.Command
	if err := e.Call(ctx, "textDocument/codeAction", map[string]any{"textDocument": map[string]any{"uri": uri},
		"range": protocol.Range{}, "context": map[string]any{"diagnostics": []any{}}}, &cmds); err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 4 || cmds[0].Command != command.Explain || cmds[0].Title != "OpenCode: Explain selection" {
		t.Fatalf("commands: %+v", cmds)
	}
}

func TestUntitledDocumentsDoNotPanic(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	if err := e.Notify(ctx, "textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": "untitled:Untitled-1", "languageId": "plaintext", "version": 1, "text": "é😀"}}); err != nil {
		t.Fatal(err)
	}
	actions := e.CodeActions(ctx, "untitled:Untitled-1", protocol.Range{}, nil)
	if len(actions) != 4 {
		t.Fatalf("actions on untitled: %d", len(actions))
	}
}

func TestExecuteCommandArgumentErrors(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	cases := []struct {
		cmd  string
		arg  any
		want string
	}{
		{"opencode.nope", nil, `unknown command "opencode.nope"`},
		{command.Cancel, map[string]any{"runId": 42}, `opencode.cancel: field "runId" must be a string`},
		{command.Cancel, map[string]any{"prompt": "x"}, `opencode.cancel: field "prompt" is not an argument`},
		{command.Cancel, "just a string", `opencode.cancel: takes one JSON object`},
	}
	for _, c := range cases {
		err := e.Execute(ctx, c.cmd, c.arg, nil)
		if rpcCode(err) != jsonrpc2.InvalidParams || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: got %v, want InvalidParams containing %q", c.cmd, c.arg, err, c.want)
		}
	}
	// Two arguments.
	err := e.Call(ctx, "workspace/executeCommand", map[string]any{"command": command.Status, "arguments": []any{map[string]any{}, map[string]any{}}}, nil)
	if rpcCode(err) != jsonrpc2.InvalidParams || !strings.Contains(err.Error(), "one object argument") {
		t.Fatalf("two arguments: %v", err)
	}
	var st command.StatusResult
	if err := e.Execute(ctx, command.Status, nil, &st); err != nil || st.Runs == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
}

// A long executeCommand must not delay other requests, and $/cancelRequest
// must cancel it whether the id is a number or a string.
func TestNonBlockingAndCancel(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	uri := e.Open(ctx, "a.txt", "plaintext", "x")

	done := make(chan error, 1)
	go func() { done <- e.Execute(ctx, "test.sleep", map[string]any{"ms": 60000, "id": "long"}, nil) }()
	if id := <-started; id != "long" {
		t.Fatalf("started %q", id)
	}
	// codeAction answers while the command runs.
	if n := len(e.CodeActions(ctx, uri, protocol.Range{}, nil)); n != 4 {
		t.Fatalf("codeAction during a run: %d actions", n)
	}
	select {
	case err := <-done:
		t.Fatalf("sleep ended early: %v", err)
	default:
	}
	// opencode.cancel with no runId cancels it.
	var cr command.CancelResult
	if err := e.Execute(ctx, command.Cancel, map[string]any{}, &cr); err != nil || len(cr.Cancelled) != 1 {
		t.Fatalf("cancel: %+v %v", cr, err)
	}
	if err := <-done; rpcCode(err) != -32803 || !strings.Contains(err.Error(), "was cancelled") {
		t.Fatalf("cancelled run answered %v, want RequestCancelled", err)
	}

}

func TestCancelRequestNumericAndStringIDs(t *testing.T) {
	for _, id := range []string{`7`, `"req-seven"`} {
		r := lsptest.NewRaw(t, lsp.Options{})
		r.Initialize(`{"window":{"workDoneProgress":true}}`)
		r.Send(`{"jsonrpc":"2.0","id":` + id + `,"method":"workspace/executeCommand","params":{"command":"test.sleep","arguments":[{"ms":60000,"id":"raw"}]}}`)
		<-started
		r.Send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":` + id + `}}`)
		resp := r.Response(id, 10*time.Second)
		if !strings.Contains(string(resp["error"]), "-32800") {
			t.Fatalf("id %s: response %s, want RequestCancelled", id, resp["error"])
		}
	}
}

func TestPanicIsAnsweredAndServerKeepsServing(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	err := e.Execute(ctx, "test.panic", nil, nil)
	if rpcCode(err) != jsonrpc2.InternalError || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic answered with %v", err)
	}
	var st command.StatusResult
	if err := e.Execute(ctx, command.Status, nil, &st); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
}

// Automatic requests at the cursor (triggerKind 2, empty range) get only
// quickfixes: no lightbulb on every line.
func TestAutomaticCodeActionsAtCursor(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	uri := e.Open(ctx, "a.go", "go", "package a\n\nvar x = 1\n")
	at := protocol.Range{Start: protocol.Position{Line: 2, Character: 4}, End: protocol.Position{Line: 2, Character: 4}}
	d := protocol.Diagnostic{Range: at, Message: "unused", Source: "opencode"}
	var got []protocol.CodeAction
	call := func(rng protocol.Range, diags []protocol.Diagnostic, trigger int) []protocol.CodeAction {
		got = nil
		if err := e.Call(ctx, "textDocument/codeAction", map[string]any{"textDocument": map[string]any{"uri": uri}, "range": rng,
			"context": map[string]any{"diagnostics": diags, "triggerKind": trigger}}, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if n := len(call(at, nil, 2)); n != 0 {
		t.Fatalf("automatic at the cursor without diagnostics: %d actions, want 0", n)
	}
	if acts := call(at, []protocol.Diagnostic{d}, 2); len(acts) != 1 || acts[0].Kind != protocol.QuickFix {
		t.Fatalf("automatic at a diagnostic: %+v", acts)
	}
	sel := protocol.Range{Start: protocol.Position{Line: 2}, End: protocol.Position{Line: 2, Character: 9}}
	if n := len(call(sel, nil, 2)); n != 4 {
		t.Fatalf("automatic with a selection: %d actions, want 4", n)
	}
	if n := len(call(at, nil, 1)); n != 4 {
		t.Fatalf("invoked at the cursor: %d actions, want 4", n)
	}
}
