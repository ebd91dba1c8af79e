package opencode

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestSSEReader(t *testing.T) {
	big := strings.Repeat("x", 300)
	stream := ": comment\n" +
		"data: {\"a\":1}\n\n" +
		"event: ignored\r\nid: 7\r\ndata: {\"b\":2}\r\n\r\n" +
		"data: line1\ndata:line2\n\n" +
		"\n\n" +
		"data: " + big + "\n\n" + // over the bound: skipped, stream goes on
		"retry: 10\n" +
		"data: after\n\n" +
		"data: cut"
	rd := newSSEReader(strings.NewReader(stream), 100)
	want := []string{`{"a":1}`, `{"b":2}`, "line1\nline2"}
	for _, w := range want {
		got, err := rd.next()
		if err != nil || string(got) != w {
			t.Fatalf("next = %q, %v; want %q", got, err, w)
		}
	}
	if _, err := rd.next(); !errors.Is(err, errEventTooLarge) {
		t.Fatalf("oversized event: %v", err)
	}
	if got, err := rd.next(); err != nil || string(got) != "after" {
		t.Fatalf("after the oversized event: %q, %v", got, err)
	}
	if _, err := rd.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("event cut by EOF: %v", err)
	}

	// A line longer than the reader's buffer is read whole.
	long := strings.Repeat("y", 200<<10)
	rd = newSSEReader(strings.NewReader("data: "+long+"\n\n"), 1<<20)
	if got, err := rd.next(); err != nil || string(got) != long {
		t.Fatalf("long line: %d bytes, %v", len(got), err)
	}
	if _, err := rd.next(); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
}

func TestTail(t *testing.T) {
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = strings.Repeat("a", 10)
	}
	out := strings.Join(lines, "\n") + "\n"
	if got := tail(out, 40, 1<<20); strings.Count(got, "\n") != 39 || strings.HasSuffix(got, "\n") {
		t.Errorf("tail by lines: %d newlines", strings.Count(got, "\n"))
	}
	if got := tail("ééééé", 10, 5); got != "éé" {
		t.Errorf("tail by bytes cuts runes: %q", got)
	}
	if got := tail("short\n", 40, 100); got != "short" {
		t.Errorf("short: %q", got)
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("  first\nsecond", 80); got != "first …" {
		t.Errorf("%q", got)
	}
	if got := oneLine("ünïcödé", 3); got != "ünï…" {
		t.Errorf("%q", got)
	}
}

func TestConfigContent(t *testing.T) {
	c := Config{BaseURL: "http://127.0.0.1:9/api/v1", APIKey: "sk-secret", Model: "openai/gpt-4o",
		Permissions: Policy{Edit: Allow, Bash: Deny}}.withDefaults()
	s := configContent(c)
	if strings.Contains(s, "sk-secret") {
		t.Fatal("the config content holds the key")
	}
	var cfg struct {
		Model      string            `json:"model"`
		Permission map[string]string `json:"permission"`
		Snapshot   bool              `json:"snapshot"`
		Provider   map[string]struct {
			NPM     string            `json:"npm"`
			Options map[string]string `json:"options"`
			Models  map[string]any    `json:"models"`
		} `json:"provider"`
	}
	if err := json.Unmarshal([]byte(s), &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Provider[ProviderID]
	if cfg.Model != "openrouter/openai/gpt-4o" || p.NPM != "@ai-sdk/openai-compatible" || p.Options["baseURL"] != c.BaseURL ||
		p.Options["apiKey"] != "{file:~/"+keyFile+"}" || p.Models["openai/gpt-4o"] == nil {
		t.Errorf("config %s", s)
	}
	want := map[string]string{"edit": "allow", "bash": "deny", "webfetch": "ask", "external_directory": "deny"}
	for k, v := range want {
		if cfg.Permission[k] != v {
			t.Errorf("permission %s = %q, want %q", k, cfg.Permission[k], v)
		}
	}
	env := launchEnv(c, "/w", "pw")
	if env["PWD"] != "/w" || env["OPENCODE_DISABLE_AUTOUPDATE"] != "1" || env["OPENCODE_SERVER_PASSWORD"] != "pw" {
		t.Errorf("env %v", env)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Model: "m"}).validate(); !errors.Is(err, ErrNoAPIKey) {
		t.Errorf("no key: %v", err)
	}
	if err := (Config{APIKey: "k"}).validate(); err == nil {
		t.Error("no model accepted")
	}
	if err := (Config{APIKey: "k", Model: "m", Permissions: Policy{Bash: "sometimes"}}).validate(); err == nil {
		t.Error("bad policy accepted")
	}
	p := Policy{Edit: Allow}
	for kind, want := range map[string]Action{"edit": Allow, "bash": Ask, "external_directory": Deny, "doom_loop": Ask} {
		if got := p.forKind(kind); got != want {
			t.Errorf("forKind(%s) = %s, want %s", kind, got, want)
		}
	}
}

func TestOutputWatcher(t *testing.T) {
	w := newOutputWatcher(strings.NewReplacer("s3cret", "[REDACTED]"))
	io.WriteString(w.stdout(), homeMarker+"/tmp/h\nopencode server listen")
	select {
	case <-w.ready:
		t.Fatal("ready on a partial line")
	default:
	}
	io.WriteString(w.stdout(), "ing on http://127.0.0.1:5\n")
	<-w.ready
	io.WriteString(w.stderr(), "boom s3cret\npartial")
	if w.home() != "/tmp/h" {
		t.Errorf("home %q", w.home())
	}
	if got := w.tail(); got != "opencode server listening on http://127.0.0.1:5\nboom [REDACTED]\npartial" {
		t.Errorf("tail %q", got)
	}
}

// textRun is a run with just what text handling needs.
func textRun(h Handler) *run {
	s := &Server{red: strings.NewReplacer("sk-key", "[REDACTED]"), log: slog.New(slog.DiscardHandler)}
	r := &run{s: s, h: h, log: s.log, main: "ses_1", sessions: map[string]bool{"ses_1": true},
		roles: map[string]string{"msg_a": "assistant", "msg_b": "assistant"}, infos: map[string]messageInfo{},
		pending: map[string][]part{}, texts: map[string]*textState{}, missed: map[string]bool{}}
	return r
}

func textPart(id, msg, text string, final bool) part {
	p := part{ID: id, SessionID: "ses_1", MessageID: msg, Type: "text", Text: text}
	if final {
		p.Time = &struct {
			Start int64 `json:"start"`
			End   int64 `json:"end"`
		}{1, 2}
	}
	return p
}

func delta(id, msg, d string) deltaEventProps {
	return deltaEventProps{SessionID: "ses_1", MessageID: msg, PartID: id, Field: "text", Delta: d}
}

func TestTextStreaming(t *testing.T) {
	rec := &recorder{}
	r := textRun(rec)
	// In order: start, deltas, final snapshot.
	r.onPart(textPart("prt_1", "msg_a", "", false), false)
	r.onDelta(delta("prt_1", "msg_a", "Hel"))
	r.onDelta(delta("prt_1", "msg_a", "lo"))
	r.onPart(textPart("prt_1", "msg_a", "Hello", true), false)
	r.onDelta(delta("prt_1", "msg_a", "late duplicate"))
	// A second part, with a gap in the middle (a reconnect): deltas stop
	// until a snapshot says where the text stands.
	r.onPart(textPart("prt_2", "msg_b", "", false), false)
	r.onDelta(delta("prt_2", "msg_b", "Wor"))
	for _, ts := range r.texts {
		ts.gap = true // what resync(afterGap) does
	}
	r.onDelta(delta("prt_2", "msg_b", "d (after a lost delta)"))
	r.onPart(textPart("prt_2", "msg_b", "Wo", false), true)    // older snapshot from the messages: ignored
	r.onPart(textPart("prt_2", "msg_b", "World", false), true) // newer: the rest, still not in order with deltas
	r.onDelta(delta("prt_2", "msg_b", "!"))                    // suppressed: may be in the snapshot already
	r.onPart(textPart("prt_2", "msg_b", "World! sk-key", true), false)
	// A part that comes before its message: it waits for the message's
	// role, and the deltas meanwhile are not applied to it.
	r.onPart(textPart("prt_3", "msg_c", "", false), false)
	r.onDelta(delta("prt_3", "msg_c", "lost"))
	r.onMessage(messageInfo{ID: "msg_c", SessionID: "ses_1", Role: "assistant"})
	r.onDelta(delta("prt_3", "msg_c", "x"))
	r.onPart(textPart("prt_3", "msg_c", "lostx", true), false)
	// A user message's text is never the answer.
	r.onMessage(messageInfo{ID: "msg_u", SessionID: "ses_1", Role: "user"})
	r.onPart(textPart("prt_0", "msg_u", "the prompt", true), false)

	want := "Hello\n\nWorld! [REDACTED]\n\nlostx"
	if got := rec.text(); got != want {
		t.Errorf("streamed %q, want %q", got, want)
	}
	if got := r.result().Text; got != want {
		t.Errorf("result %q, want %q", got, want)
	}
}

func TestHubOverflow(t *testing.T) {
	var h hub
	l := &listener{ch: make(chan streamItem, 2)}
	h.listeners = map[*listener]struct{}{l: {}}
	for i := 0; i < 4; i++ {
		h.deliver(streamItem{ev: event{ID: string(rune('a' + i))}})
	}
	if got := (<-l.ch).ev.ID + (<-l.ch).ev.ID; got != "ab" {
		t.Fatalf("first events %q", got)
	}
	h.deliver(streamItem{ev: event{ID: "e"}})
	if !l.dropped.Load() {
		t.Error("the drop is not recorded")
	}
	if it := <-l.ch; !it.gap {
		t.Fatalf("after an overflow the listener gets a gap first, got %+v", it)
	}
	if it := <-l.ch; it.ev.ID != "e" {
		t.Fatalf("then the next event, got %+v", it)
	}
	h.remove(l)
	h.deliver(streamItem{ev: event{ID: "f"}})
	if len(l.ch) != 0 {
		t.Fatal("a removed listener still gets events")
	}
}
