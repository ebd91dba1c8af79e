package openrouter

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// watchdog enforces the first-token and idle timeouts of one attempt by
// cancelling its context with a [timeoutCause]. All methods are called on
// the goroutine reading the stream; the timers fire on their own.
type watchdog struct {
	cancel context.CancelCauseFunc
	first  *time.Timer
	idle   *time.Timer
	idleD  time.Duration
	got    bool // first token seen
}

func newWatchdog(cancel context.CancelCauseFunc, firstToken, idle time.Duration) *watchdog {
	w := &watchdog{cancel: cancel, idleD: idle}
	if firstToken > 0 {
		w.first = time.AfterFunc(firstToken, func() { cancel(timeoutCause{PhaseFirstToken}) })
	}
	return w
}

// headers starts the idle timer once the response headers are in.
func (w *watchdog) headers() {
	if w.idleD > 0 && w.idle == nil {
		w.idle = time.AfterFunc(w.idleD, func() { w.cancel(timeoutCause{PhaseIdle}) })
	}
}

// activity notes bytes on the wire (keep-alive comments included).
func (w *watchdog) activity() {
	if w.idle != nil {
		w.idle.Reset(w.idleD)
	}
}

// token notes the first token: the first-token timer is done.
func (w *watchdog) token() {
	if !w.got {
		w.got = true
		if w.first != nil {
			w.first.Stop()
		}
	}
}

func (w *watchdog) stop() {
	if w.first != nil {
		w.first.Stop()
	}
	if w.idle != nil {
		w.idle.Stop()
	}
}

// observer wraps the response body that openai-go's SSE decoder reads. It
// sees the raw lines the decoder hides: comment lines (keep-alives,
// reported as EventWaiting) and the "data: [DONE]" terminator (which the
// decoder treats the same as a plain end of stream). Every read resets the
// idle timer.
type observer struct {
	rc io.ReadCloser
	wd *watchdog
	on func(Event)

	lineStart bool
	head      [16]byte // first bytes of the current line
	headN     int
	lineLen   int
	done      bool
}

func (o *observer) Read(p []byte) (int, error) {
	n, err := o.rc.Read(p)
	if n > 0 {
		o.wd.activity()
		o.scan(p[:n])
	}
	return n, err
}

func (o *observer) Close() error { return o.rc.Close() }

func (o *observer) scan(p []byte) {
	for _, b := range p {
		if b == '\n' || b == '\r' {
			o.endLine()
			continue
		}
		if o.headN < len(o.head) {
			o.head[o.headN] = b
			o.headN++
		}
		o.lineLen++
	}
}

func (o *observer) endLine() {
	if o.lineLen == 0 {
		return
	}
	line := o.head[:o.headN]
	switch {
	case line[0] == ':':
		o.on(Event{Kind: EventWaiting})
	case o.lineLen <= len(o.head) && isDone(line):
		o.done = true
	}
	o.headN, o.lineLen = 0, 0
}

func isDone(line []byte) bool {
	s := string(line)
	v, ok := strings.CutPrefix(s, "data:")
	return ok && strings.TrimLeft(v, " ") == "[DONE]"
}

// accumulator folds the chunks of one stream into a Result.
type accumulator struct {
	text      strings.Builder
	id        string
	model     string
	provider  string
	finish    string
	usage     *Usage
	chunks    int
	choiceErr *wireError
}

func (a *accumulator) partial() bool { return a.text.Len() > 0 }

func (a *accumulator) add(ch openai.ChatCompletionChunk, on func(Event), wd *watchdog) {
	a.chunks++
	if ch.ID != "" {
		a.id = ch.ID
	}
	if ch.Model != "" {
		a.model = ch.Model
	}
	raw := ch.RawJSON()
	if a.provider == "" {
		if p := gjson.Get(raw, "provider"); p.Type == gjson.String {
			a.provider = p.Str
		}
	}
	if u := gjson.Get(raw, "usage"); u.IsObject() {
		us := &Usage{
			PromptTokens:     int(u.Get("prompt_tokens").Int()),
			CompletionTokens: int(u.Get("completion_tokens").Int()),
			TotalTokens:      int(u.Get("total_tokens").Int()),
		}
		if c := u.Get("cost"); c.Type == gjson.Number {
			f := c.Num
			us.Cost = &f
		}
		a.usage = us
	}
	for i, choice := range ch.Choices {
		if choice.Index != 0 {
			continue // one answer per request (n = 1)
		}
		d := choice.Delta
		token := false
		if r := gjson.Get(raw, "choices."+strconv.Itoa(i)+".delta.reasoning"); r.Type == gjson.String && r.Str != "" {
			on(Event{Kind: EventReasoning, Delta: r.Str})
			token = true
		}
		if d.Content != "" {
			a.text.WriteString(d.Content)
			on(Event{Kind: EventDelta, Delta: d.Content})
			token = true
		}
		if d.Refusal != "" {
			a.text.WriteString(d.Refusal)
			on(Event{Kind: EventDelta, Delta: d.Refusal})
			token = true
		}
		if len(d.ToolCalls) > 0 {
			token = true
		}
		if f := choice.FinishReason; f != "" {
			if a.finish != "error" {
				a.finish = f
			}
			if f == "error" && a.choiceErr == nil {
				if e := gjson.Get(raw, "choices."+strconv.Itoa(i)+".error"); e.IsObject() {
					var w wireError
					if json.Unmarshal([]byte(e.Raw), &w) == nil {
						a.choiceErr = &w
					}
				}
			}
			token = true
		}
		if token {
			wd.token()
		}
	}
}

func (a *accumulator) result() Result {
	return Result{Text: a.text.String(), Model: a.model, Provider: a.provider, FinishReason: a.finish, ID: a.id, Usage: a.usage}
}
