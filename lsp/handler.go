package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.lsp.dev/jsonrpc2"

	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// LSP error codes that jsonrpc2 v0.10.0 does not define.
const (
	codeServerNotInitialized jsonrpc2.Code = -32002
	codeRequestFailed        jsonrpc2.Code = -32803
	codeRequestCancelled     jsonrpc2.Code = -32800
)

// rpcError builds a JSON-RPC error with a code and a formatted message.
func rpcError(code jsonrpc2.Code, format string, args ...any) *jsonrpc2.Error {
	return jsonrpc2.NewError(code, fmt.Sprintf(format, args...))
}

// route is how one method is served.
type route struct {
	// fn handles the method. For notifications the result is ignored.
	fn func(s *Server, ctx context.Context, params json.RawMessage) (any, error)
	// inline handlers run on the read loop, in message order, before the
	// next message is read. Only notifications that change state (text
	// sync, exit) and the lifecycle requests are inline; an inline handler
	// must never wait for the client.
	inline bool
}

// The handler chain (outermost first), assembled by hand because
// go.lsp.dev/protocol's chain ignores numeric ids in $/cancelRequest and runs
// requests one at a time:
//
//	cancel   — registers each request's cancel func by id; $/cancelRequest
//	           with an integer or string id cancels it
//	async    — inline routes run on the read loop; every other request runs
//	           in its own goroutine, so a long executeCommand never delays a
//	           codeAction and handlers may call the client
//	recover  — a panic becomes an InternalError reply (exactly once), the
//	           stack goes to the log, and the server keeps serving
//	log      — method, id, duration and error at debug level
//	dispatch — lifecycle checks, then the method's route
func (s *Server) handler() jsonrpc2.Handler {
	return func(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request) error {
		reply = replyOnce(reply)
		if req.Method() == "$/cancelRequest" {
			s.cancelRequest(req.Params())
			if _, isCall := req.(*jsonrpc2.Call); isCall {
				// A notification sent as a request still gets an answer.
				return reply(ctx, nil, nil)
			}
			return nil
		}
		r, known := routes[req.Method()]
		call, isCall := req.(*jsonrpc2.Call)
		var key string
		if isCall {
			key = idKey(call.ID())
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			s.inflightMu.Lock()
			s.inflight[key] = cancel
			s.inflightMu.Unlock()
			inner := reply
			reply = func(ctx context.Context, result any, err error) error {
				s.inflightMu.Lock()
				delete(s.inflight, key)
				s.inflightMu.Unlock()
				cancel()
				return inner(ctx, result, err)
			}
		}
		run := func() {
			defer s.recoverPanic(ctx, reply, req)
			s.serve(ctx, reply, req, r, known)
		}
		if known && r.inline {
			run()
			return nil
		}
		s.requests.Add(1)
		go func() {
			defer s.requests.Done()
			run()
		}()
		return nil
	}
}

// serve is the log + dispatch layer.
func (s *Server) serve(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request, r route, known bool) {
	start := time.Now()
	_, isCall := req.(*jsonrpc2.Call)
	result, err := s.dispatch(ctx, req, r, known)
	if isCall {
		if err != nil && ctx.Err() != nil && !isRPCError(err) {
			err = rpcError(codeRequestCancelled, "%s: request cancelled", req.Method())
		}
		if rerr := reply(ctx, result, toRPCError(err)); rerr != nil {
			s.log.Debug("Reply failed", "method", req.Method(), "err", rerr)
		}
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("Handled", "method", req.Method(), "call", isCall,
			"ms", float64(time.Since(start).Microseconds())/1000, "err", err)
	}
}

func (s *Server) dispatch(ctx context.Context, req jsonrpc2.Request, r route, known bool) (any, error) {
	method := req.Method()
	_, isCall := req.(*jsonrpc2.Call)
	state := s.State()
	switch {
	case method == "exit":
		// Allowed in every state.
	case state == stateUninitialized && method != "initialize":
		if isCall {
			return nil, rpcError(codeServerNotInitialized, "%s: server not initialized (send initialize first)", method)
		}
		return nil, nil // notifications before initialize are dropped
	case state == stateShutdown:
		if isCall {
			return nil, rpcError(jsonrpc2.InvalidRequest, "%s: server is shut down (only exit is accepted)", method)
		}
		return nil, nil
	}
	if !known {
		if isCall {
			return nil, rpcError(jsonrpc2.MethodNotFound, "method not found: %s", method)
		}
		return nil, nil // unknown notifications ($/setTrace, ...) are ignored
	}
	return r.fn(s, ctx, req.Params())
}

// recoverPanic turns a panic in a handler into an InternalError reply.
func (s *Server) recoverPanic(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request) {
	v := recover()
	if v == nil {
		return
	}
	s.log.Error("Panic in handler", "method", req.Method(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if _, ok := req.(*jsonrpc2.Call); ok {
		_ = reply(ctx, nil, rpcError(jsonrpc2.InternalError, "%s: internal error: %v", req.Method(), v))
	}
}

// replyOnce makes a Replier safe to call more than once: only the first
// reply is sent, later ones are dropped.
func replyOnce(r jsonrpc2.Replier) jsonrpc2.Replier {
	var once sync.Once
	return func(ctx context.Context, result any, err error) error {
		sent := false
		var rerr error
		once.Do(func() {
			sent = true
			rerr = r(ctx, result, err)
		})
		if !sent {
			return nil
		}
		return rerr
	}
}

// idKey is the key of a request id in the in-flight table: "#5" for
// numbers, a quoted string for strings (jsonrpc2.ID's %q format).
func idKey(id jsonrpc2.ID) string { return fmt.Sprintf("%q", id) }

func (s *Server) cancelRequest(params json.RawMessage) {
	var p protocolx.CancelParams
	if json.Unmarshal(params, &p) != nil || len(p.ID) == 0 {
		return
	}
	var key string
	if p.ID[0] == '"' {
		var str string
		if json.Unmarshal(p.ID, &str) != nil {
			return
		}
		key = strconv.Quote(str)
	} else {
		n, err := strconv.ParseInt(string(p.ID), 10, 32)
		if err != nil {
			return
		}
		key = "#" + strconv.FormatInt(n, 10)
	}
	s.inflightMu.Lock()
	cancel := s.inflight[key]
	s.inflightMu.Unlock()
	if cancel != nil {
		s.log.Debug("Request cancelled by client", "id", key)
		cancel()
	}
}

func isRPCError(err error) bool {
	var e *jsonrpc2.Error
	return errors.As(err, &e)
}

// toRPCError keeps JSON-RPC errors and wraps any other error as
// RequestFailed with its message.
func toRPCError(err error) error {
	if err == nil {
		return nil
	}
	var e *jsonrpc2.Error
	if errors.As(err, &e) {
		if e.Message == err.Error() {
			return e
		}
		return jsonrpc2.NewError(e.Code, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return jsonrpc2.NewError(codeRequestCancelled, err.Error())
	}
	return jsonrpc2.NewError(codeRequestFailed, err.Error())
}

// decodeParams decodes a request's params into v, reporting a bad shape as
// InvalidParams that names the method.
func decodeParams(method string, params json.RawMessage, v any) error {
	if len(params) == 0 || string(params) == "null" {
		return rpcError(jsonrpc2.InvalidParams, "%s: missing params", method)
	}
	if err := json.Unmarshal(params, v); err != nil {
		return rpcError(jsonrpc2.InvalidParams, "%s: invalid params: %s", method, describeJSONError(err))
	}
	return nil
}

// describeJSONError names the field of a JSON type error.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Sprintf("field %s must be %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int32", "int64", "uint32", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return k
}
