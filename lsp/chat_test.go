package lsp_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

const sentinelKey = "sk-or-v1-SENTINEL-do-not-leak-0123456789"

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func chatEditor(t *testing.T, fake *fakeopenrouter.Server, caps map[string]any, log *syncBuffer, extra map[string]any) *lsptest.Editor {
	env := map[string]string{"OPENROUTER_API_KEY": sentinelKey, "OPENROUTER_BASE_URL": fake.URL}
	opts := lsp.Options{Getenv: func(k string) string { return env[k] }, Trace: true}
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	init := map[string]any{"openrouter": map[string]any{"model": "test/model"}}
	for k, v := range extra {
		init[k] = v
	}
	return lsptest.New(t, lsptest.Options{Capabilities: caps, Server: opts, InitializationOptions: init})
}

func TestChatStreamsDeltasInOrderWithContext(t *testing.T) {
	ctx := ctxT(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: sentinelKey})
	chunks := []string{"The ", "function ", "adds ", "two ", "numbers."}
	fake.Enqueue(fakeopenrouter.Reply{Chunks: chunks, ChunkDelay: 5 * time.Millisecond},
		fakeopenrouter.Reply{Text: "Yes: it returns their sum."})
	var log syncBuffer
	e := chatEditor(t, fake, nil, &log, nil)
	e.Initialize(ctx)
	src := "package calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n"
	uri := e.Open(ctx, "calc/add.go", "go", src)
	rng := protocol.Range{Start: protocol.Position{Line: 3}, End: protocol.Position{Line: 5, Character: 1}}

	var res command.ChatResult
	if err := e.Execute(ctx, command.Chat, command.ChatArgs{Prompt: "What does Add do?", URI: uri, Range: &rng}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Text != strings.Join(chunks, "") || res.ThreadID == "" || res.Model == "" || res.Usage == nil || res.Usage.CompletionTokens == 0 {
		t.Fatalf("result: %+v", res)
	}
	var got []string
	for _, d := range e.Deltas() {
		if d.ThreadID != res.ThreadID || !strings.HasPrefix(d.RunID, "chat-") {
			t.Fatalf("delta ids: %+v", d)
		}
		got = append(got, d.Delta)
	}
	if strings.Join(got, "|") != strings.Join(chunks, "|") {
		t.Fatalf("deltas %q, want %q in order", got, chunks)
	}
	// The request carried the context: file name, language, selection.
	reqs := fake.ChatRequests()
	body, _ := json.Marshal(reqs[0])
	for _, want := range []string{"calc/add.go", "(go)", "func Add(a, b int) int", "What does Add do?", "test/model"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("request lacks %q: %s", want, body)
		}
	}
	// A follow-up in the same thread sends the earlier turns.
	var res2 command.ChatResult
	if err := e.Execute(ctx, command.Chat, command.ChatArgs{Prompt: "Is it safe?", ThreadID: res.ThreadID}, &res2); err != nil {
		t.Fatal(err)
	}
	body2, _ := json.Marshal(fake.ChatRequests()[1])
	if res2.ThreadID != res.ThreadID || !bytes.Contains(body2, []byte("The function adds two numbers.")) || !bytes.Contains(body2, []byte("What does Add do?")) ||
		!bytes.Contains(body2, []byte("func Add(a, b int) int")) {
		t.Fatalf("follow-up lacks the thread: %s", body2)
	}
	// Progress ran, and the key never leaked (RPC trace on, debug log).
	if len(e.Progress()) == 0 {
		t.Error("no progress")
	}
	assertNoSecret(t, e, log.String())
}

func assertNoSecret(t *testing.T, e *lsptest.Editor, logText string) {
	t.Helper()
	if strings.Contains(logText, "SENTINEL") {
		t.Errorf("key in the log")
	}
	if !strings.Contains(logText, "RPC") {
		t.Errorf("the RPC trace was not on")
	}
	all, _ := json.Marshal(map[string]any{"msgs": e.Messages(), "progress": e.Progress(), "deltas": e.Deltas(), "diags": e.AllDiagnostics()})
	if bytes.Contains(all, []byte("SENTINEL")) {
		t.Errorf("key sent to the editor: %s", all)
	}
}

func TestChatErrorsAreClearAndKeyless(t *testing.T) {
	ctx := ctxT(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: "a-different-key"})
	var log syncBuffer
	e := chatEditor(t, fake, nil, &log, nil)
	e.Initialize(ctx)
	err := e.Execute(ctx, command.Chat, command.ChatArgs{Prompt: "hi"}, nil)
	if err == nil || !strings.Contains(err.Error(), "OPENROUTER_API_KEY environment variable") || strings.Contains(err.Error(), "SENTINEL") {
		t.Fatalf("401: %v", err)
	}
	p := e.Progress()
	if len(p) == 0 || !strings.HasPrefix(p[len(p)-1].Msg, "failed: ") {
		t.Fatalf("progress end: %+v", p)
	}
	assertNoSecret(t, e, log.String())
}

func TestChatMidStreamErrorAndTruncation(t *testing.T) {
	ctx := ctxT(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: sentinelKey})
	fake.Enqueue(
		fakeopenrouter.Reply{Chunks: []string{"partial "}, StreamError: &fakeopenrouter.ErrorObject{Code: 502, Message: "Provider disconnected"}, ErrorAfter: 1},
		fakeopenrouter.Reply{Chunks: []string{"cut "}, Cut: fakeopenrouter.CutBeforeFinish},
	)
	e := chatEditor(t, fake, nil, nil, nil)
	e.Initialize(ctx)
	if err := e.Execute(ctx, command.Chat, command.ChatArgs{Prompt: "a"}, nil); err == nil || !strings.Contains(err.Error(), "Provider disconnected") {
		t.Fatalf("mid-stream error: %v", err)
	}
	if err := e.Execute(ctx, command.Chat, command.ChatArgs{Prompt: "b"}, nil); err == nil {
		t.Fatal("a truncated stream succeeded")
	}
}

func TestChatCancelClosesTheStream(t *testing.T) {
	ctx := ctxT(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: sentinelKey})
	fake.Enqueue(fakeopenrouter.Reply{Chunks: []string{"a", "b", "c"}, Hang: fakeopenrouter.HangAfterFirstChunk})
	e := chatEditor(t, fake, nil, nil, nil)
	e.Initialize(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Execute(ctx, command.Chat, command.ChatArgs{Prompt: "slow"}, nil) }()
	e.Await(10*time.Second, "first delta", func() bool { return len(e.Deltas()) > 0 })
	var cr command.CancelResult
	if err := e.Execute(ctx, command.Cancel, command.CancelArgs{}, &cr); err != nil || len(cr.Cancelled) != 1 {
		t.Fatalf("cancel: %+v %v", cr, err)
	}
	if err := <-done; rpcCode(err) != -32803 || !strings.Contains(err.Error(), "was cancelled") {
		t.Fatalf("cancelled chat answered %v", err)
	}
	select {
	case <-fake.Disconnected():
	case <-time.After(10 * time.Second):
		t.Fatal("the HTTP stream stayed open after cancel")
	}
}

func TestExplainShowsLongAnswerAsDocument(t *testing.T) {
	ctx := ctxT(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: sentinelKey})
	long := strings.Repeat("This line explains something. ", 30)
	fake.Enqueue(fakeopenrouter.Reply{Text: long}, fakeopenrouter.Reply{Text: "Short answer."})
	var shown []string
	var mu sync.Mutex
	caps := lsptest.FullCapabilities()
	e := lsptest.New(t, lsptest.Options{Capabilities: caps, Server: lsp.Options{Getenv: func(k string) string {
		return map[string]string{"OPENROUTER_API_KEY": sentinelKey, "OPENROUTER_BASE_URL": fake.URL}[k]
	}}, Hooks: lsptest.Hooks{ShowDocument: func(p protocolx.ShowDocumentParams) bool {
		mu.Lock()
		shown = append(shown, p.URI)
		mu.Unlock()
		return true
	}}})
	e.Initialize(ctx)
	uri := e.Open(ctx, "x.py", "python", "print('hi')\n")
	var res command.ChatResult
	if err := e.Execute(ctx, command.Explain, command.ExplainArgs{URI: uri}, &res); err != nil || res.Text != long {
		t.Fatalf("explain: %v %q", err, res.Text)
	}
	mu.Lock()
	if len(shown) != 1 || !strings.HasSuffix(shown[0], ".md") {
		t.Fatalf("showDocument: %v", shown)
	}
	mu.Unlock()
	body, _ := json.Marshal(fake.ChatRequests()[0])
	if !bytes.Contains(body, []byte("print('hi')")) || !bytes.Contains(body, []byte("Explain what this code does")) {
		t.Fatalf("explain request: %s", body)
	}
	// A short answer goes to window/showMessage.
	if err := e.Execute(ctx, command.Explain, command.ExplainArgs{URI: uri}, nil); err != nil {
		t.Fatal(err)
	}
	e.Await(5*time.Second, "short answer message", func() bool {
		for _, m := range e.Messages() {
			if m.Message == "Short answer." {
				return true
			}
		}
		return false
	})
}

func TestExplainRefusesBinaryFiles(t *testing.T) {
	ctx := ctxT(t)
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: sentinelKey})
	e := chatEditor(t, fake, nil, nil, nil)
	e.Initialize(ctx)
	e.WriteFile("blob.bin", "\x00\x01\x02binary\xff\xfe")
	err := e.Execute(ctx, command.Explain, command.ExplainArgs{URI: e.URI("blob.bin")}, nil)
	if err == nil || !strings.Contains(err.Error(), "binary") || len(fake.ChatRequests()) != 0 {
		t.Fatalf("explain of a binary file: %v (%d model requests)", err, len(fake.ChatRequests()))
	}
}
