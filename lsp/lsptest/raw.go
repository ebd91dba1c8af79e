package lsptest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/lsp"
)

// Raw is a byte-level client for protocol edge cases (string request ids,
// malformed frames): it writes exactly the bytes given and collects every
// message the server sends. Server→client requests are answered with a
// null result so that the server never waits on it.
type Raw struct {
	t    testing.TB
	conn net.Conn
	wmu  sync.Mutex

	mu    sync.Mutex
	msgs  []map[string]json.RawMessage
	more  chan struct{}
	Code  chan int // the server's exit code
	ended chan struct{}
}

// NewRaw starts an in-process server and a raw client on a pipe.
func NewRaw(t testing.TB, opts lsp.Options) *Raw {
	t.Helper()
	cli, srv := net.Pipe()
	r := &Raw{t: t, conn: cli, more: make(chan struct{}), Code: make(chan int, 1), ended: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		code, _ := lsp.Serve(ctx, srv, opts)
		r.Code <- code
	}()
	go r.read()
	t.Cleanup(func() {
		cancel()
		cli.Close()
		select {
		case <-r.Code:
		case <-time.After(10 * time.Second):
			t.Errorf("server did not stop")
		}
	})
	return r
}

// WriteRaw writes bytes as they are.
func (r *Raw) WriteRaw(b []byte) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

// Send frames one JSON body and writes it.
func (r *Raw) Send(body string) {
	r.WriteRaw([]byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)))
}

func (r *Raw) read() {
	defer close(r.ended)
	br := bufio.NewReader(r.conn)
	for {
		length := -1
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if length < 0 {
			return // not a frame the server sends: stop reading
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			continue
		}
		if _, isReq := m["method"]; isReq && m["id"] != nil {
			r.Send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":null}`, m["id"]))
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		close(r.more)
		r.more = make(chan struct{})
		r.mu.Unlock()
	}
}

// Response waits for the response with the given raw id (`1`, `"abc"`, `null`).
func (r *Raw) Response(id string, timeout time.Duration) map[string]json.RawMessage {
	r.t.Helper()
	return r.ResponseFor(r.t, id, timeout)
}

// ResponseFor is Response reporting failures to t (for fuzz targets, whose
// per-input t differs from the one the Raw was made with).
func (r *Raw) ResponseFor(t testing.TB, id string, timeout time.Duration) map[string]json.RawMessage {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for _, m := range r.msgs {
			if _, isReq := m["method"]; !isReq && string(m["id"]) == id {
				r.mu.Unlock()
				return m
			}
		}
		ch := r.more
		r.mu.Unlock()
		select {
		case <-ch:
		case <-r.ended:
			t.Fatalf("connection ended before the response to id %s", id)
		case <-deadline:
			t.Fatalf("no response to id %s within %s", id, timeout)
		}
	}
}

// Messages returns everything received so far.
func (r *Raw) Messages() []map[string]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]json.RawMessage(nil), r.msgs...)
}

// Initialize sends initialize (id 0) and initialized with capabilities.
func (r *Raw) Initialize(capabilities string) {
	r.Send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":null,"rootUri":null,"capabilities":` + capabilities + `}}`)
	r.Response("0", 10*time.Second)
	r.Send(`{"jsonrpc":"2.0","method":"initialized","params":{}}`)
}
