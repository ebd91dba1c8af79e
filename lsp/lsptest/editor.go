// Package lsptest drives an in-process opencode-lsp server the way an editor
// does, over the real wire codec (Content-Length framing, JSON-RPC through
// go.lsp.dev/jsonrpc2 on a pipe). An [Editor] keeps open documents, applies
// workspace edits like an editor (open documents in memory with a version
// check, other files on disk), answers server→client requests through hooks,
// and records notifications (diagnostics, progress, messages, chat deltas)
// for assertions.
package lsptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/position"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// Options configure an Editor.
type Options struct {
	// Root is the workspace folder (default: a new temp dir).
	Root string
	// Capabilities are the client capabilities sent in initialize (default:
	// [FullCapabilities]).
	Capabilities map[string]any
	// InitializationOptions are sent in initialize.
	InitializationOptions any
	// Configuration answers workspace/configuration for section "opencode".
	Configuration any
	// Server configures the in-process server (Logger, Providers, ...).
	Server lsp.Options
	// Hooks answer server→client requests; nil hooks use editor-like defaults.
	Hooks Hooks
}

// Hooks let a test script the editor's answers.
type Hooks struct {
	// ApplyEdit answers workspace/applyEdit; default: [Editor.ApplyEdit].
	ApplyEdit func(protocolx.ApplyWorkspaceEditParams) protocolx.ApplyWorkspaceEditResult
	// ShowMessageRequest picks an action title ("" dismisses); default dismisses.
	ShowMessageRequest func(protocol.ShowMessageRequestParams) string
	// ShowDocument answers window/showDocument; default succeeds.
	ShowDocument func(protocolx.ShowDocumentParams) bool
}

// FullCapabilities is what a full-featured editor (VS Code) advertises.
func FullCapabilities() map[string]any {
	return map[string]any{
		"general": map[string]any{"positionEncodings": []string{"utf-16"}},
		"workspace": map[string]any{
			"applyEdit": true,
			"workspaceEdit": map[string]any{
				"documentChanges":         true,
				"resourceOperations":      []string{"create", "rename", "delete"},
				"changeAnnotationSupport": map[string]any{"groupsOnLabel": true},
			},
			"configuration":    true,
			"workspaceFolders": true,
		},
		"window": map[string]any{
			"workDoneProgress": true,
			"showDocument":     map[string]any{"support": true},
			"showMessage":      map[string]any{"messageActionItem": map[string]any{"additionalPropertiesSupport": true}},
		},
		"textDocument": map[string]any{
			"codeAction": map[string]any{"codeActionLiteralSupport": map[string]any{
				"codeActionKind": map[string]any{"valueSet": []string{"", "quickfix", "refactor", "source"}},
			}},
			"publishDiagnostics": map[string]any{"relatedInformation": true},
		},
	}
}

// Editor is a scripted fake editor connected to an in-process server.
type Editor struct {
	t    testing.TB
	opts Options
	conn jsonrpc2.Conn
	Root string

	exitCode chan int

	mu            sync.Mutex
	docs          map[protocol.DocumentURI]*Doc
	diagnostics   map[protocol.DocumentURI][]protocol.Diagnostic
	diagCount     int
	progress      []ProgressEvent
	messages      []protocol.ShowMessageParams
	logs          []protocol.LogMessageParams
	deltas        []protocolx.ChatDeltaParams
	requests      map[string]int // server→client requests by method
	notifications map[string]int
	edits         []protocolx.ApplyWorkspaceEditParams
	changed       chan struct{} // closed and replaced on every recorded event
	Encoding      position.Encoding
}

// Doc is an open document in the editor.
type Doc struct {
	URI     protocol.DocumentURI
	Version int32
	Text    string
}

// ProgressEvent is one $/progress notification.
type ProgressEvent struct {
	Token string
	Kind  string // begin | report | end
	Title string
	Msg   string
}

// New starts a server in-process and connects an editor to it. The
// server and the connection are torn down at the end of the test.
func New(t testing.TB, opts Options) *Editor {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	if opts.Capabilities == nil {
		opts.Capabilities = FullCapabilities()
	}
	cliSide, srvSide := net.Pipe()
	e := &Editor{
		t: t, opts: opts, Root: opts.Root,
		exitCode:      make(chan int, 1),
		docs:          map[protocol.DocumentURI]*Doc{},
		diagnostics:   map[protocol.DocumentURI][]protocol.Diagnostic{},
		requests:      map[string]int{},
		notifications: map[string]int{},
		changed:       make(chan struct{}),
		Encoding:      position.UTF16,
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		code, _ := lsp.Serve(ctx, srvSide, opts.Server)
		e.exitCode <- code
	}()
	e.conn = jsonrpc2.NewConn(jsonrpc2.NewStream(cliSide))
	e.conn.Go(ctx, e.handle)
	t.Cleanup(func() {
		cancel()
		e.conn.Close()
		select {
		case <-e.exitCode:
		case <-time.After(10 * time.Second):
			t.Errorf("server did not stop within 10s")
		}
	})
	return e
}

// URI returns the file URI of a workspace-relative path.
func (e *Editor) URI(rel string) protocol.DocumentURI {
	return protocol.DocumentURI(fileURI(filepath.Join(e.Root, rel)))
}

// Call sends a request and decodes its result into result (may be nil).
func (e *Editor) Call(ctx context.Context, method string, params, result any) error {
	_, err := e.conn.Call(ctx, method, params, result)
	return err
}

// Notify sends a notification.
func (e *Editor) Notify(ctx context.Context, method string, params any) error {
	return e.conn.Notify(ctx, method, params)
}

// Initialize sends initialize + initialized and returns the result.
func (e *Editor) Initialize(ctx context.Context) protocolx.InitializeResult {
	e.t.Helper()
	pid := os.Getpid()
	params := map[string]any{
		"processId":        pid,
		"rootUri":          fileURI(e.Root),
		"workspaceFolders": []map[string]any{{"uri": fileURI(e.Root), "name": "ws"}},
		"capabilities":     e.opts.Capabilities,
		"clientInfo":       map[string]any{"name": "lsptest", "version": "1"},
	}
	if e.opts.InitializationOptions != nil {
		params["initializationOptions"] = e.opts.InitializationOptions
	}
	var res protocolx.InitializeResult
	if err := e.Call(ctx, "initialize", params, &res); err != nil {
		e.t.Fatalf("initialize: %v", err)
	}
	if enc := position.Encoding(res.Capabilities.PositionEncoding); enc.Valid() {
		e.Encoding = enc
	}
	if err := e.Notify(ctx, "initialized", map[string]any{}); err != nil {
		e.t.Fatalf("initialized: %v", err)
	}
	return res
}

// Shutdown sends shutdown and exit and returns the server's exit code.
func (e *Editor) Shutdown(ctx context.Context) int {
	e.t.Helper()
	if err := e.Call(ctx, "shutdown", nil, nil); err != nil {
		e.t.Fatalf("shutdown: %v", err)
	}
	return e.Exit(ctx)
}

// Exit sends exit and returns the server's exit code.
func (e *Editor) Exit(ctx context.Context) int {
	e.t.Helper()
	_ = e.Notify(ctx, "exit", nil)
	select {
	case code := <-e.exitCode:
		e.exitCode <- code
		return code
	case <-ctx.Done():
		e.t.Fatalf("server did not exit: %v", ctx.Err())
		return -1
	}
}

// WriteFile writes a workspace file on disk.
func (e *Editor) WriteFile(rel, text string) {
	e.t.Helper()
	p := filepath.Join(e.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// ReadFile reads a workspace file from disk ("" when missing).
func (e *Editor) ReadFile(rel string) string {
	b, _ := os.ReadFile(filepath.Join(e.Root, rel))
	return string(b)
}

// Open opens a document with text (didOpen, version 1).
func (e *Editor) Open(ctx context.Context, rel, languageID, text string) protocol.DocumentURI {
	e.t.Helper()
	uri := e.URI(rel)
	e.mu.Lock()
	e.docs[uri] = &Doc{URI: uri, Version: 1, Text: text}
	e.mu.Unlock()
	if err := e.Notify(ctx, "textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": languageID, "version": 1, "text": text,
	}}); err != nil {
		e.t.Fatalf("didOpen: %v", err)
	}
	return uri
}

// Change replaces an open document's text (didChange, full sync).
func (e *Editor) Change(ctx context.Context, uri protocol.DocumentURI, text string) {
	e.t.Helper()
	e.mu.Lock()
	d := e.docs[uri]
	if d == nil {
		e.mu.Unlock()
		e.t.Fatalf("Change: %s is not open", uri)
	}
	d.Version++
	d.Text = text
	v := d.Version
	e.mu.Unlock()
	if err := e.Notify(ctx, "textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": uri, "version": v},
		"contentChanges": []map[string]any{{"text": text}},
	}); err != nil {
		e.t.Fatalf("didChange: %v", err)
	}
}

// Doc returns an open document's current state.
func (e *Editor) Doc(uri protocol.DocumentURI) (Doc, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.docs[uri]
	if !ok {
		return Doc{}, false
	}
	return *d, true
}

// CodeActions requests code actions for a range with the given diagnostics.
func (e *Editor) CodeActions(ctx context.Context, uri protocol.DocumentURI, rng protocol.Range, diags []protocol.Diagnostic) []protocol.CodeAction {
	e.t.Helper()
	if diags == nil {
		diags = []protocol.Diagnostic{}
	}
	var out []protocol.CodeAction
	err := e.Call(ctx, "textDocument/codeAction", map[string]any{
		"textDocument": map[string]any{"uri": uri}, "range": rng,
		"context": map[string]any{"diagnostics": diags},
	}, &out)
	if err != nil {
		e.t.Fatalf("codeAction: %v", err)
	}
	return out
}

// Execute runs workspace/executeCommand with one argument object and
// decodes the result into result (may be nil).
func (e *Editor) Execute(ctx context.Context, command string, arg any, result any) error {
	params := map[string]any{"command": command}
	if arg != nil {
		params["arguments"] = []any{arg}
	}
	return e.Call(ctx, "workspace/executeCommand", params, result)
}

// Diagnostics returns the last published diagnostics of uri.
func (e *Editor) Diagnostics(uri protocol.DocumentURI) []protocol.Diagnostic {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocol.Diagnostic(nil), e.diagnostics[uri]...)
}

// AllDiagnostics returns the last published diagnostics by URI (files
// whose last publication was empty are left out).
func (e *Editor) AllDiagnostics() map[protocol.DocumentURI][]protocol.Diagnostic {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[protocol.DocumentURI][]protocol.Diagnostic{}
	for u, d := range e.diagnostics {
		if len(d) > 0 {
			out[u] = append([]protocol.Diagnostic(nil), d...)
		}
	}
	return out
}

// PublishCount is the number of publishDiagnostics notifications received.
func (e *Editor) PublishCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.diagCount
}

// Progress returns the $/progress events received so far.
func (e *Editor) Progress() []ProgressEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ProgressEvent(nil), e.progress...)
}

// Messages returns the window/showMessage notifications received so far.
func (e *Editor) Messages() []protocol.ShowMessageParams {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocol.ShowMessageParams(nil), e.messages...)
}

// Deltas returns the opencode/chatDelta notifications received so far.
func (e *Editor) Deltas() []protocolx.ChatDeltaParams {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocolx.ChatDeltaParams(nil), e.deltas...)
}

// Edits returns the workspace/applyEdit requests received so far.
func (e *Editor) Edits() []protocolx.ApplyWorkspaceEditParams {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocolx.ApplyWorkspaceEditParams(nil), e.edits...)
}

// RequestCount returns how many server→client requests of method arrived.
func (e *Editor) RequestCount(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests[method]
}

// Await waits until cond is true, or fails the test after timeout. cond is
// evaluated now, after every event the editor receives, and every 10 ms (for
// conditions on server state).
func (e *Editor) Await(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		e.mu.Lock()
		ch := e.changed
		e.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline:
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func (e *Editor) signal() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// handle answers the server's requests and records its notifications.
func (e *Editor) handle(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request) error {
	if _, ok := req.(*jsonrpc2.Call); ok {
		e.mu.Lock()
		e.requests[req.Method()]++
		e.signal()
		e.mu.Unlock()
		go func() { _ = e.answer(ctx, reply, req) }()
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.signal()
	e.notifications[req.Method()]++
	switch req.Method() {
	case "textDocument/publishDiagnostics":
		var p protocol.PublishDiagnosticsParams
		if json.Unmarshal(req.Params(), &p) == nil {
			e.diagnostics[p.URI] = p.Diagnostics
			e.diagCount++
		}
	case "$/progress":
		var p struct {
			Token json.RawMessage `json:"token"`
			Value struct {
				Kind    string `json:"kind"`
				Title   string `json:"title"`
				Message string `json:"message"`
			} `json:"value"`
		}
		if json.Unmarshal(req.Params(), &p) == nil {
			e.progress = append(e.progress, ProgressEvent{Token: string(p.Token), Kind: p.Value.Kind, Title: p.Value.Title, Msg: p.Value.Message})
		}
	case "window/showMessage":
		var p protocol.ShowMessageParams
		if json.Unmarshal(req.Params(), &p) == nil {
			e.messages = append(e.messages, p)
		}
	case "window/logMessage":
		var p protocol.LogMessageParams
		if json.Unmarshal(req.Params(), &p) == nil {
			e.logs = append(e.logs, p)
		}
	case protocolx.MethodChatDelta:
		var p protocolx.ChatDeltaParams
		if json.Unmarshal(req.Params(), &p) == nil {
			e.deltas = append(e.deltas, p)
		}
	}
	return nil
}

func (e *Editor) answer(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request) error {
	switch req.Method() {
	case "window/workDoneProgress/create", "client/registerCapability", "client/unregisterCapability":
		return reply(ctx, nil, nil)
	case "workspace/configuration":
		var p struct {
			Items []struct {
				Section string `json:"section"`
			} `json:"items"`
		}
		_ = json.Unmarshal(req.Params(), &p)
		out := make([]any, len(p.Items))
		for i, it := range p.Items {
			if it.Section == "opencode" {
				out[i] = e.opts.Configuration
			}
		}
		return reply(ctx, out, nil)
	case "workspace/applyEdit":
		var p protocolx.ApplyWorkspaceEditParams
		if err := json.Unmarshal(req.Params(), &p); err != nil {
			return reply(ctx, nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error()))
		}
		e.mu.Lock()
		e.edits = append(e.edits, p)
		e.signal()
		e.mu.Unlock()
		res := e.ApplyEdit
		if e.opts.Hooks.ApplyEdit != nil {
			res = e.opts.Hooks.ApplyEdit
		}
		return reply(ctx, res(p), nil)
	case "window/showMessageRequest":
		var p protocol.ShowMessageRequestParams
		_ = json.Unmarshal(req.Params(), &p)
		title := ""
		if e.opts.Hooks.ShowMessageRequest != nil {
			title = e.opts.Hooks.ShowMessageRequest(p)
		}
		if title == "" {
			return reply(ctx, nil, nil)
		}
		return reply(ctx, protocol.MessageActionItem{Title: title}, nil)
	case protocolx.MethodShowDocument:
		var p protocolx.ShowDocumentParams
		_ = json.Unmarshal(req.Params(), &p)
		ok := true
		if e.opts.Hooks.ShowDocument != nil {
			ok = e.opts.Hooks.ShowDocument(p)
		}
		return reply(ctx, protocolx.ShowDocumentResult{Success: ok}, nil)
	}
	return reply(ctx, nil, jsonrpc2.NewError(jsonrpc2.MethodNotFound, "lsptest: "+req.Method()))
}

// ApplyEdit applies a workspace edit the way an editor does: all or
// nothing; versioned edits of open documents are refused when the version
// differs; open documents change in memory (a didChange is sent), other
// files on disk; CreateFile creates the file, DeleteFile removes it.
func (e *Editor) ApplyEdit(p protocolx.ApplyWorkspaceEditParams) protocolx.ApplyWorkspaceEditResult {
	type pending struct {
		uri  protocol.DocumentURI
		text string
		open bool
	}
	e.mu.Lock()
	texts := map[protocol.DocumentURI]*pending{}
	load := func(uri protocol.DocumentURI) (*pending, error) {
		if p, ok := texts[uri]; ok {
			return p, nil
		}
		if d, ok := e.docs[uri]; ok {
			p := &pending{uri: uri, text: d.Text, open: true}
			texts[uri] = p
			return p, nil
		}
		b, err := os.ReadFile(uriPath(uri))
		if err != nil {
			return nil, err
		}
		p := &pending{uri: uri, text: string(b)}
		texts[uri] = p
		return p, nil
	}
	var creates, deletes []protocol.DocumentURI
	fail := func(i int, reason string) protocolx.ApplyWorkspaceEditResult {
		e.mu.Unlock()
		return protocolx.ApplyWorkspaceEditResult{Applied: false, FailureReason: reason, FailedChange: &i}
	}
	for i, c := range p.Edit.DocumentChanges {
		switch {
		case c.CreateFile != nil:
			if _, err := os.Stat(uriPath(c.CreateFile.URI)); err == nil && !(c.CreateFile.Options != nil && (c.CreateFile.Options.IgnoreIfExists || c.CreateFile.Options.Overwrite)) {
				return fail(i, "file exists: "+string(c.CreateFile.URI))
			}
			creates = append(creates, c.CreateFile.URI)
			if _, ok := texts[c.CreateFile.URI]; !ok {
				if b, err := os.ReadFile(uriPath(c.CreateFile.URI)); err == nil {
					texts[c.CreateFile.URI] = &pending{uri: c.CreateFile.URI, text: string(b)}
				} else {
					texts[c.CreateFile.URI] = &pending{uri: c.CreateFile.URI}
				}
			}
		case c.DeleteFile != nil:
			deletes = append(deletes, c.DeleteFile.URI)
		case c.TextDocumentEdit != nil:
			te := c.TextDocumentEdit
			if te.TextDocument.Version != nil {
				d, ok := e.docs[te.TextDocument.URI]
				if !ok || d.Version != *te.TextDocument.Version {
					return fail(i, fmt.Sprintf("version mismatch for %s", te.TextDocument.URI))
				}
			}
			pd, err := load(te.TextDocument.URI)
			if err != nil {
				return fail(i, err.Error())
			}
			next, err := applyEdits(pd.text, te.Edits, e.Encoding)
			if err != nil {
				return fail(i, err.Error())
			}
			pd.text = next
		case c.RenameFile != nil:
			return fail(i, "lsptest: rename not supported")
		}
	}
	for uri, edits := range p.Edit.Changes {
		pd, err := load(uri)
		if err != nil {
			return fail(0, err.Error())
		}
		ae := make([]protocolx.AnnotatedTextEdit, len(edits))
		for i, ed := range edits {
			ae[i] = protocolx.AnnotatedTextEdit{Range: ed.Range, NewText: ed.NewText}
		}
		next, err := applyEdits(pd.text, ae, e.Encoding)
		if err != nil {
			return fail(0, err.Error())
		}
		pd.text = next
	}
	// Commit.
	var changedOpen []*Doc
	for _, uri := range creates {
		_ = os.MkdirAll(filepath.Dir(uriPath(uri)), 0o755)
		if _, err := os.Stat(uriPath(uri)); err != nil {
			_ = os.WriteFile(uriPath(uri), nil, 0o644)
		}
	}
	for _, pd := range texts {
		if pd.open {
			d := e.docs[pd.uri]
			if d.Text != pd.text {
				d.Text = pd.text
				d.Version++
				changedOpen = append(changedOpen, &Doc{URI: d.URI, Version: d.Version, Text: d.Text})
			}
			continue
		}
		_ = os.WriteFile(uriPath(pd.uri), []byte(pd.text), 0o644)
	}
	for _, uri := range deletes {
		_ = os.Remove(uriPath(uri))
	}
	e.mu.Unlock()
	for _, d := range changedOpen {
		_ = e.Notify(context.Background(), "textDocument/didChange", map[string]any{
			"textDocument":   map[string]any{"uri": d.URI, "version": d.Version},
			"contentChanges": []map[string]any{{"text": d.Text}},
		})
	}
	return protocolx.ApplyWorkspaceEditResult{Applied: true}
}

func applyEdits(text string, edits []protocolx.AnnotatedTextEdit, enc position.Encoding) (string, error) {
	m := position.NewMapper([]byte(text))
	type span struct {
		start, end int
		text       string
	}
	spans := make([]span, 0, len(edits))
	for _, ed := range edits {
		s, err := m.Offset(int(ed.Range.Start.Line), int(ed.Range.Start.Character), enc)
		if err != nil {
			return "", err
		}
		en, err := m.Offset(int(ed.Range.End.Line), int(ed.Range.End.Character), enc)
		if err != nil {
			return "", err
		}
		spans = append(spans, span{s, en, ed.NewText})
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp.start < last {
			return "", fmt.Errorf("overlapping edits")
		}
		b.WriteString(text[last:sp.start])
		b.WriteString(sp.text)
		last = sp.end
	}
	b.WriteString(text[last:])
	return b.String(), nil
}

func uriPath(uri protocol.DocumentURI) string {
	u, err := url.Parse(string(uri))
	if err != nil {
		return ""
	}
	return filepath.FromSlash(u.Path)
}

func fileURI(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}
