package fakeopenrouter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event read by the tests' own minimal SSE reader (kept
// independent of the client package so the fake is checked on its own).
type sseEvent struct {
	comment string
	data    string
}

func readSSE(t *testing.T, r io.Reader) (events []sseEvent, done bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	var data []string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == "":
			if len(data) > 0 {
				d := strings.Join(data, "\n")
				if d == "[DONE]" {
					done = true
				} else {
					events = append(events, sseEvent{data: d})
				}
				data = nil
			}
		case strings.HasPrefix(line, ":"):
			events = append(events, sseEvent{comment: strings.TrimSpace(line[1:])})
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return events, done
}

func post(t *testing.T, ctx context.Context, url, key string, body any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/chat/completions", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

type wireChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Role      string `json:"role"`
			Content   string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens int      `json:"prompt_tokens"`
		Cost         *float64 `json:"cost"`
	} `json:"usage"`
	Error *struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	} `json:"error"`
}

func decodeChunks(t *testing.T, evs []sseEvent) (chunks []wireChunk, comments int) {
	t.Helper()
	for _, e := range evs {
		if e.data == "" {
			comments++
			continue
		}
		var c wireChunk
		if err := json.Unmarshal([]byte(e.data), &c); err != nil {
			t.Fatalf("chunk is not JSON: %v: %q", err, e.data)
		}
		chunks = append(chunks, c)
	}
	return chunks, comments
}

var userMsg = []map[string]any{{"role": "user", "content": "hi"}}

func TestAuthErrorsUseSpecShape(t *testing.T) {
	s := New(t, Options{APIKey: "sk-or-v1-right"})
	for _, key := range []string{"", "sk-or-v1-wrong"} {
		res := post(t, context.Background(), s.URL, key, map[string]any{"model": "m", "messages": userMsg})
		if res.StatusCode != 401 {
			t.Fatalf("key %q: status %d, want 401", key, res.StatusCode)
		}
		var body struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if body.Error.Code != 401 || body.Error.Message == "" {
			t.Fatalf("error body %+v", body)
		}
	}
	res := post(t, context.Background(), s.URL, "sk-or-v1-right", map[string]any{"model": "m", "messages": userMsg})
	if res.StatusCode != 200 {
		t.Fatalf("right key: status %d", res.StatusCode)
	}
}

func TestDefaultStreamFollowsSpec(t *testing.T) {
	s := New(t, Options{APIKey: "k"})
	res := post(t, context.Background(), s.URL, "k", map[string]any{"model": "openai/gpt-4o-mini", "messages": userMsg, "stream": true})
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	evs, done := readSSE(t, res.Body)
	if !done {
		t.Fatal("no [DONE]")
	}
	if evs[0].comment != "OPENROUTER PROCESSING" {
		t.Fatalf("first event %+v, want keep-alive comment", evs[0])
	}
	chunks, _ := decodeChunks(t, evs)
	var text strings.Builder
	for _, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.ID != res.Header.Get("X-Generation-Id") {
			t.Fatalf("chunk %+v (generation id header %q)", c, res.Header.Get("X-Generation-Id"))
		}
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if text.String() != "Hello from the fake OpenRouter." {
		t.Fatalf("text %q", text.String())
	}
	last := chunks[len(chunks)-1]
	if last.Usage == nil || last.Usage.Cost == nil || len(last.Choices) != 1 || *last.Choices[0].FinishReason != "stop" {
		t.Fatalf("usage chunk %+v", last)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer k" || !strings.Contains(string(reqs[0].Body), `"stream":true`) {
		t.Fatalf("recorded %+v", reqs)
	}
}

func TestStreamFramingVariants(t *testing.T) {
	s := New(t, Options{})
	s.Enqueue(Reply{Chunks: []string{"a", "b\nc", "d"}, CRLF: true, SplitWrites: 3, MultiLineData: true, KeepAlives: 2, EmptyUsageChoices: true})
	res := post(t, context.Background(), s.URL, "any", map[string]any{"messages": userMsg, "stream": true})
	evs, done := readSSE(t, res.Body)
	chunks, comments := decodeChunks(t, evs)
	var text strings.Builder
	for _, c := range chunks {
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if !done || comments != 2 || text.String() != "ab\ncd" || len(chunks[len(chunks)-1].Choices) != 0 {
		t.Fatalf("done=%v comments=%d text=%q chunks=%d", done, comments, text.String(), len(chunks))
	}
}

func TestMidStreamErrorChunk(t *testing.T) {
	for _, code := range []any{502, "server_error"} {
		s := New(t, Options{})
		s.Enqueue(Reply{Chunks: []string{"partial"}, StreamError: &ErrorObject{Code: code, Message: "Provider disconnected unexpectedly"}, ErrorAfter: 1})
		res := post(t, context.Background(), s.URL, "k", map[string]any{"messages": userMsg, "stream": true})
		evs, done := readSSE(t, res.Body)
		chunks, _ := decodeChunks(t, evs)
		last := chunks[len(chunks)-1]
		want, _ := json.Marshal(code)
		if done || res.StatusCode != 200 || last.Error == nil || string(last.Error.Code) != string(want) || *last.Choices[0].FinishReason != "error" {
			t.Fatalf("code %v: done=%v last=%+v", code, done, last)
		}
		if chunks[1].Choices[0].Delta.Content != "partial" {
			t.Fatalf("content before the error missing: %+v", chunks)
		}
	}
}

func TestCutStreams(t *testing.T) {
	for _, tc := range []struct {
		cut       Cut
		abort     bool
		wantUsage bool
	}{{CutBeforeFinish, false, false}, {CutBeforeDone, false, true}, {CutBeforeFinish, true, false}} {
		s := New(t, Options{})
		s.Enqueue(Reply{Text: "x", Cut: tc.cut, Abort: tc.abort})
		res := post(t, context.Background(), s.URL, "k", map[string]any{"messages": userMsg, "stream": true})
		evs, done := readSSE(t, res.Body)
		chunks, _ := decodeChunks(t, evs)
		hasUsage := chunks[len(chunks)-1].Usage != nil
		if done || hasUsage != tc.wantUsage {
			t.Fatalf("cut %v: done=%v usage=%v", tc.cut, done, hasUsage)
		}
	}
}

func TestStatusErrorWithRetryAfter(t *testing.T) {
	s := New(t, Options{})
	s.Enqueue(Reply{Status: 429, RetryAfter: "7", Error: &ErrorObject{Message: "Rate limit exceeded", Metadata: map[string]any{"error_type": "rate_limit_exceeded"}}})
	res := post(t, context.Background(), s.URL, "k", map[string]any{"messages": userMsg, "stream": true})
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "7" ||
		string(b) != `{"error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}}}` {
		t.Fatalf("status %d retry-after %q body %s", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
}

func TestNonStreamResponse(t *testing.T) {
	s := New(t, Options{})
	s.Enqueue(Reply{Text: "answer", Usage: &Usage{PromptTokens: 3, CompletionTokens: 4, Cost: 0.5}})
	res := post(t, context.Background(), s.URL, "k", map[string]any{"messages": userMsg})
	var body struct {
		Object  string `json:"object"`
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			TotalTokens int     `json:"total_tokens"`
			Cost        float64 `json:"cost"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Object != "chat.completion" || body.Choices[0].Message.Content != "answer" || body.Choices[0].FinishReason != "stop" ||
		body.Usage.TotalTokens != 7 || body.Usage.Cost != 0.5 {
		t.Fatalf("%+v", body)
	}
}

func TestScriptedAgentMode(t *testing.T) {
	sc, err := ParseScript([]byte(`{"steps":[
		{"tool":"write","args":{"filePath":"hello.txt","content":"hello\nline2\n"}},
		{"tool":"bash","args":{"command":"exit 3"}}],
		"finalText":"All done."}`))
	if err != nil {
		t.Fatal(err)
	}
	s := New(t, Options{APIKey: "fake-key", Script: sc})
	tools := []map[string]any{{"type": "function", "function": map[string]any{"name": "write"}}}
	stream := func(msgs []map[string]any, withTools bool) (text string, calls map[int]*[3]string, finish string) {
		body := map[string]any{"model": "fake-model", "messages": msgs, "stream": true}
		if withTools {
			body["tools"] = tools
		}
		// The scripted answers are served under /v1 as well (OpenCode's
		// openai-compatible baseURL layout).
		res := post(t, context.Background(), s.RootURL+"/v1", "fake-key", body)
		evs, done := readSSE(t, res.Body)
		if !done {
			t.Fatal("no [DONE]")
		}
		chunks, _ := decodeChunks(t, evs)
		calls = map[int]*[3]string{}
		for _, c := range chunks {
			if len(c.Choices) == 0 {
				continue
			}
			ch := c.Choices[0]
			text += ch.Delta.Content
			for _, tc := range ch.Delta.ToolCalls {
				if calls[tc.Index] == nil {
					calls[tc.Index] = &[3]string{}
				}
				if tc.ID != "" {
					calls[tc.Index][0] = tc.ID
					calls[tc.Index][1] = tc.Function.Name
				}
				calls[tc.Index][2] += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if last := chunks[len(chunks)-1]; last.Usage == nil || len(last.Choices) != 0 {
			t.Fatalf("last chunk is not an OpenAI-style usage chunk: %+v", last)
		}
		return text, calls, finish
	}

	if text, _, fin := stream(userMsg, false); text != "Fake title" || fin != "stop" {
		t.Fatalf("title: %q %q", text, fin)
	}
	msgs := append([]map[string]any{}, userMsg...)
	_, calls, fin := stream(msgs, true)
	if fin != "tool_calls" || len(calls) != 1 || calls[0][1] != "write" {
		t.Fatalf("step 0: %q %v", fin, calls)
	}
	var args map[string]string
	if err := json.Unmarshal([]byte(calls[0][2]), &args); err != nil || args["content"] != "hello\nline2\n" {
		t.Fatalf("step 0 arguments %q: %v", calls[0][2], err)
	}
	msgs = append(msgs,
		map[string]any{"role": "assistant", "content": "", "tool_calls": []any{map[string]any{"id": calls[0][0], "type": "function", "function": map[string]any{"name": "write", "arguments": calls[0][2]}}}},
		map[string]any{"role": "tool", "tool_call_id": calls[0][0], "content": "Wrote file successfully."})
	if _, calls, _ := stream(msgs, true); calls[0][1] != "bash" || calls[0][2] != `{"command":"exit 3"}` {
		t.Fatalf("step 1: %v", calls)
	}
	msgs = append(msgs,
		map[string]any{"role": "assistant", "content": "", "tool_calls": []any{map[string]any{"id": "c2", "type": "function", "function": map[string]any{"name": "bash", "arguments": "{}"}}}},
		map[string]any{"role": "tool", "tool_call_id": "c2", "content": "out"})
	if text, calls, fin := stream(msgs, true); text != "All done." || len(calls) != 0 || fin != "stop" {
		t.Fatalf("final: %q %v %q", text, calls, fin)
	}
	// Stateless: the first step again for a fresh conversation.
	if _, calls, _ := stream(userMsg, true); calls[0][1] != "write" {
		t.Fatalf("fresh conversation: %v", calls)
	}
}

func TestScriptDelayReturnsOnDisconnect(t *testing.T) {
	s := New(t, Options{Script: &Script{Steps: []Step{{Tool: "bash", Args: json.RawMessage(`{}`)}}, DelayMs: 600_000}})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"messages": userMsg, "stream": true, "tools": []any{map[string]any{}}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/chat/completions", strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer k")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	for len(s.Requests()) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	<-s.Disconnected() // the held answer noticed the client leaving
	if s.Disconnects() != 1 {
		t.Fatalf("disconnects %d", s.Disconnects())
	}
}

func TestModelsAndKey(t *testing.T) {
	s := New(t, Options{APIKey: "sk-or-v1-abcdefghijklmnop", NoKeyPath: true})
	get := func(path, key string) (*http.Response, map[string]json.RawMessage) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]json.RawMessage
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res, m
	}
	if res, m := get("/models", ""); res.StatusCode != 200 || !strings.Contains(string(m["data"]), `"pricing"`) {
		t.Fatalf("models: %d %s", res.StatusCode, m["data"])
	}
	if res, _ := get("/key", "sk-or-v1-abcdefghijklmnop"); res.StatusCode != 404 {
		t.Fatalf("/key with NoKeyPath: %d", res.StatusCode)
	}
	if res, m := get("/auth/key", "sk-or-v1-abcdefghijklmnop"); res.StatusCode != 200 || !strings.Contains(string(m["data"]), `"is_free_tier":false`) {
		t.Fatalf("/auth/key: %d %s", res.StatusCode, m["data"])
	}
	if res, m := get("/auth/key", "bad"); res.StatusCode != 401 || !strings.Contains(string(m["error"]), `"code":401`) {
		t.Fatalf("/auth/key bad key: %d %s", res.StatusCode, m["error"])
	}
}

func TestModelScenarios(t *testing.T) {
	s := New(t, Options{ModelScenarios: true})
	res := post(t, context.Background(), s.URL, "k", map[string]any{"model": "fake/status-429", "messages": userMsg, "stream": true})
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("status %d", res.StatusCode)
	}
	res = post(t, context.Background(), s.URL, "k", map[string]any{"model": "fake/stream-error-string", "messages": userMsg, "stream": true})
	evs, done := readSSE(t, res.Body)
	chunks, _ := decodeChunks(t, evs)
	if done || chunks[len(chunks)-1].Error == nil || string(chunks[len(chunks)-1].Error.Code) != `"server_error"` {
		t.Fatalf("stream-error-string: %+v", chunks)
	}
	// Names the scenarios do not know are ordinary models.
	res = post(t, context.Background(), s.URL, "k", map[string]any{"model": "fake/fake-model", "messages": userMsg, "stream": true})
	if _, done := readSSE(t, res.Body); res.StatusCode != 200 || !done {
		t.Fatalf("plain model: %d", res.StatusCode)
	}
	if _, ok := ScenarioReply("openai/gpt-4o"); ok {
		t.Fatal("a real model name matched a scenario")
	}
}
