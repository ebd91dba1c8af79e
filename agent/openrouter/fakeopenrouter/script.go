package fakeopenrouter

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Script drives a coding agent in scripted agent mode (see the package doc
// and shared/specs/opencode-offline.md §2). JSON names are those of the
// spec's step_script.json.
type Script struct {
	// Steps are answered in order, one tool call per request, chosen by the
	// number of assistant tool-call messages already in the request.
	Steps []Step `json:"steps"`
	// FinalText answers every tool-bearing request once the steps are used
	// up (so later prompts in the same session get it too).
	FinalText string `json:"finalText"`
	// TitleText answers requests without "tools" (title generation);
	// default "Fake title".
	TitleText string `json:"titleText,omitempty"`
	// DelayMs holds every tool-bearing answer back this long before the
	// response headers (returning early if the client disconnects); a
	// step's own DelayMs wins.
	DelayMs int `json:"delayMs,omitempty"`
}

// Step is one scripted tool call.
type Step struct {
	// Tool is the tool's name as the agent offers it ("write", "edit",
	// "bash", "read", …).
	Tool string `json:"tool"`
	// Args is the tool's arguments object; it is sent as the JSON-encoded
	// string the wire wants, split over two chunks.
	Args json.RawMessage `json:"args"`
	// Text, when set, is streamed as assistant text before the tool call.
	Text string `json:"text,omitempty"`
	// DelayMs overrides Script.DelayMs for this step.
	DelayMs int `json:"delayMs,omitempty"`
}

// ParseScript decodes a script from its JSON form.
func ParseScript(b []byte) (*Script, error) {
	var s Script
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("fakeopenrouter: script: %w", err)
	}
	for i, st := range s.Steps {
		if st.Tool == "" {
			return nil, fmt.Errorf("fakeopenrouter: script: step %d has no tool", i)
		}
		if len(st.Args) > 0 && !json.Valid(st.Args) {
			return nil, fmt.Errorf("fakeopenrouter: script: step %d: args are not valid JSON", i)
		}
	}
	return &s, nil
}

// LoadScript reads and decodes a script file.
func LoadScript(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fakeopenrouter: script: %w", err)
	}
	return ParseScript(b)
}

// StepIndex is k of scripted agent mode: the number of assistant messages
// with tool calls in the request.
func StepIndex(req ChatRequest) int {
	k := 0
	for _, m := range req.Messages {
		if m.Role == "assistant" && len(m.ToolCalls) > 0 {
			k++
		}
	}
	return k
}

// scriptUsage is the usage every scripted answer reports (the form
// OpenCode was seen to accept: OpenAI's "choices": [] usage chunk).
var scriptUsage = &Usage{PromptTokens: 100, CompletionTokens: 10}

func (s *Script) reply(req ChatRequest) Reply {
	if len(req.Tools) == 0 {
		title := s.TitleText
		if title == "" {
			title = "Fake title"
		}
		return Reply{Text: title, Usage: scriptUsage, EmptyUsageChoices: true, plainDeltas: true}
	}
	k := StepIndex(req)
	delay := s.DelayMs
	if k < len(s.Steps) {
		st := s.Steps[k]
		if st.DelayMs != 0 {
			delay = st.DelayMs
		}
		args := string(st.Args)
		if args == "" {
			args = "{}"
		}
		r := Reply{
			ToolCalls:         []ToolCall{{ID: fmt.Sprintf("call_%d_0", k+1), Name: st.Tool, Arguments: args}},
			Usage:             scriptUsage,
			EmptyUsageChoices: true,
			plainDeltas:       true,
			HeaderDelay:       time.Duration(delay) * time.Millisecond,
		}
		if st.Text != "" {
			r.Chunks = []string{st.Text}
		}
		return r
	}
	text := s.FinalText
	if text == "" {
		text = "Done."
	}
	return Reply{Text: text, Usage: scriptUsage, EmptyUsageChoices: true,
		HeaderDelay: time.Duration(delay) * time.Millisecond, plainDeltas: true}
}

// Reply returns the answer scripted agent mode gives req. With
// [Server.SetHandler] it lets one fake serve several scripts, chosen per
// request (for example by the prompt), so that one agent process can run
// several scripted scenarios.
func (s *Script) Reply(req ChatRequest) Reply { return s.reply(req) }
