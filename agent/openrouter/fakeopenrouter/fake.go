// Package fakeopenrouter is an in-process fake of the OpenRouter API for
// tests, written from the project's OpenRouter wire spec
// (shared/specs/openrouter.md): the same paths, headers, JSON shapes, SSE
// framing, error shapes and mid-stream error chunks as the real service,
// plus fault injection for every failure the client must handle.
//
// It serves, under both "/api/v1" (OpenRouter's layout, [Server.URL]) and
// "/v1" (what an OpenAI-compatible client configured with a bare host uses):
//
//   - POST /chat/completions, streaming (SSE) and non-streaming (JSON);
//   - GET /models (public) and GET /key, GET /auth/key (the key check).
//
// Every request is recorded ([Server.Requests]) with its headers and body.
// Chat requests and key checks must carry "Authorization: Bearer <key>";
// otherwise the answer is a 401 with the spec's error body
// {"error":{"code":401,"message":...}}.
//
// How a chat request is answered, first match wins:
//
//  1. the next [Reply] queued with [Server.Enqueue] (fault injection per
//     request or as a sequence: status errors with Retry-After, keep-alive
//     comments, delays, hangs, mid-stream error chunks with numeric or
//     string codes, cut streams, chunk splitting, CRLF framing);
//  2. with [Options.ModelScenarios], a fault named by the model
//     ([ScenarioReply]);
//  3. the handler set with [Server.SetHandler];
//  4. the [Script] (scripted agent mode, below);
//  5. a default text answer.
//
// # Scripted agent mode
//
// With [Options.Script] set the fake drives a real coding agent (OpenCode,
// through its bundled @ai-sdk/openai-compatible provider) offline, as
// described in shared/specs/opencode-offline.md §2. It is stateless: for a
// request that offers tools, k = the number of assistant messages with
// tool_calls already in the request's messages; if k < len(steps) the
// answer streams one tool call for steps[k] (arguments split over two
// chunks, finish_reason "tool_calls"), otherwise it streams finalText
// (finish_reason "stop"). A request without "tools" is a title request and
// gets titleText. Each stream ends with a usage chunk and "data: [DONE]".
// delayMs holds an answer back (to test aborts) and returns early when the
// client disconnects. The script as JSON ([ParseScript], [LoadScript]):
//
//	{"steps": [
//	   {"tool": "write", "args": {"filePath": "hello.txt", "content": "hi\n"}},
//	   {"tool": "bash",  "args": {"command": "exit 3", "description": "fail"}, "delayMs": 2000}],
//	 "finalText": "All done.",
//	 "titleText": "Fake title",
//	 "delayMs": 0}
//
// or in Go:
//
//	srv := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: "fake-key",
//		Script: &fakeopenrouter.Script{
//			Steps:     []fakeopenrouter.Step{{Tool: "write", Args: json.RawMessage(`{"filePath":"hello.txt","content":"hi\n"}`)}},
//			FinalText: "All done.",
//		}})
//	// OpenCode provider options: {"baseURL": srv.URL, "apiKey": "fake-key"}
package fakeopenrouter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configures a [Server].
type Options struct {
	// APIKey is the only bearer key accepted. Empty accepts any non-empty
	// bearer token (what a scripted agent run usually wants).
	APIKey string
	// Script switches on scripted agent mode (see the package doc).
	Script *Script
	// Models is the catalogue served by GET /models as the "data" array;
	// nil serves one illustrative model (spec §6).
	Models []json.RawMessage
	// KeyData is the "data" object served by GET /key and GET /auth/key;
	// nil serves the spec's §7 example with label derived from the key.
	KeyData json.RawMessage
	// NoKeyPath makes GET /key answer 404, like a server that only knows the
	// legacy GET /auth/key.
	NoKeyPath bool
	// ModelScenarios lets the request's model choose a fault (see
	// [ScenarioReply]), for tests that can only set a model name (a
	// daemon driven through its settings, an editor).
	ModelScenarios bool
}

// Request is one recorded HTTP request.
type Request struct {
	N      int // 1-based order of arrival
	Time   time.Time
	Method string
	Path   string // as received, for example "/api/v1/chat/completions"
	Header http.Header
	Body   []byte
}

// ChatRequest is the part of a chat-completions request body the fake
// looks at (snake_case wire names, spec §3.1). Raw holds the whole body.
type ChatRequest struct {
	Model    string            `json:"model"`
	Messages []ChatMessage     `json:"messages"`
	Stream   bool              `json:"stream"`
	Tools    []json.RawMessage `json:"tools"`
	// MaxTokens and Temperature are pointers so that "absent" is visible.
	MaxTokens   *int            `json:"max_tokens"`
	Temperature *float64        `json:"temperature"`
	Raw         json.RawMessage `json:"-"`
}

// ChatMessage is one element of a request's messages (content may be a
// string or an array of parts, so it stays raw).
type ChatMessage struct {
	Role       string            `json:"role"`
	Content    json.RawMessage   `json:"content"`
	ToolCalls  []json.RawMessage `json:"tool_calls"`
	ToolCallID string            `json:"tool_call_id"`
}

// Text returns the message content when it is a plain string, or the
// concatenated text parts when it is an array of parts.
func (m ChatMessage) Text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			if p.Type == "text" {
				b.WriteString(p.Text)
			}
		}
		return b.String()
	}
	return ""
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base, "http://127.0.0.1:PORT/api/v1" (no trailing
	// slash), what OPENROUTER_BASE_URL would be set to.
	URL string
	// RootURL is "http://127.0.0.1:PORT".
	RootURL string

	opts    Options
	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu          sync.Mutex
	reqs        []Request
	queue       []Reply
	handler     func(ChatRequest) Reply
	disconnects int
	discCh      chan struct{}
}

// New starts a fake on a loopback port and closes it when tb's test ends.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := Start(o)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake on a loopback port; the caller must [Server.Close] it.
func Start(o Options) *Server {
	s := &Server{opts: o, closing: make(chan struct{}), discCh: make(chan struct{}, 1024)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.RootURL = s.srv.URL
	s.URL = s.srv.URL + "/api/v1"
	return s
}

// Close releases every held (hanging or delayed) response and stops the
// server. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Enqueue appends replies used, in order, for the next chat requests (one
// reply per request) before the handler, script or default apply.
func (s *Server) Enqueue(r ...Reply) {
	s.mu.Lock()
	s.queue = append(s.queue, r...)
	s.mu.Unlock()
}

// SetHandler sets a function that chooses the reply for each chat request
// not answered by the queue. nil removes it.
func (s *Server) SetHandler(h func(ChatRequest) Reply) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	copy(out, s.reqs)
	return out
}

// ChatRequests returns the decoded bodies of the chat-completions requests
// received so far, in order.
func (s *Server) ChatRequests() []ChatRequest {
	var out []ChatRequest
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/chat/completions") {
			cr, _ := decodeChat(r.Body)
			out = append(out, cr)
		}
	}
	return out
}

// Disconnects reports how many responses were cut short because the client
// went away (closed the connection or cancelled) while the fake was still
// writing, delaying or hanging.
func (s *Server) Disconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disconnects
}

// Disconnected returns a channel that receives one value each time a
// response is cut short by the client going away.
func (s *Server) Disconnected() <-chan struct{} { return s.discCh }

func (s *Server) noteDisconnect() {
	s.mu.Lock()
	s.disconnects++
	s.mu.Unlock()
	select {
	case s.discCh <- struct{}{}:
	default:
	}
}

func (s *Server) record(r *http.Request, body []byte) {
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{
		N: len(s.reqs) + 1, Time: time.Now(), Method: r.Method, Path: r.URL.Path,
		Header: r.Header.Clone(), Body: body,
	})
	s.mu.Unlock()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	s.record(r, body)

	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/api/v1/"):
		path = strings.TrimPrefix(path, "/api/v1")
	case strings.HasPrefix(path, "/v1/"):
		path = strings.TrimPrefix(path, "/v1")
	default:
		writeError(w, http.StatusNotFound, &ErrorObject{Message: "Not Found"}, nil)
		return
	}
	switch {
	case path == "/chat/completions" && r.Method == http.MethodPost:
		if !s.authorized(w, r) {
			return
		}
		s.serveChat(w, r, body)
	case path == "/models" && r.Method == http.MethodGet:
		s.serveModels(w)
	case (path == "/key" || path == "/auth/key") && r.Method == http.MethodGet:
		if path == "/key" && s.opts.NoKeyPath {
			writeError(w, http.StatusNotFound, &ErrorObject{Message: "Not Found"}, nil)
			return
		}
		if !s.authorized(w, r) {
			return
		}
		s.serveKey(w, r)
	default:
		writeError(w, http.StatusNotFound, &ErrorObject{Message: "Not Found"}, nil)
	}
}

// authorized checks "Authorization: Bearer <key>" and answers 401 when it
// is missing or wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	token = strings.TrimSpace(token)
	switch {
	case !ok || token == "":
		writeError(w, http.StatusUnauthorized, &ErrorObject{Message: "No auth credentials found"}, nil)
		return false
	case s.opts.APIKey != "" && token != s.opts.APIKey:
		writeError(w, http.StatusUnauthorized, &ErrorObject{Message: "User not found.", Metadata: map[string]any{"error_type": "authentication"}}, nil)
		return false
	}
	return true
}

func (s *Server) serveModels(w http.ResponseWriter) {
	models := s.opts.Models
	if models == nil {
		models = []json.RawMessage{json.RawMessage(defaultModel)}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": models, "links": map[string]any{"next": nil}, "total_count": len(models),
	})
}

const defaultModel = `{"id":"openai/gpt-4o-mini","canonical_slug":"openai/gpt-4o-mini-2024-07-18","name":"OpenAI: GPT-4o-mini","created":1721260800,"description":"Fake catalogue entry.","context_length":128000,"architecture":{"modality":"text+image->text","input_modalities":["text","image"],"output_modalities":["text"],"instruct_type":null},"pricing":{"prompt":"0.00000015","completion":"0.0000006","request":"0","image":"0"},"top_provider":{"context_length":128000,"max_completion_tokens":16384,"is_moderated":true},"per_request_limits":null,"supported_parameters":["max_tokens","temperature","tools","tool_choice","response_format"],"default_parameters":null,"hugging_face_id":null}`

func (s *Server) serveKey(w http.ResponseWriter, r *http.Request) {
	data := s.opts.KeyData
	if data == nil {
		token := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		label := "sk-or-v1-…"
		if len(token) > 12 {
			label = token[:9] + "…" + token[len(token)-3:]
		}
		d, _ := json.Marshal(map[string]any{
			"label": label, "limit": nil, "limit_remaining": nil, "limit_reset": nil,
			"include_byok_in_limit": false, "usage": 1.234,
			"usage_daily": 0.01, "usage_weekly": 0.2, "usage_monthly": 0.9,
			"byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
			"is_free_tier": false, "is_management_key": false, "is_provisioning_key": false,
			"free_model_daily_requests": map[string]any{"used": 3, "limit": 1000, "remaining": 997},
			"rate_limit":                map[string]any{"requests": -1, "interval": "10s", "note": "deprecated"},
			"allowed_data_regions":      []string{}, "creator_user_id": nil, "organization_id": nil,
			"workspace_id": nil, "expires_at": nil,
		})
		data = d
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func decodeChat(body []byte) (ChatRequest, error) {
	var cr ChatRequest
	err := json.Unmarshal(body, &cr)
	cr.Raw = body
	return cr, err
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, body []byte) {
	cr, err := decodeChat(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, &ErrorObject{Message: "Invalid JSON body: " + err.Error(), Metadata: map[string]any{"error_type": "invalid_request"}}, nil)
		return
	}
	if len(cr.Messages) == 0 {
		writeError(w, http.StatusBadRequest, &ErrorObject{Message: "messages: at least one message is required", Metadata: map[string]any{"error_type": "invalid_request"}}, nil)
		return
	}
	s.mu.Lock()
	var rep Reply
	switch {
	case len(s.queue) > 0:
		rep = s.queue[0]
		s.queue = s.queue[1:]
	case s.opts.ModelScenarios && isScenario(cr.Model):
		rep, _ = ScenarioReply(cr.Model)
	case s.handler != nil:
		h := s.handler
		s.mu.Unlock()
		rep = h(cr)
		s.mu.Lock()
	case s.opts.Script != nil:
		rep = s.opts.Script.reply(cr)
	default:
		rep = Reply{Text: "Hello from the fake OpenRouter.", KeepAlives: 1}
	}
	s.mu.Unlock()
	x := &exchange{s: s, w: w, r: r, req: cr, rep: rep}
	x.serve()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes the spec's error body (§4.1): HTTP status = error.code.
func writeError(w http.ResponseWriter, status int, e *ErrorObject, extra http.Header) {
	for k, vs := range extra {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, status, map[string]any{"error": e.wire(status)})
}

// ErrorObject is OpenRouter's error object, {code, message, metadata?}
// (spec §4.1 and §3.4). Code is an int (the HTTP status) or a string (the
// streaming page's "server_error" variant); nil means the HTTP status.
type ErrorObject struct {
	Code     any
	Message  string
	Metadata map[string]any
}

func (e *ErrorObject) wire(status int) map[string]any {
	m := map[string]any{}
	if e == nil {
		e = &ErrorObject{}
	}
	code := e.Code
	if code == nil {
		code = status
	}
	m["code"] = code
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	m["message"] = msg
	if e.Metadata != nil {
		m["metadata"] = e.Metadata
	}
	return m
}

// marshalNoEscape marshals v without HTML escaping, as OpenRouter's own
// JSON does.
func marshalNoEscape(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fakeopenrouter: marshal: %v", err))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
