package fakeopenrouter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Reply describes how the fake answers one chat-completions request. The
// zero value streams (or, for "stream": false, returns) a short default
// text. Fields combine: for example KeepAlives + FirstDelay + Chunks +
// StreamError gives comments, a wait, some content and then an in-band
// error chunk.
type Reply struct {
	// Status, when not 0 or 200, answers before any streaming with that
	// HTTP status and the spec's error body {"error":{code,message,metadata}}
	// (§4.1). Error fills the body (code defaults to Status, message to the
	// status text).
	Status int
	Error  *ErrorObject
	// RetryAfter is sent as the Retry-After header when not empty (seconds
	// or an HTTP-date, as the service sends it).
	RetryAfter string
	// Header holds extra response headers (for any status).
	Header http.Header
	// HeaderDelay waits before the status line and headers are written.
	HeaderDelay time.Duration

	// Model is the "model" of every chunk; default: the request's model, or
	// "openai/gpt-4o-mini".
	Model string
	// Chunks are the content deltas, one chunk each. When empty, Text is
	// streamed as one chunk; when both are empty and there are no tool
	// calls or Generate, a default sentence is.
	Chunks []string
	Text   string
	// Generate, when set, produces content deltas at write time: it is called
	// with 0, 1, 2, … just before each chunk is written and the stream's
	// content ends when it returns false. (Benchmarks stamp chunks with it.)
	Generate func(i int) (delta string, more bool)
	// Reasoning is streamed as delta.reasoning chunks before the content.
	Reasoning []string
	// ToolCalls are streamed after the content as OpenAI tool-call deltas
	// (arguments in fragments); FinishReason then defaults to "tool_calls".
	ToolCalls []ToolCall
	// FinishReason of the terminal chunk; default "stop" (or "tool_calls").
	FinishReason string
	// Usage of the final usage chunk (and of a non-stream body); nil sends a
	// usage computed from the text lengths with a cost.
	Usage *Usage
	// NoUsage leaves the usage chunk out.
	NoUsage bool
	// EmptyUsageChoices sends the usage chunk in OpenAI's form ("choices":
	// []) instead of OpenRouter's (one choice with an empty delta repeating
	// the finish reason); clients must accept both (§3.3).
	EmptyUsageChoices bool

	// KeepAlives ": OPENROUTER PROCESSING" comments are sent right after the
	// headers, before the first chunk.
	KeepAlives int
	// KeepAliveEvery, when set, sends a keep-alive comment at this interval
	// during FirstDelay and ChunkDelay waits.
	KeepAliveEvery time.Duration
	// FirstDelay waits after the headers (and KeepAlives) before the first
	// data chunk; ChunkDelay waits before each later chunk.
	FirstDelay time.Duration
	ChunkDelay time.Duration

	// StreamError, when set, is sent as an in-band error chunk (HTTP already
	// 200): a top-level "error" object and choices[0].finish_reason "error"
	// (§3.4), after ErrorAfter content chunks (0: as the first and only
	// chunk). The stream then ends, with "data: [DONE]" only if
	// DoneAfterError. For a non-stream request it becomes choices[0].error.
	StreamError    *ErrorObject
	ErrorAfter     int
	DoneAfterError bool

	// Cut ends the stream early; see [Cut]. The response ends cleanly (the
	// client reads EOF) unless Abort is set, which drops the connection
	// mid-response (the client reads an unexpected EOF).
	Cut   Cut
	Abort bool
	// Hang holds the response open, writing nothing more, until the client
	// goes away or the server closes; see [Hang].
	Hang Hang

	// SplitWrites, when > 0, writes every SSE event in pieces of at most
	// that many bytes, flushing each piece on its own.
	SplitWrites int
	// CRLF frames the stream with "\r\n" line endings.
	CRLF bool
	// MultiLineData spreads each chunk's JSON over several "data:" lines
	// (legal SSE; the parser joins them with "\n").
	MultiLineData bool

	// plainDeltas uses the minimal OpenAI delta shapes that OpenCode was
	// seen to accept (scripted agent mode): {"content":…}, {"tool_calls":…}
	// and {} for the finish chunk.
	plainDeltas bool
}

// ToolCall is one tool call a [Reply] streams.
type ToolCall struct {
	ID        string // default "call_<n>"
	Name      string
	Arguments string // JSON text; streamed in Fragments pieces (default 2)
	Fragments int
}

// Usage is the usage object of the final chunk (spec §3.3: tokens plus
// OpenRouter's cost in USD).
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	Cost             float64
}

// Cut chooses where a stream is cut off (the connection is closed without
// the rest, simulating a dropped proxy or provider).
type Cut int

const (
	// CutNone streams to the end.
	CutNone Cut = iota
	// CutBeforeFinish closes after the content chunks: no finish_reason, no
	// usage, no [DONE].
	CutBeforeFinish
	// CutBeforeDone closes after the finish and usage chunks, without
	// "data: [DONE]".
	CutBeforeDone
	// CutBeforeData closes right after the headers (and KeepAlives).
	CutBeforeData
)

// Hang chooses where a response stops making progress.
type Hang int

const (
	// HangNone does not hang.
	HangNone Hang = iota
	// HangBeforeHeaders holds before the status line is written.
	HangBeforeHeaders
	// HangAfterHeaders holds after the headers (and KeepAlives) are flushed.
	HangAfterHeaders
	// HangAfterFirstChunk holds after the first content chunk.
	HangAfterFirstChunk
)

var genCounter atomic.Int64

type exchange struct {
	s   *Server
	w   http.ResponseWriter
	r   *http.Request
	req ChatRequest
	rep Reply

	fl       http.Flusher
	id       string
	model    string
	created  int64
	eol      string
	gone     bool
	textLen  int
	finished string
}

// wait sleeps d, sending keep-alives if asked; false when the client went
// away or the server is closing.
func (x *exchange) wait(d time.Duration, keepAlive bool) bool {
	if d <= 0 {
		return !x.gone
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	var tick <-chan time.Time
	if keepAlive && x.rep.KeepAliveEvery > 0 {
		t := time.NewTicker(x.rep.KeepAliveEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-deadline.C:
			return true
		case <-tick:
			if !x.comment("OPENROUTER PROCESSING") {
				return false
			}
		case <-x.r.Context().Done():
			x.lost()
			return false
		case <-x.s.closing:
			x.gone = true
			return false
		}
	}
}

// hold blocks until the client goes away or the server closes.
func (x *exchange) hold() {
	select {
	case <-x.r.Context().Done():
		x.lost()
	case <-x.s.closing:
		x.gone = true
	}
}

func (x *exchange) lost() {
	if !x.gone {
		x.gone = true
		x.s.noteDisconnect()
	}
}

func (x *exchange) serve() {
	rep := &x.rep
	x.fl, _ = x.w.(http.Flusher)
	x.id = fmt.Sprintf("gen-%d-%06d", time.Now().Unix(), genCounter.Add(1))
	x.created = time.Now().Unix()
	x.model = rep.Model
	if x.model == "" {
		x.model = x.req.Model
	}
	if x.model == "" {
		x.model = "openai/gpt-4o-mini"
	}
	x.eol = "\n"
	if rep.CRLF {
		x.eol = "\r\n"
	}
	if rep.Hang == HangBeforeHeaders {
		x.hold()
		return
	}
	if !x.wait(rep.HeaderDelay, false) {
		return
	}
	h := x.w.Header()
	for k, vs := range rep.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if rep.RetryAfter != "" {
		h.Set("Retry-After", rep.RetryAfter)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeError(x.w, rep.Status, rep.Error, nil)
		return
	}
	h.Set("X-Generation-Id", x.id)
	if !x.req.Stream {
		x.serveJSON()
		return
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	x.w.WriteHeader(http.StatusOK)
	x.flush()
	x.stream()
}

func (x *exchange) flush() {
	if x.fl != nil {
		x.fl.Flush()
	}
}

// write sends one SSE event's bytes, split if asked; false once the client
// is gone.
func (x *exchange) write(b []byte) bool {
	if x.gone {
		return false
	}
	n := x.rep.SplitWrites
	if n <= 0 {
		n = len(b)
	}
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := x.w.Write(b[:k]); err != nil {
			x.lost()
			return false
		}
		x.flush()
		b = b[k:]
		if len(b) > 0 && x.r.Context().Err() != nil {
			x.lost()
			return false
		}
	}
	return true
}

func (x *exchange) comment(text string) bool {
	return x.write([]byte(": " + text + x.eol + x.eol))
}

func (x *exchange) data(payload []byte) bool {
	var b strings.Builder
	if x.rep.MultiLineData {
		var v any
		_ = json.Unmarshal(payload, &v)
		pretty, _ := json.MarshalIndent(v, "", " ")
		for _, line := range strings.Split(string(pretty), "\n") {
			b.WriteString("data: ")
			b.WriteString(line)
			b.WriteString(x.eol)
		}
	} else {
		b.WriteString("data: ")
		b.Write(payload)
		b.WriteString(x.eol)
	}
	b.WriteString(x.eol)
	return x.write([]byte(b.String()))
}

// Wire shapes (spec §3.3). Field order follows OpenRouter's examples.
type chunk struct {
	ID       string         `json:"id"`
	Provider string         `json:"provider"`
	Model    string         `json:"model"`
	Object   string         `json:"object"`
	Created  int64          `json:"created"`
	Error    map[string]any `json:"error,omitempty"`
	Choices  []chunkChoice  `json:"choices"`
	Usage    map[string]any `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index              int            `json:"index"`
	Delta              map[string]any `json:"delta"`
	FinishReason       *string        `json:"finish_reason"`
	NativeFinishReason *string        `json:"native_finish_reason"`
	Logprobs           any            `json:"logprobs"`
}

func (x *exchange) chunk(delta map[string]any, finish string) []byte {
	if x.rep.plainDeltas {
		if finish != "" {
			delta = map[string]any{}
		} else if _, ok := delta["tool_calls"]; ok {
			delta = map[string]any{"tool_calls": delta["tool_calls"]}
		} else if c, ok := delta["content"]; ok && c != "" {
			delta = map[string]any{"content": c}
		}
	}
	c := chunk{ID: x.id, Provider: "FakeProvider", Model: x.model, Object: "chat.completion.chunk", Created: x.created,
		Choices: []chunkChoice{{Delta: delta}}}
	if finish != "" {
		f := finish
		c.Choices[0].FinishReason = &f
		c.Choices[0].NativeFinishReason = &f
	}
	return marshalNoEscape(c)
}

func (x *exchange) contentChunks() []string {
	rep := &x.rep
	switch {
	case len(rep.Chunks) > 0:
		return rep.Chunks
	case rep.Text != "":
		return []string{rep.Text}
	case rep.Generate != nil || len(rep.ToolCalls) > 0 || rep.StreamError != nil:
		return nil
	default:
		return []string{"Hello from the fake OpenRouter."}
	}
}

func (x *exchange) usage() map[string]any {
	u := x.rep.Usage
	if u == nil {
		prompt := len(x.req.Raw)/4 + 1
		completion := x.textLen/4 + 1
		u = &Usage{PromptTokens: prompt, CompletionTokens: completion,
			Cost: float64(prompt)*0.00000015 + float64(completion)*0.0000006}
	}
	return map[string]any{
		"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens,
		"total_tokens":              u.PromptTokens + u.CompletionTokens,
		"prompt_tokens_details":     map[string]any{"cached_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0},
		"cost":                      u.Cost, "is_byok": false,
	}
}

func (x *exchange) finishReason() string {
	if x.rep.FinishReason != "" {
		return x.rep.FinishReason
	}
	if len(x.rep.ToolCalls) > 0 {
		return "tool_calls"
	}
	return "stop"
}

func (x *exchange) stream() {
	rep := &x.rep
	for range rep.KeepAlives {
		if !x.comment("OPENROUTER PROCESSING") {
			return
		}
	}
	if rep.Cut == CutBeforeData {
		x.cut()
		return
	}
	if rep.Hang == HangAfterHeaders {
		x.hold()
		return
	}
	n := 0             // data chunks sent
	preWaited := false // the wait before the next chunk already happened
	gap := func() bool {
		d := rep.ChunkDelay
		if n == 0 {
			d = rep.FirstDelay
		}
		return x.wait(d, true)
	}
	next := func(payload []byte) bool {
		if preWaited {
			preWaited = false
		} else if !gap() {
			return false
		}
		n++
		return x.data(payload)
	}
	if !next(x.chunk(map[string]any{"role": "assistant", "content": ""}, "")) {
		return
	}
	sent := 0 // content chunks sent
	emitErr := func() {
		if rep.StreamError == nil || sent != rep.ErrorAfter {
			return
		}
		c := chunk{ID: x.id, Provider: "FakeProvider", Model: x.model, Object: "chat.completion.chunk", Created: x.created,
			Error: rep.StreamError.wire(http.StatusBadGateway)}
		f := "error"
		c.Choices = []chunkChoice{{Delta: map[string]any{"content": ""}, FinishReason: &f, NativeFinishReason: &f}}
		if next(marshalNoEscape(c)) && rep.DoneAfterError {
			x.write([]byte("data: [DONE]" + x.eol + x.eol))
		}
		x.finished = "error"
	}
	content := func(delta map[string]any) bool {
		if x.finished != "" {
			return false
		}
		if !next(x.chunk(delta, "")) {
			return false
		}
		sent++
		if sent == 1 && rep.Hang == HangAfterFirstChunk {
			x.hold()
			return false
		}
		emitErr()
		return x.finished == "" && !x.gone
	}
	emitErr()
	if x.finished != "" || x.gone {
		return
	}
	for _, r := range rep.Reasoning {
		if !content(map[string]any{"role": "assistant", "content": "", "reasoning": r}) {
			return
		}
	}
	for _, c := range x.contentChunks() {
		x.textLen += len(c)
		if !content(map[string]any{"role": "assistant", "content": c}) {
			return
		}
	}
	if rep.Generate != nil {
		for i := 0; ; i++ {
			// Wait first, so that Generate runs right before the write.
			if !gap() {
				return
			}
			preWaited = true
			c, more := rep.Generate(i)
			if !more {
				break
			}
			x.textLen += len(c)
			if !content(map[string]any{"role": "assistant", "content": c}) {
				return
			}
		}
	}
	for i, tc := range rep.ToolCalls {
		id := tc.ID
		if id == "" {
			id = "call_" + strconv.Itoa(i)
		}
		frags := splitN(tc.Arguments, max(tc.Fragments, 2))
		first := map[string]any{"index": i, "id": id, "type": "function",
			"function": map[string]any{"name": tc.Name, "arguments": frags[0]}}
		if !content(map[string]any{"role": "assistant", "content": "", "tool_calls": []any{first}}) {
			return
		}
		for _, f := range frags[1:] {
			frag := map[string]any{"index": i, "function": map[string]any{"arguments": f}}
			if !content(map[string]any{"role": "assistant", "content": "", "tool_calls": []any{frag}}) {
				return
			}
		}
	}
	if rep.StreamError != nil && x.finished == "" && sent < rep.ErrorAfter {
		// Fewer content chunks than ErrorAfter: send the error now.
		sent = rep.ErrorAfter
		emitErr()
	}
	if x.finished != "" {
		return
	}
	if rep.Cut == CutBeforeFinish {
		x.cut()
		return
	}
	fin := x.finishReason()
	if !next(x.chunk(map[string]any{"role": "assistant", "content": ""}, fin)) {
		return
	}
	if !rep.NoUsage {
		var c chunk
		if rep.EmptyUsageChoices {
			c = chunk{ID: x.id, Provider: "FakeProvider", Model: x.model, Object: "chat.completion.chunk", Created: x.created,
				Choices: []chunkChoice{}}
		} else {
			var cc chunk
			_ = json.Unmarshal(x.chunk(map[string]any{"role": "assistant", "content": ""}, fin), &cc)
			c = cc
		}
		c.Usage = x.usage()
		if !next(marshalNoEscape(c)) {
			return
		}
	}
	if rep.Cut == CutBeforeDone {
		x.cut()
		return
	}
	x.write([]byte("data: [DONE]" + x.eol + x.eol))
}

// cut ends the response at a Cut point: cleanly, or by dropping the
// connection when Abort is set.
func (x *exchange) cut() {
	if x.rep.Abort && !x.gone {
		panic(http.ErrAbortHandler)
	}
}

// splitN cuts s into n pieces of about equal length (fewer when s is
// short); it always returns at least one piece.
func splitN(s string, n int) []string {
	if n <= 1 || len(s) < n {
		return []string{s}
	}
	size := (len(s) + n - 1) / n
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

// serveJSON answers a non-streaming request with the §3.2 body.
func (x *exchange) serveJSON() {
	rep := &x.rep
	if rep.Hang == HangAfterHeaders || rep.Hang == HangAfterFirstChunk {
		x.hold()
		return
	}
	if !x.wait(rep.FirstDelay, false) {
		return
	}
	var text strings.Builder
	for _, c := range x.contentChunks() {
		text.WriteString(c)
	}
	if rep.Generate != nil {
		for i := 0; ; i++ {
			c, more := rep.Generate(i)
			if !more {
				break
			}
			text.WriteString(c)
		}
	}
	x.textLen = text.Len()
	msg := map[string]any{"role": "assistant", "content": text.String(), "refusal": nil, "reasoning": nil}
	if len(rep.ToolCalls) > 0 {
		var calls []any
		for i, tc := range rep.ToolCalls {
			id := tc.ID
			if id == "" {
				id = "call_" + strconv.Itoa(i)
			}
			calls = append(calls, map[string]any{"id": id, "type": "function",
				"function": map[string]any{"name": tc.Name, "arguments": tc.Arguments}})
		}
		msg["tool_calls"] = calls
	}
	fin := x.finishReason()
	choice := map[string]any{"index": 0, "logprobs": nil, "finish_reason": fin, "native_finish_reason": fin, "message": msg}
	if rep.StreamError != nil {
		choice["error"] = rep.StreamError.wire(http.StatusBadGateway)
		choice["finish_reason"] = "error"
	}
	body := map[string]any{
		"id": x.id, "provider": "FakeProvider", "model": x.model, "object": "chat.completion",
		"created": x.created, "system_fingerprint": "fp_fake", "choices": []any{choice},
	}
	if !rep.NoUsage {
		body["usage"] = x.usage()
	}
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(marshalNoEscape(body))
}
