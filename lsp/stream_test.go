package lsp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
)

func TestMalformedInputGetsErrorsNotACrash(t *testing.T) {
	r := lsptest.NewRaw(t, lsp.Options{MaxMessageSize: 1 << 20})
	r.Initialize(`{}`)
	// Invalid JSON.
	r.Send(`{"jsonrpc":"2.0","id":1,"method":`)
	// A bad Content-Length, then a good message.
	r.WriteRaw([]byte("Content-Length: twelve\r\n\r\n"))
	// Over the size limit: skipped without buffering.
	big := strings.Repeat("x", 2<<20)
	r.WriteRaw([]byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(big), big)))
	// Not a request object; an id of the wrong type; a batch.
	r.Send(`{"jsonrpc":"2.0","id":2,"method":42}`)
	r.Send(`{"jsonrpc":"2.0","id":{"x":1},"method":"shutdown"}`)
	r.Send(`[{"jsonrpc":"2.0","id":3,"method":"shutdown"}]`)
	// Wrong parameter types.
	r.Send(`{"jsonrpc":"2.0","id":4,"method":"textDocument/codeAction","params":{"textDocument":"nope","range":7}}`)
	r.Send(`{"jsonrpc":"2.0","id":5,"method":"workspace/executeCommand","params":[1,2]}`)
	r.Send(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":5}}}`)
	// Still alive and answering.
	r.Send(`{"jsonrpc":"2.0","id":6,"method":"workspace/executeCommand","params":{"command":"opencode.status"}}`)
	if resp := r.Response("6", 10*time.Second); resp["result"] == nil {
		t.Fatalf("status after malformed input: %v", resp)
	}
	for _, id := range []string{"2", "4", "5"} {
		resp := r.Response(id, 5*time.Second)
		if resp["error"] == nil {
			t.Errorf("id %s: no error: %v", id, resp)
		}
	}
	var nullErrors int
	for _, m := range r.Messages() {
		if string(m["id"]) == "null" && m["error"] != nil {
			nullErrors++
		}
	}
	// invalid JSON, bad Content-Length, too big, bad id, batch.
	if nullErrors != 5 {
		t.Errorf("%d error responses with id null, want 5: %v", nullErrors, r.Messages())
	}
}

// A 50 MB didOpen arriving in small pieces is read correctly, in bounded
// memory (about a small multiple of the message).
func TestHugeDidOpenInSmallPieces(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB message")
	}
	r := lsptest.NewRaw(t, lsp.Options{})
	r.Initialize(`{"textDocument":{"codeAction":{"codeActionLiteralSupport":{}}}}`)
	text := strings.Repeat("0123456789abcdef\n", 50<<20/17)
	params, _ := json.Marshal(map[string]any{"textDocument": map[string]any{"uri": "file:///big.txt", "languageId": "plaintext", "version": 1, "text": text}})
	body := `{"jsonrpc":"2.0","method":"textDocument/didOpen","params":` + string(params) + `}`
	msg := []byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for len(msg) > 0 {
		n := min(len(msg), 4096)
		r.WriteRaw(msg[:n])
		msg = msg[n:]
	}
	r.Send(`{"jsonrpc":"2.0","id":9,"method":"textDocument/codeAction","params":{"textDocument":{"uri":"file:///big.txt"},"range":{"start":{"line":3000000,"character":0},"end":{"line":3000000,"character":0}},"context":{"diagnostics":[]}}}`)
	resp := r.Response("9", 60*time.Second)
	if !bytes.Contains(resp["result"], []byte("OpenCode: Explain selection")) {
		t.Fatalf("codeAction after the big didOpen: %s", resp["result"])
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 400<<20 {
		t.Fatalf("heap grew by %d MB for a 50 MB message", grew>>20)
	}
}
