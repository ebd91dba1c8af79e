package main

import (
	"context"
	"encoding/json"
	"go/format"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/bench/lspclient"
)

// The workload is what the report says: 2,000 lines of gofmt-clean Go, with
// the measured selection on a statement in the middle.
func TestWorkspace(t *testing.T) {
	w, err := makeWorkspace(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.BigText, "\n"); n != bigLines {
		t.Fatalf("big.go has %d lines, want %d", n, bigLines)
	}
	formatted, err := format.Source([]byte(w.BigText))
	if err != nil {
		t.Fatal(err)
	}
	if string(formatted) != w.BigText {
		t.Error("big.go is not gofmt-clean")
	}
	line := strings.Split(w.BigText, "\n")[w.SelLine]
	if w.SelLine < bigLines/2 || w.SelLine > bigLines/2+30 || line[w.SelStart:w.SelEnd] != "total := k + 1" || w.SelEnd != len(line) {
		t.Errorf("selection %d:%d-%d is %q", w.SelLine, w.SelStart, w.SelEnd, line)
	}
}

// The null server, driven by the benchmarks' client over pipes, answers
// like a minimal language server and exits on exit.
func TestNullServerWithClient(t *testing.T) {
	cliR, srvW := io.Pipe()
	srvR, cliW := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- serveNull(srvR, srvW)
		srvR.Close() // later writes fail, as to a process that exited
		srvW.Close()
	}()
	var notes []string
	c := lspclient.New("null", cliR, cliW, lspclient.Hooks{Notify: func(m string, _ json.RawMessage, _ time.Time) { notes = append(notes, m) }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var init struct {
		Capabilities struct {
			CodeActionProvider bool `json:"codeActionProvider"`
		} `json:"capabilities"`
	}
	if err := c.CallResult(ctx, "initialize", map[string]any{"capabilities": map[string]any{}}, &init); err != nil || !init.Capabilities.CodeActionProvider {
		t.Fatalf("initialize: %+v %v", init, err)
	}
	r, sent, err := c.Call(ctx, "textDocument/codeAction", map[string]any{})
	if err != nil || string(r.Result) != "[]" || !r.At.After(sent) {
		t.Fatalf("codeAction: %s %v (sent %v, at %v)", r.Result, err, sent, r.At)
	}
	if err := c.CallResult(ctx, "shutdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Notify("exit", nil); err != nil {
		t.Fatal(err)
	}
	if got := <-code; got != 0 {
		t.Fatalf("exit code %d", got)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the client did not see the connection end")
	}
	if _, _, err := c.Call(ctx, "shutdown", nil); err == nil {
		t.Error("a call after the end succeeded")
	}
	if len(notes) != 0 {
		t.Errorf("notifications from a null server: %v", notes)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if m, p90, p99 := median(ds), pct(ds, 90), pct(ds, 99); m != 50*time.Millisecond || p90 != 90*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("median %v p90 %v p99 %v", m, p90, p99)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("pct sorted its input")
	}
	if pct(nil, 50) != 0 || medianInt([]int64{3, 1, 2}) != 2 {
		t.Error("edge cases")
	}
}
