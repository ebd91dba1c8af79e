package fakeopenrouter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ScenarioPrefix starts every model name that [ScenarioReply] understands.
const ScenarioPrefix = "fake/"

func isScenario(model string) bool {
	_, ok := ScenarioReply(model)
	return ok
}

// ScenarioReply maps a model name to a fault, the spec's "scenario switch
// by model name" (§8). Recognised names:
//
//	fake/status-NNN        HTTP status NNN with the spec's error body; 429 and
//	                       503 carry "Retry-After: 1", 403 moderation reasons,
//	                       402 a remedy hint
//	fake/stream-error      in-band error chunk with a numeric code (502) after
//	                       one content chunk
//	fake/stream-error-string  the same with the string code "server_error"
//	fake/error-only        an error chunk as the first and only chunk
//	fake/cut               the stream stops after content, without finish
//	                       reason or [DONE]
//	fake/no-done           finish reason and usage but no [DONE]
//	fake/keepalive         three keep-alive comments, then a short answer
//	fake/slow              a chunk every 200 ms, keep-alives in between
//	fake/hang              headers, then nothing until the client leaves
//	fake/tool-calls        one tool call "read_file" with fragmented arguments
//
// The boolean is false for any other name.
func ScenarioReply(model string) (Reply, bool) {
	name, ok := strings.CutPrefix(model, ScenarioPrefix)
	if !ok {
		return Reply{}, false
	}
	if code, ok := strings.CutPrefix(name, "status-"); ok {
		n, err := strconv.Atoi(code)
		if err != nil || n < 400 || n > 599 {
			return Reply{}, false
		}
		r := Reply{Status: n, Error: &ErrorObject{Message: http.StatusText(n)}}
		switch n {
		case 429:
			r.RetryAfter = "1"
			r.Error = &ErrorObject{Message: "Rate limit exceeded", Metadata: map[string]any{"error_type": "rate_limit_exceeded"}}
		case 503:
			r.RetryAfter = "1"
			r.Error = &ErrorObject{Message: "No instances available", Metadata: map[string]any{"error_type": "provider_overloaded"}}
		case 402:
			r.Error = &ErrorObject{Message: "Insufficient credits", Metadata: map[string]any{
				"limit_source": "openrouter_credits", "remedy_hint": "Add credits to continue."}}
		case 403:
			r.Error = &ErrorObject{Message: "Input was flagged", Metadata: map[string]any{
				"reasons": []string{"harassment"}, "flagged_input": "…", "provider_name": "FakeProvider", "model_slug": model}}
		}
		return r, true
	}
	switch name {
	case "stream-error":
		return Reply{Chunks: []string{"Partial "}, ErrorAfter: 1, StreamError: &ErrorObject{Code: 502,
			Message: "Provider disconnected unexpectedly", Metadata: map[string]any{"error_type": "provider_unavailable"}}}, true
	case "stream-error-string":
		return Reply{Chunks: []string{"Partial "}, ErrorAfter: 1, StreamError: &ErrorObject{Code: "server_error",
			Message: "Provider disconnected unexpectedly"}}, true
	case "error-only":
		return Reply{StreamError: &ErrorObject{Code: 502, Message: "Provider returned error"}}, true
	case "cut":
		return Reply{Chunks: []string{"Partial ", "answer"}, Cut: CutBeforeFinish}, true
	case "no-done":
		return Reply{Text: "Answer without terminator", Cut: CutBeforeDone}, true
	case "keepalive":
		return Reply{KeepAlives: 3, Text: "Answer after keep-alives"}, true
	case "slow":
		return Reply{Chunks: []string{"Slow ", "but ", "steady."}, ChunkDelay: 200 * time.Millisecond,
			KeepAliveEvery: 50 * time.Millisecond}, true
	case "hang":
		return Reply{Hang: HangAfterHeaders}, true
	case "tool-calls":
		return Reply{ToolCalls: []ToolCall{{Name: "read_file", Arguments: `{"path":"a.go"}`, Fragments: 3}}}, true
	}
	return Reply{}, false
}
