package lsp_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
)

// FuzzDispatch sends arbitrary methods with arbitrary params to one running
// server: every request must be answered (result or error) and the server
// must stay alive.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []struct{ method, params string }{
		{"textDocument/codeAction", `{"textDocument":{"uri":"file:///a"},"range":{"start":{"line":0,"character":0},"end":{"line":0,"character":0}},"context":{"diagnostics":[]}}`},
		{"workspace/executeCommand", `{"command":"opencode.status","arguments":[{}]}`},
		{"workspace/executeCommand", `{"command":"opencode.cancel","arguments":[{"runId":7}]}`},
		{"textDocument/didOpen", `{"textDocument":{"uri":"untitled:1","text":"é😀","version":1}}`},
		{"textDocument/didChange", `{"textDocument":{"uri":"untitled:1","version":2},"contentChanges":[{"range":{"start":{"line":0,"character":1},"end":{"line":0,"character":2}},"text":"x"}]}`},
		{"codeAction/resolve", `{"title":"x"}`},
		{"initialize", `{}`},
		{"$/cancelRequest", `{"id":"x"}`},
		{"workspace/didChangeConfiguration", `{"settings":{"opencode":{"run":{"timeoutSec":"x"}}}}`},
		{"window/workDoneProgress/cancel", `{"token":{}}`},
	} {
		f.Add(seed.method, []byte(seed.params))
	}
	r := lsptest.NewRaw(f, lsp.Options{})
	r.Initialize(`{"window":{"workDoneProgress":true}}`)
	var id atomic.Int64
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		if method == "shutdown" || method == "exit" {
			return // ending the session is legal; not what this target is about
		}
		m, _ := json.Marshal(method)
		p := params
		if !json.Valid(p) {
			p, _ = json.Marshal(string(params))
		}
		n := id.Add(1)
		r.Send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%s,"params":%s}`, n, m, p))
		resp := r.ResponseFor(t, fmt.Sprint(n), 10*time.Second)
		if resp["result"] == nil && resp["error"] == nil {
			t.Fatalf("%s: response without result or error: %v", method, resp)
		}
	})
}
