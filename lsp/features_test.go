package lsp_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

func diag(line, char uint32, msg string) protocol.Diagnostic {
	return protocol.Diagnostic{Range: protocol.Range{Start: protocol.Position{Line: line, Character: char},
		End: protocol.Position{Line: line, Character: char + 1}}, Message: msg, Source: "opencode", Severity: protocol.DiagnosticSeverityError}
}

func TestDiagnosticsPublishOnlyChangesAndClearCleanFiles(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	a, b := e.URI("a.go"), e.URI("b.go")

	if n := s.SetDiagnostics(ctx, "run:go vet", map[protocol.DocumentURI][]protocol.Diagnostic{a: {diag(1, 2, "x")}, b: {diag(3, 0, "y")}}); n != 2 {
		t.Fatalf("first set published %d files, want 2", n)
	}
	e.Await(5*time.Second, "diagnostics for a and b", func() bool { return len(e.Diagnostics(a)) == 1 && len(e.Diagnostics(b)) == 1 })
	// The same diagnostics again: nothing is sent.
	if n := s.SetDiagnostics(ctx, "run:go vet", map[protocol.DocumentURI][]protocol.Diagnostic{a: {diag(1, 2, "x")}, b: {diag(3, 0, "y")}}); n != 0 {
		t.Fatalf("unchanged set published %d files", n)
	}
	// Another producer adds to a; b is untouched.
	if n := s.SetDiagnostics(ctx, "run:npm test", map[protocol.DocumentURI][]protocol.Diagnostic{a: {diag(0, 0, "z")}}); n != 1 {
		t.Fatalf("second producer published %d files, want 1", n)
	}
	e.Await(5*time.Second, "merged diagnostics on a", func() bool { return len(e.Diagnostics(a)) == 2 })
	// The first producer's new run: b became clean, a keeps the other producer's.
	before := e.PublishCount()
	if n := s.SetDiagnostics(ctx, "run:go vet", map[protocol.DocumentURI][]protocol.Diagnostic{}); n != 2 {
		t.Fatalf("clean run published %d files, want 2", n)
	}
	e.Await(5*time.Second, "b cleared", func() bool { return e.PublishCount() == before+2 })
	if got := e.Diagnostics(b); len(got) != 0 {
		t.Fatalf("b not cleared: %+v", got)
	}
	if got := e.Diagnostics(a); len(got) != 1 || got[0].Message != "z" {
		t.Fatalf("a = %+v, want only the other producer's", got)
	}
}

// A diagnostic at a byte offset after "é😀" lands on the right character in
// each negotiated encoding.
func TestEncodingsMapEmojiLine(t *testing.T) {
	line := `	s := "é😀" + x`
	byteCol := strings.Index(line, "+")
	want := map[string]uint32{"utf-8": uint32(byteCol), "utf-16": 11, "utf-32": 10}
	for enc, char := range want {
		caps := lsptest.FullCapabilities()
		caps["general"] = map[string]any{"positionEncodings": []string{enc}}
		e := lsptest.New(t, lsptest.Options{Capabilities: caps})
		ctx := ctxT(t)
		e.Initialize(ctx)
		uri := e.Open(ctx, "m.go", "go", "package m\n"+line+"\n")
		// A code action requested at the '+' (computed by the editor in its
		// encoding) comes back with the same range in the command argument.
		rng := protocol.Range{Start: protocol.Position{Line: 1, Character: char}, End: protocol.Position{Line: 1, Character: char + 1}}
		acts := e.CodeActions(ctx, uri, rng, nil)
		if len(acts) == 0 {
			t.Fatalf("%s: no actions", enc)
		}
		if got := e.Encoding; string(got) != enc {
			t.Fatalf("negotiated %s, want %s", got, enc)
		}
	}
}

func TestApplyEditFullClient(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	e.WriteFile("crlf.txt", "one\r\ntwo\r\nthree\r\n")
	e.WriteFile("gone.txt", "bye\n")
	uri := e.Open(ctx, "open.go", "go", "package a\n\nvar x = 1\n")
	e.Await(5*time.Second, "didOpen processed", func() bool { return s.DocumentVersion(uri) == 1 })
	v := int32(1)
	applied, reason, onDisk, err := s.ApplyChanges(ctx, []lsp.TestChange{
		{Rel: "new/file.txt", Path: filepath.Join(e.Root, "new/file.txt"), Action: "created", New: []byte("hello\n")},
		{Rel: "crlf.txt", Path: filepath.Join(e.Root, "crlf.txt"), Action: "modified", Base: []byte("one\r\ntwo\r\nthree\r\n"), New: []byte("one\r\nTWO\r\nthree\r\n")},
		{Rel: "open.go", Path: filepath.Join(e.Root, "open.go"), Action: "modified", Base: []byte("package a\n\nvar x = 1\n"), New: []byte("package a\n\nvar x = 2\n"), Version: &v},
		{Rel: "gone.txt", Path: filepath.Join(e.Root, "gone.txt"), Action: "deleted", Base: []byte("bye\n")},
	})
	if err != nil || !applied || len(onDisk) != 0 {
		t.Fatalf("applied=%v reason=%q onDisk=%v err=%v", applied, reason, onDisk, err)
	}
	edits := e.Edits()
	if len(edits) != 1 {
		t.Fatalf("%d applyEdit requests, want exactly one", len(edits))
	}
	// Sorted by path: crlf.txt, gone.txt (delete), new/file.txt (create +
	// its text), open.go.
	dc := edits[0].Edit.DocumentChanges
	if len(dc) != 5 || dc[1].DeleteFile == nil || dc[2].CreateFile == nil || dc[3].TextDocumentEdit.TextDocument.Version != nil ||
		*dc[4].TextDocumentEdit.TextDocument.Version != 1 {
		t.Fatalf("document changes: %+v", dc)
	}
	// The CRLF change is one one-line edit keeping CRLF.
	crlf := dc[0].TextDocumentEdit
	if crlf == nil || len(crlf.Edits) != 1 || crlf.Edits[0].NewText != "TWO\r\n" || crlf.Edits[0].Range.Start.Line != 1 || crlf.Edits[0].Range.End.Line != 2 {
		t.Fatalf("crlf edit: %+v", crlf)
	}
	if e.ReadFile("crlf.txt") != "one\r\nTWO\r\nthree\r\n" || e.ReadFile("new/file.txt") != "hello\n" || e.ReadFile("gone.txt") != "" {
		t.Fatalf("disk after edit: crlf=%q new=%q", e.ReadFile("crlf.txt"), e.ReadFile("new/file.txt"))
	}
	if d, _ := e.Doc(uri); d.Text != "package a\n\nvar x = 2\n" {
		t.Fatalf("open doc: %q", d.Text)
	}
	if ann := edits[0].Edit.ChangeAnnotations["opencode"]; ann.Label != "OpenCode" {
		t.Fatalf("annotation: %+v", edits[0].Edit.ChangeAnnotations)
	}
}

func TestApplyEditRefusedByVersionLosesNothing(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	uri := e.Open(ctx, "open.go", "go", "package a\n")
	e.Change(ctx, uri, "package a // typed by the user\n")
	e.Await(5*time.Second, "didChange processed", func() bool { return s.DocumentVersion(uri) == 2 })
	v := int32(1) // the version the run saw
	applied, reason, _, err := s.ApplyChanges(ctx, []lsp.TestChange{
		{Rel: "open.go", Path: filepath.Join(e.Root, "open.go"), Action: "modified", Base: []byte("package a\n"), New: []byte("package b\n"), Version: &v},
		{Rel: "other.txt", Path: filepath.Join(e.Root, "other.txt"), Action: "created", New: []byte("x")},
	})
	if err != nil || applied || !strings.Contains(reason, "version") {
		t.Fatalf("applied=%v reason=%q err=%v", applied, reason, err)
	}
	if d, _ := e.Doc(uri); d.Text != "package a // typed by the user\n" {
		t.Fatalf("user's text overwritten: %q", d.Text)
	}
	if _, err := os.Stat(filepath.Join(e.Root, "other.txt")); err == nil {
		t.Fatal("half of a refused edit was applied")
	}
}

// eglot advertises documentChanges but no resourceOperations: new files are
// created on disk by the server, the rest is one edit.
func TestApplyEditWithoutResourceOperations(t *testing.T) {
	ctx := ctxT(t)
	caps := lsptest.FullCapabilities()
	caps["workspace"].(map[string]any)["workspaceEdit"] = map[string]any{"documentChanges": true}
	e := lsptest.New(t, lsptest.Options{Capabilities: caps})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	e.WriteFile("keep.txt", "a\nb\n")
	e.WriteFile("old.txt", "old\n")
	applied, reason, onDisk, err := s.ApplyChanges(ctx, []lsp.TestChange{
		{Rel: "made.txt", Path: filepath.Join(e.Root, "made.txt"), Action: "created", New: []byte("made\n")},
		{Rel: "keep.txt", Path: filepath.Join(e.Root, "keep.txt"), Action: "modified", Base: []byte("a\nb\n"), New: []byte("a\nB\n")},
		{Rel: "old.txt", Path: filepath.Join(e.Root, "old.txt"), Action: "deleted", Base: []byte("old\n")},
	})
	if err != nil || !applied {
		t.Fatalf("applied=%v reason=%q err=%v", applied, reason, err)
	}
	for _, c := range e.Edits()[0].Edit.DocumentChanges {
		if c.CreateFile != nil || c.DeleteFile != nil || c.RenameFile != nil {
			t.Fatalf("resource operation sent to a client without support: %+v", c)
		}
	}
	if strings.Join(onDisk, ",") != "made.txt,old.txt" || e.ReadFile("made.txt") != "made\n" || e.ReadFile("keep.txt") != "a\nB\n" || e.ReadFile("old.txt") != "" {
		t.Fatalf("onDisk=%v made=%q keep=%q old=%q", onDisk, e.ReadFile("made.txt"), e.ReadFile("keep.txt"), e.ReadFile("old.txt"))
	}
}

// A client without documentChanges gets the `changes` map; the server
// checks versions itself.
func TestApplyEditWithoutDocumentChanges(t *testing.T) {
	ctx := ctxT(t)
	caps := lsptest.FullCapabilities()
	caps["workspace"].(map[string]any)["workspaceEdit"] = map[string]any{}
	e := lsptest.New(t, lsptest.Options{Capabilities: caps})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	uri := e.Open(ctx, "o.txt", "plaintext", "1\n2\n")
	e.Await(5*time.Second, "didOpen processed", func() bool { return s.DocumentVersion(uri) == 1 })
	v := int32(1)
	applied, reason, _, err := s.ApplyChanges(ctx, []lsp.TestChange{{Rel: "o.txt", Path: filepath.Join(e.Root, "o.txt"), Action: "modified", Base: []byte("1\n2\n"), New: []byte("1\ntwo\n"), Version: &v}})
	if err != nil || !applied {
		t.Fatalf("applied=%v reason=%q err=%v", applied, reason, err)
	}
	if got := e.Edits()[0].Edit; len(got.Changes[uri]) != 1 || got.DocumentChanges != nil {
		t.Fatalf("edit: %+v", got)
	}
	// Stale version: refused by the server before sending anything.
	e.Await(5*time.Second, "version 2", func() bool { return s.DocumentVersion(uri) == 2 })
	applied, reason, _, _ = s.ApplyChanges(ctx, []lsp.TestChange{{Rel: "o.txt", Path: filepath.Join(e.Root, "o.txt"), Action: "modified", Base: []byte("1\n2\n"), New: []byte("x\n"), Version: &v}})
	if applied || !strings.Contains(reason, "changed in the editor") || len(e.Edits()) != 1 {
		t.Fatalf("stale: applied=%v reason=%q edits=%d", applied, reason, len(e.Edits()))
	}
}

func TestProgressFallsBackToMessages(t *testing.T) {
	ctx := ctxT(t)
	caps := lsptest.FullCapabilities()
	caps["window"] = map[string]any{}
	e := lsptest.New(t, lsptest.Options{Capabilities: caps})
	e.Initialize(ctx)
	if err := e.Execute(ctx, "test.sleep", map[string]any{"ms": 1, "id": "quick"}, nil); err != nil {
		t.Fatal(err)
	}
	<-started
	if e.RequestCount("window/workDoneProgress/create") != 0 || len(e.Progress()) != 0 {
		t.Fatal("progress sent to a client without workDoneProgress")
	}
	e.Await(5*time.Second, "begin and end messages", func() bool { return len(e.Messages()) >= 2 })
	if m := e.Messages(); !strings.HasPrefix(m[0].Message, "Sleeping") || !strings.Contains(m[len(m)-1].Message, "done") {
		t.Fatalf("messages: %+v", m)
	}
}

func TestProgressWithServerToken(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	if err := e.Execute(ctx, "test.sleep", map[string]any{"ms": 1, "id": "p"}, nil); err != nil {
		t.Fatal(err)
	}
	<-started
	e.Await(5*time.Second, "progress end", func() bool {
		p := e.Progress()
		return len(p) >= 2 && p[len(p)-1].Kind == "end"
	})
	p := e.Progress()
	if e.RequestCount("window/workDoneProgress/create") != 1 || p[0].Kind != "begin" || p[0].Title != "Sleeping" {
		t.Fatalf("progress: %+v", p)
	}
}

func TestSettingsProblemsReportedAndDefaultsKept(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{
		InitializationOptions: map[string]any{"sandbox": "e2b", "run": map[string]any{"timeoutSec": "soon", "comand": "make"}, "apiKey": "sk-or-v1-sentinel-0123456789"},
	})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	e.Await(5*time.Second, "a warning", func() bool { return len(e.Messages()) > 0 })
	msg := e.Messages()[0].Message
	for _, want := range []string{`opencode.run.timeoutSec: must be an integer`, `opencode.run.comand: unknown setting (did you mean "opencode.run.command"?)`, `opencode.apiKey: unknown setting (it belongs at "opencode.openrouter.apiKey")`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "sentinel") {
		t.Errorf("secret in message: %q", msg)
	}
	st := s.CurrentSettings()
	if st.Sandbox != "e2b" || st.Run.TimeoutSec != 600 {
		t.Fatalf("settings: sandbox=%q timeout=%d", st.Sandbox, st.Run.TimeoutSec)
	}
}

func TestConfigurationPulledAfterInitialized(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{Configuration: map[string]any{"run": map[string]any{"timeoutSec": 42}}})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	e.Await(5*time.Second, "configuration applied", func() bool { return s.CurrentSettings().Run.TimeoutSec == 42 })
	// didChangeConfiguration push.
	_ = e.Notify(ctx, "workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"opencode": map[string]any{"run": map[string]any{"timeoutSec": 7}}}})
	e.Await(5*time.Second, "pushed settings applied", func() bool { return s.CurrentSettings().Run.TimeoutSec == 7 })
}

// A client that never answers server→client requests must not hang the
// server: requests time out and everything else keeps working.
func TestShowMessageRequestTimesOut(t *testing.T) {
	ctx := ctxT(t)
	block := make(chan struct{})
	defer close(block)
	e := lsptest.New(t, lsptest.Options{
		InitializationOptions: map[string]any{"requestTimeoutSec": 1},
		Hooks:                 lsptest.Hooks{ShowMessageRequest: func(protocol.ShowMessageRequestParams) string { <-block; return "" }},
	})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	choice, err := s.AskUser(ctx, "Allow?", "Yes", "No")
	if err == nil || choice != "" || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("choice=%q err=%v", choice, err)
	}
	// The server still answers.
	if acts := e.CodeActions(ctx, e.URI("x.txt"), protocol.Range{}, nil); len(acts) != 4 {
		t.Fatalf("after a timeout: %d actions", len(acts))
	}
	_ = protocolx.MethodChatDelta
}

// A file the change set creates that appeared in the workspace meanwhile is
// never overwritten: the whole edit is refused.
func TestApplyEditNeverOverwritesAFileThatAppeared(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	e.WriteFile("new.txt", "the user's own file\n")
	e.WriteFile("other.txt", "1\n")
	applied, reason, _, err := s.ApplyChanges(ctx, []lsp.TestChange{
		{Rel: "new.txt", Path: filepath.Join(e.Root, "new.txt"), Action: "created", New: []byte("agent\n")},
		{Rel: "other.txt", Path: filepath.Join(e.Root, "other.txt"), Action: "modified", Base: []byte("1\n"), New: []byte("2\n")},
	})
	if err != nil || applied || reason == "" {
		t.Fatalf("applied=%v reason=%q err=%v", applied, reason, err)
	}
	if e.ReadFile("new.txt") != "the user's own file\n" || e.ReadFile("other.txt") != "1\n" {
		t.Fatalf("a refused edit changed files: new=%q other=%q", e.ReadFile("new.txt"), e.ReadFile("other.txt"))
	}
}

// A command's output delivered in one big write (the kept tail of a capped
// output arrives that way) is reported in linear time: the bytes allocated
// stay proportional to the output (copying the rest of the buffer for every
// line made 1 MB cost gigabytes).
func TestProgressWriterLinearInOutputSize(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	line := strings.Repeat("x", 63) + "\n"
	big := []byte(strings.Repeat(line, (1<<20)/len(line)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.ReportOutput(ctx, big)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("reporting 1 MB of output allocated %d MB", grew>>20)
	}
}

// A command sent right after initialized runs with the editor's settings
// (workspace/configuration), not the defaults.
func TestCommandsWaitForTheEditorsSettings(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{Configuration: map[string]any{"run": map[string]any{"timeoutSec": 41}}})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e) // an executeCommand: it waited for the settings
	if got := s.CurrentSettings().Run.TimeoutSec; got != 41 {
		t.Fatalf("run.timeoutSec = %d when the first command ran, want 41", got)
	}
}

func TestParseSettingsNestedSection(t *testing.T) {
	st, problems := lsp.ParseSettings(lsp.DefaultSettings(), []byte(`{"opencode": {"run": {"timeoutSec": 5}}, "sandbox": "e2b"}`))
	if len(problems) != 0 || st.Run.TimeoutSec != 5 || st.Sandbox != "e2b" {
		t.Fatalf("settings %+v, problems %v", st.Run, problems)
	}
	if _, problems := lsp.ParseSettings(lsp.DefaultSettings(), []byte(`{"opencode": 7}`)); len(problems) != 1 {
		t.Fatalf("a non-object section: %v", problems)
	}
}

// A key the editor drops (or sets to null) returns to its default, and the
// initialization options stay the base of every change. Pushed settings are
// applied in order, before any later request is served.
func TestSettingsChangesApplyOverTheBase(t *testing.T) {
	ctx := ctxT(t)
	e := lsptest.New(t, lsptest.Options{InitializationOptions: map[string]any{"sandbox": "e2b"}})
	e.Initialize(ctx)
	s := serverOf(t, ctx, e)
	after := func(sections ...any) lsp.Settings {
		for _, sec := range sections {
			_ = e.Notify(ctx, "workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"opencode": sec}})
		}
		serverOf(t, ctx, e) // a request: served after the notifications before it
		return s.CurrentSettings()
	}
	if got := after(map[string]any{"run": map[string]any{"command": "make lint"}}).Run.Command; got != "make lint" {
		t.Fatalf("run.command = %q", got)
	}
	if got := after(map[string]any{"run": map[string]any{}}).Run.Command; got != "" {
		t.Fatalf("dropped key kept %q", got)
	}
	st := after(map[string]any{"run": map[string]any{"command": "x"}}, map[string]any{"run": map[string]any{"command": nil}})
	if st.Run.Command != "" || st.Sandbox != "e2b" {
		t.Fatalf("after x then null: command %q, sandbox %q", st.Run.Command, st.Sandbox)
	}
}
