// Package lspclient is the lean LSP client the benchmarks drive servers
// with: Content-Length framing and JSON-RPC 2.0 over any reader/writer pair
// (a server process's stdio, or a pipe to an in-process server), every
// message stamped with the instant its last byte was read. It answers the
// server's requests like a plain editor (progress creation, configuration,
// registrations, edits refused unless a hook says otherwise) and hands
// notifications to a hook.
//
// It is deliberately small and allocation-light, so that the client's own
// cost stays out of what the benchmarks measure.
package lspclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

// Response is a server's reply, with the time its last byte was read.
type Response struct {
	Result json.RawMessage
	Err    *Error
	At     time.Time
}

// Message is any JSON-RPC message as read from the server.
type Message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// Hooks customise the client. Every hook may be nil.
type Hooks struct {
	// Notify sees every notification, on the read goroutine, with its
	// arrival time; it must be quick.
	Notify func(method string, params json.RawMessage, at time.Time)
	// Configuration answers one workspace/configuration item (nil: null).
	Configuration func(section string) any
	// ApplyEdit answers workspace/applyEdit (nil: not applied).
	ApplyEdit func(params json.RawMessage, at time.Time) any
}

// Conn is a client connection. Its methods are safe for concurrent use.
type Conn struct {
	name string
	w    io.Writer
	wmu  sync.Mutex

	hooks   atomic.Pointer[Hooks]
	nextID  atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan Response
	done    chan struct{}
}

// ErrClosed is returned by Call when the connection ends before the reply.
var ErrClosed = errors.New("connection closed")

// New starts a client reading from r and writing to w; name prefixes its
// errors. The read loop ends when r does (see [Conn.Done]).
func New(name string, r io.Reader, w io.Writer, hooks Hooks) *Conn {
	c := &Conn{name: name, w: w, pending: map[int64]chan Response{}, done: make(chan struct{})}
	c.hooks.Store(&hooks)
	go c.readLoop(bufio.NewReaderSize(r, 1<<20))
	return c
}

// SetHooks replaces the hooks.
func (c *Conn) SetHooks(h Hooks) { c.hooks.Store(&h) }

// Done is closed when the read loop has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

func (c *Conn) write(msg any) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	frame := make([]byte, 0, len(body)+32)
	frame = append(frame, "Content-Length: "...)
	frame = strconv.AppendInt(frame, int64(len(body)), 10)
	frame = append(frame, "\r\n\r\n"...)
	frame = append(frame, body...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.w.Write(frame)
	return err
}

// Call sends a request and waits for its reply. It returns the reply, the
// instant right before the request was written, and an error for a
// transport failure, ctx ending, or an error reply.
func (c *Conn) Call(ctx context.Context, method string, params any) (Response, time.Time, error) {
	id := c.nextID.Add(1)
	ch := make(chan Response, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	sent := time.Now()
	if err := c.write(msg); err != nil {
		return Response{}, sent, fmt.Errorf("%s: write %s: %w", c.name, method, err)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return r, sent, fmt.Errorf("%s: %s: %w", c.name, method, r.Err)
		}
		return r, sent, nil
	case <-c.done:
		return Response{}, sent, fmt.Errorf("%s: %s: %w", c.name, method, ErrClosed)
	case <-ctx.Done():
		return Response{}, sent, fmt.Errorf("%s: %s: %w", c.name, method, ctx.Err())
	}
}

// CallResult is Call decoding the result into result (may be nil).
func (c *Conn) CallResult(ctx context.Context, method string, params, result any) error {
	r, _, err := c.Call(ctx, method, params)
	if err != nil || result == nil {
		return err
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("%s: %s result: %w", c.name, method, err)
	}
	return nil
}

// Notify sends a notification.
func (c *Conn) Notify(method string, params any) error {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := c.write(msg); err != nil {
		return fmt.Errorf("%s: write %s: %w", c.name, method, err)
	}
	return nil
}

func (c *Conn) readLoop(r *bufio.Reader) {
	defer close(c.done)
	for {
		length := -1
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			s := strings.TrimRight(string(line), "\r\n")
			if s == "" {
				break
			}
			name, value, ok := strings.Cut(s, ":")
			if ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(value))
			}
		}
		if length < 0 {
			return
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		at := time.Now()
		var m Message
		if json.Unmarshal(body, &m) != nil {
			continue
		}
		switch {
		case m.Method != "" && len(m.ID) > 0:
			go c.answer(m, at)
		case m.Method != "":
			if h := c.hooks.Load(); h.Notify != nil {
				h.Notify(m.Method, m.Params, at)
			}
		default:
			id, err := strconv.ParseInt(string(m.ID), 10, 64)
			if err != nil {
				continue
			}
			c.mu.Lock()
			ch := c.pending[id]
			c.mu.Unlock()
			if ch != nil {
				ch <- Response{Result: m.Result, Err: m.Error, At: at}
			}
		}
	}
}

// answer replies to a server→client request the way a plain editor does.
func (c *Conn) answer(m Message, at time.Time) {
	h := c.hooks.Load()
	var result any
	switch m.Method {
	case "workspace/configuration":
		var p struct {
			Items []struct {
				Section string `json:"section"`
			} `json:"items"`
		}
		_ = json.Unmarshal(m.Params, &p)
		out := make([]any, len(p.Items))
		if h.Configuration != nil {
			for i, it := range p.Items {
				out[i] = h.Configuration(it.Section)
			}
		}
		result = out
	case "workspace/applyEdit":
		result = map[string]any{"applied": false, "failureReason": "this client does not apply edits"}
		if h.ApplyEdit != nil {
			result = h.ApplyEdit(m.Params, at)
		}
	case "window/showDocument":
		result = map[string]any{"success": false}
	}
	_ = c.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result})
}
