package opencode

import (
	"encoding/json"
	"errors"
	"io"
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
