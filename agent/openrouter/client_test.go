package openrouter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
)

const testKey = "sk-or-v1-test-0123456789abcdef"

// newClient returns a client of srv with the given changes to its config.
func newClient(t *testing.T, srv *fakeopenrouter.Server, change func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: srv.URL, APIKey: testKey, KeySource: KeySourceEnv, Model: "openai/gpt-4o-mini",
		RetryBaseDelay: time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder collects the events of one Stream call.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) count(k EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func (r *recorder) text() string {
	var b strings.Builder
	for _, e := range r.events {
		if e.Kind == EventDelta {
			b.WriteString(e.Delta)
		}
	}
	return b.String()
}

var hello = Request{Messages: []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say hello"}}}

// wantKind asserts err is an *Error of kind k and returns it.
func wantKind(t *testing.T, err error, k ErrorKind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error of kind %v", err, err, k)
	}
	if e.Kind != k {
		t.Fatalf("error kind %v (%q), want %v", e.Kind, e.Error(), k)
	}
	return e
}

func TestStreamAnswer(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testKey})
	srv.Enqueue(fakeopenrouter.Reply{KeepAlives: 3, Chunks: []string{"Hel", "lo", " there"},
		Usage: &fakeopenrouter.Usage{PromptTokens: 12, CompletionTokens: 3, Cost: 0.000042}})
	c := newClient(t, srv, nil)
	var rec recorder
	temp := 0.2
	req := hello
	req.MaxTokens, req.Temperature = 300, &temp
	res, err := c.Stream(context.Background(), req, rec.on)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Hello there" || rec.text() != "Hello there" || res.FinishReason != "stop" ||
		res.Model != "openai/gpt-4o-mini" || res.Provider != "FakeProvider" || !strings.HasPrefix(res.ID, "gen-") || res.Attempts != 1 {
		t.Fatalf("result %+v, deltas %q", res, rec.text())
	}
	if res.Usage == nil || res.Usage.PromptTokens != 12 || res.Usage.CompletionTokens != 3 || res.Usage.TotalTokens != 15 ||
		res.Usage.Cost == nil || *res.Usage.Cost != 0.000042 {
		t.Fatalf("usage %+v", res.Usage)
	}
	if n := rec.count(EventWaiting); n != 3 {
		t.Fatalf("%d waiting events, want 3 (one per keep-alive)", n)
	}

	r := srv.Requests()[0]
	if r.Path != "/api/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+testKey ||
		r.Header.Get("HTTP-Referer") != DefaultReferer || r.Header.Get("X-OpenRouter-Title") != DefaultTitle ||
		r.Header.Get("X-Title") != DefaultTitle || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Accept") != "text/event-stream" {
		t.Fatalf("request %s headers %v", r.Path, r.Header)
	}
	var body struct {
		Model       string    `json:"model"`
		Stream      bool      `json:"stream"`
		MaxTokens   int       `json:"max_tokens"`
		Temperature float64   `json:"temperature"`
		Messages    []Message `json:"messages"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Model != "openai/gpt-4o-mini" || !body.Stream || body.MaxTokens != 300 || body.Temperature != 0.2 ||
		len(body.Messages) != 2 || body.Messages[0].Role != "system" || body.Messages[1].Content != "Say hello" {
		t.Fatalf("request body %s", r.Body)
	}
}

func TestModelChoice(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	models := func() []string {
		var out []string
		for _, r := range srv.ChatRequests() {
			out = append(out, r.Model)
		}
		return out
	}
	c := newClient(t, srv, nil)
	req := hello
	req.Model = "anthropic/claude-sonnet-4"
	if _, err := c.Stream(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stream(context.Background(), hello, nil); err != nil {
		t.Fatal(err)
	}
	noModel := newClient(t, srv, func(c *Config) { c.Model = "" })
	if _, err := noModel.Stream(context.Background(), hello, nil); err != nil {
		t.Fatal(err)
	}
	got := models()
	if strings.Join(got, ",") != "anthropic/claude-sonnet-4,openai/gpt-4o-mini," {
		t.Fatalf("models sent %q", got)
	}
	if strings.Contains(string(srv.Requests()[2].Body), `"model"`) {
		t.Fatalf("model key sent although none configured: %s", srv.Requests()[2].Body)
	}
}

func TestStreamFramingVariants(t *testing.T) {
	for name, rep := range map[string]fakeopenrouter.Reply{
		"crlf":            {CRLF: true},
		"one-byte-writes": {SplitWrites: 1, KeepAlives: 2},
		"multi-line-data": {MultiLineData: true},
		"openai-usage":    {EmptyUsageChoices: true},
		"no-usage":        {NoUsage: true},
		"reasoning":       {Reasoning: []string{"thinking…"}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
			rep.Chunks = []string{"a", "b\nc", "é😀"}
			srv.Enqueue(rep)
			var rec recorder
			res, err := newClient(t, srv, nil).Stream(context.Background(), hello, rec.on)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "ab\ncé😀" || res.FinishReason != "stop" {
				t.Fatalf("result %+v", res)
			}
			if (res.Usage == nil) != rep.NoUsage {
				t.Fatalf("usage %+v with NoUsage=%v", res.Usage, rep.NoUsage)
			}
			if rep.KeepAlives > 0 && rec.count(EventWaiting) != rep.KeepAlives {
				t.Fatalf("waiting events %d", rec.count(EventWaiting))
			}
			if len(rep.Reasoning) > 0 && rec.count(EventReasoning) != 1 {
				t.Fatalf("reasoning events %d", rec.count(EventReasoning))
			}
		})
	}
}

func TestMidStreamErrorChunk(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rep      fakeopenrouter.Reply
		status   int
		code     string
		partial  string
		wantText string
	}{
		{"numeric-code", fakeopenrouter.Reply{Chunks: []string{"Hal", "f"}, ErrorAfter: 2,
			StreamError: &fakeopenrouter.ErrorObject{Code: 502, Message: "Provider disconnected unexpectedly",
				Metadata: map[string]any{"error_type": "provider_unavailable"}}}, 502, "", "Half",
			"OpenRouter: the model failed while answering (502, provider_unavailable): Provider disconnected unexpectedly"},
		{"string-code", fakeopenrouter.Reply{Chunks: []string{"x"}, ErrorAfter: 1, DoneAfterError: true,
			StreamError: &fakeopenrouter.ErrorObject{Code: "server_error", Message: "Upstream failed"}}, 0, "server_error", "x",
			"OpenRouter: the model failed while answering (server_error): Upstream failed"},
		{"first-and-only-chunk", fakeopenrouter.Reply{
			StreamError: &fakeopenrouter.ErrorObject{Code: 429, Message: "Rate limit exceeded"}}, 429, "", "",
			"OpenRouter: the model failed while answering (429): Rate limit exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
			srv.Enqueue(tc.rep)
			res, err := newClient(t, srv, nil).Stream(context.Background(), hello, nil)
			e := wantKind(t, err, KindStream)
			if e.Status != tc.status || e.Code != tc.code || res.Text != tc.partial || e.Partial != (tc.partial != "") {
				t.Fatalf("error %+v, partial text %q", e, res.Text)
			}
			if e.Error() != tc.wantText {
				t.Fatalf("error text %q\nwant       %q", e.Error(), tc.wantText)
			}
			if len(srv.Requests()) != 1 {
				t.Fatalf("in-band error was retried: %d requests", len(srv.Requests()))
			}
		})
	}
}

func TestTruncatedStreamsFail(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  fakeopenrouter.Reply
		kind ErrorKind
	}{
		{"before-finish", fakeopenrouter.Reply{Chunks: []string{"par", "tial"}, Cut: fakeopenrouter.CutBeforeFinish}, KindTruncated},
		{"before-done", fakeopenrouter.Reply{Chunks: []string{"all"}, Cut: fakeopenrouter.CutBeforeDone}, KindTruncated},
		{"before-data", fakeopenrouter.Reply{KeepAlives: 1, Cut: fakeopenrouter.CutBeforeData}, KindTruncated},
		{"connection-dropped", fakeopenrouter.Reply{Chunks: []string{"par"}, Cut: fakeopenrouter.CutBeforeFinish, Abort: true}, KindNetwork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
			srv.Enqueue(tc.rep)
			res, err := newClient(t, srv, nil).Stream(context.Background(), hello, nil)
			e := wantKind(t, err, tc.kind)
			want := strings.Join(tc.rep.Chunks, "")
			if res.Text != want || e.Partial != (want != "") {
				t.Fatalf("partial text %q (partial=%v), want %q", res.Text, e.Partial, want)
			}
			if len(srv.Requests()) != 1 {
				t.Fatalf("%d requests: a stream that already answered must not be retried", len(srv.Requests()))
			}
			t.Log(e.Error())
		})
	}
}

func TestStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  fakeopenrouter.Reply
		kind ErrorKind
		text string
	}{
		{"400", fakeopenrouter.Reply{Status: 400, Error: &fakeopenrouter.ErrorObject{Message: "Invalid model specified",
			Metadata: map[string]any{"error_type": "invalid_request"}}}, KindBadRequest,
			"OpenRouter rejected the request (400): Invalid model specified"},
		{"401", fakeopenrouter.Reply{Status: 401, Error: &fakeopenrouter.ErrorObject{Message: "User not found."}}, KindAuth,
			"OpenRouter rejected the API key from the OPENROUTER_API_KEY environment variable (401): User not found."},
		{"402", fakeopenrouter.Reply{Status: 402, Error: &fakeopenrouter.ErrorObject{Message: "Insufficient credits",
			Metadata: map[string]any{"limit_source": "openrouter_credits", "remedy_hint": "Add credits at openrouter.ai/settings/credits"}}}, KindCredits,
			"OpenRouter: out of credits (402): Insufficient credits. Add credits at openrouter.ai/settings/credits"},
		{"403", fakeopenrouter.Reply{Status: 403, Error: &fakeopenrouter.ErrorObject{Message: "Input was flagged",
			Metadata: map[string]any{"reasons": []string{"harassment", "violence"}, "flagged_input": "…", "provider_name": "OpenAI", "model_slug": "openai/gpt-4o"}}}, KindModeration,
			"OpenRouter: the request was flagged by moderation (403): harassment, violence (Input was flagged)"},
		{"403-guardrail", fakeopenrouter.Reply{Status: 403, Error: &fakeopenrouter.ErrorObject{Message: "Blocked by guardrail"}}, KindModeration,
			"OpenRouter: the request was flagged by moderation or blocked by a guardrail (403): Blocked by guardrail"},
		{"404", fakeopenrouter.Reply{Status: 404, Error: &fakeopenrouter.ErrorObject{Message: "No endpoints found for x/y"}}, KindBadRequest,
			"OpenRouter rejected the request (404): No endpoints found for x/y"},
		{"408", fakeopenrouter.Reply{Status: 408}, KindTimeout, "OpenRouter: the request timed out (408): Request Timeout"},
		{"413", fakeopenrouter.Reply{Status: 413}, KindBadRequest, "OpenRouter rejected the request (413): Request Entity Too Large"},
		{"500", fakeopenrouter.Reply{Status: 500, Error: &fakeopenrouter.ErrorObject{Message: "Internal Server Error"}}, KindServer,
			"OpenRouter: server error (500): Internal Server Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
			srv.Enqueue(tc.rep)
			_, err := newClient(t, srv, nil).Stream(context.Background(), hello, nil)
			e := wantKind(t, err, tc.kind)
			if e.Error() != tc.text {
				t.Fatalf("error text %q\nwant       %q", e.Error(), tc.text)
			}
			if len(srv.Requests()) != 1 {
				t.Fatalf("%d requests: status %d must not be retried", len(srv.Requests()), tc.rep.Status)
			}
		})
	}
}

func TestAuthErrorNamesKeySource(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: "sk-or-v1-the-right-one"})
	for _, src := range []string{KeySourceEnv, KeySourceSetting} {
		c := newClient(t, srv, func(c *Config) { c.KeySource = src })
		_, err := c.Stream(context.Background(), hello, nil)
		e := wantKind(t, err, KindAuth)
		if want := "OpenRouter rejected the API key from the " + src + " (401): User not found."; e.Error() != want {
			t.Fatalf("%q\nwant %q", e.Error(), want)
		}
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	srv.SetHandler(func(fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
		return fakeopenrouter.Reply{Status: 400, Error: &fakeopenrouter.ErrorObject{Code: "bad_thing", Message: "string code"}}
	})
	_, err := newClient(t, srv, nil).Stream(context.Background(), hello, nil)
	if e := wantKind(t, err, KindBadRequest); e.Code != "bad_thing" {
		t.Fatalf("code %q", e.Code)
	}
}

// retryClient returns a client whose waits between attempts are recorded
// instead of slept.
func retryClient(t *testing.T, srv *fakeopenrouter.Server, change func(*Config)) (*Client, *[]time.Duration) {
	c := newClient(t, srv, change)
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

func rateLimited(retryAfter string) fakeopenrouter.Reply {
	return fakeopenrouter.Reply{Status: 429, RetryAfter: retryAfter, Error: &fakeopenrouter.ErrorObject{
		Message: "Rate limit exceeded", Metadata: map[string]any{"error_type": "rate_limit_exceeded"}}}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	srv.Enqueue(rateLimited("2"),
		rateLimited(now.Add(7*time.Second).Format(http.TimeFormat)),
		fakeopenrouter.Reply{Status: 503, Error: &fakeopenrouter.ErrorObject{Message: "No instances available"}},
		fakeopenrouter.Reply{Text: "finally"})
	c, waits := retryClient(t, srv, nil)
	c.now = func() time.Time { return now }
	var rec recorder
	res, err := c.Stream(context.Background(), hello, rec.on)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "finally" || res.Attempts != 4 || len(srv.Requests()) != 4 {
		t.Fatalf("result %+v after %d requests", res, len(srv.Requests()))
	}
	w := *waits
	if len(w) != 3 || w[0] != 2*time.Second || w[1] != 7*time.Second || w[2] < 3*time.Millisecond || w[2] > 5*time.Millisecond {
		t.Fatalf("waits %v: want 2s (Retry-After seconds), 7s (HTTP-date), then a backoff of 4ms ±25%%", w)
	}
	if rec.count(EventRetry) != 3 {
		t.Fatalf("%d retry events", rec.count(EventRetry))
	}
	for i, e := range rec.events {
		if e.Kind == EventRetry && (e.Err == nil || e.RetryIn != w[0] && i == 0) {
			t.Fatalf("retry event %+v", e)
		}
	}
}

func TestRetriesAreBounded(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	srv.SetHandler(func(fakeopenrouter.ChatRequest) fakeopenrouter.Reply { return rateLimited("3") })
	c, waits := retryClient(t, srv, func(c *Config) { c.MaxRetries = 2 })
	_, err := c.Stream(context.Background(), hello, nil)
	e := wantKind(t, err, KindRateLimited)
	if len(srv.Requests()) != 3 || e.Attempts != 3 || len(*waits) != 2 {
		t.Fatalf("%d requests, %d attempts, waits %v", len(srv.Requests()), e.Attempts, *waits)
	}
	if want := "OpenRouter: rate limited (429): Rate limit exceeded (after 3 attempts); retry after 3s"; e.Error() != want {
		t.Fatalf("%q\nwant %q", e.Error(), want)
	}
}

func TestRetryAfterTooLongGivesUpAtOnce(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	srv.Enqueue(rateLimited("3600"))
	c, waits := retryClient(t, srv, nil)
	_, err := c.Stream(context.Background(), hello, nil)
	e := wantKind(t, err, KindRateLimited)
	if len(srv.Requests()) != 1 || len(*waits) != 0 || e.RetryAfter != time.Hour ||
		!strings.HasSuffix(e.Error(), "; retry after 3600s") {
		t.Fatalf("%d requests, waits %v, %q", len(srv.Requests()), *waits, e.Error())
	}
}

func TestInFlightBudget402IsRetried(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	srv.Enqueue(fakeopenrouter.Reply{Status: 402, RetryAfter: "1", Error: &fakeopenrouter.ErrorObject{Message: "In-flight budget exhausted",
		Metadata: map[string]any{"limit_source": "openrouter_in_flight_budget", "reason": "in_flight_budget_exhausted"}}},
		fakeopenrouter.Reply{Text: "ok"})
	c, waits := retryClient(t, srv, nil)
	if res, err := c.Stream(context.Background(), hello, nil); err != nil || res.Text != "ok" || len(*waits) != 1 {
		t.Fatalf("%+v %v waits %v", res, err, *waits)
	}
}

func TestRealBackoffSleep(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	srv.Enqueue(fakeopenrouter.Reply{Status: 502}, fakeopenrouter.Reply{Status: 529}, fakeopenrouter.Reply{Text: "up"})
	res, err := newClient(t, srv, nil).Stream(context.Background(), hello, nil)
	if err != nil || res.Text != "up" || res.Attempts != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestConnectionRefusedIsRetriedThenReported(t *testing.T) {
	srv := fakeopenrouter.Start(fakeopenrouter.Options{})
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := New(Config{BaseURL: url, APIKey: testKey, MaxRetries: 2, RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	_, err = c.Stream(context.Background(), hello, rec.on)
	e := wantKind(t, err, KindNetwork)
	if e.Attempts != 3 || rec.count(EventRetry) != 2 || !strings.Contains(e.Error(), "connection refused") {
		t.Fatalf("%+v: %q", e, e.Error())
	}
}

func TestTimeouts(t *testing.T) {
	long := time.Minute // the fake would wait this long; our timeouts are far shorter
	for _, tc := range []struct {
		name    string
		rep     fakeopenrouter.Reply
		cfg     func(*Config)
		phase   string
		partial bool
	}{
		{"first-token-before-headers", fakeopenrouter.Reply{Hang: fakeopenrouter.HangBeforeHeaders},
			func(c *Config) { c.FirstTokenTimeout = 100 * time.Millisecond }, PhaseFirstToken, false},
		{"first-token-keepalives-do-not-count", fakeopenrouter.Reply{KeepAliveEvery: 5 * time.Millisecond, FirstDelay: long},
			func(c *Config) { c.FirstTokenTimeout = 150 * time.Millisecond; c.IdleTimeout = 100 * time.Millisecond }, PhaseFirstToken, false},
		{"idle-between-tokens", fakeopenrouter.Reply{Chunks: []string{"a", "b"}, Hang: fakeopenrouter.HangAfterFirstChunk},
			func(c *Config) { c.IdleTimeout = 100 * time.Millisecond }, PhaseIdle, true},
		{"idle-after-headers", fakeopenrouter.Reply{Hang: fakeopenrouter.HangAfterHeaders},
			func(c *Config) { c.IdleTimeout = 100 * time.Millisecond }, PhaseIdle, false},
		{"total", fakeopenrouter.Reply{Chunks: []string{"a", "b", "c"}, ChunkDelay: long, KeepAliveEvery: 5 * time.Millisecond},
			func(c *Config) { c.TotalTimeout = 200 * time.Millisecond; c.IdleTimeout = 100 * time.Millisecond }, PhaseTotal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
			srv.Enqueue(tc.rep)
			var rec recorder
			res, err := newClient(t, srv, tc.cfg).Stream(context.Background(), hello, rec.on)
			e := wantKind(t, err, KindTimeout)
			if e.Phase != tc.phase || e.Partial != tc.partial || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("phase %q partial %v (text %q): %q", e.Phase, e.Partial, res.Text, e.Error())
			}
			// The stream was closed: the fake saw the client go away.
			<-srv.Disconnected()
			if len(srv.Requests()) != 1 {
				t.Fatalf("timeouts are not retried: %d requests", len(srv.Requests()))
			}
			t.Log(e.Error())
		})
	}
}

func TestCancelClosesStream(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	srv.Enqueue(fakeopenrouter.Reply{Chunks: []string{"first"}, Hang: fakeopenrouter.HangAfterFirstChunk})
	ctx, cancel := context.WithCancel(context.Background())
	var res Result
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = newClient(t, srv, nil).Stream(ctx, hello, func(e Event) {
			if e.Kind == EventDelta {
				cancel()
			}
		})
	}()
	<-done
	e := wantKind(t, err, KindCanceled)
	if !errors.Is(err, context.Canceled) || res.Text != "first" || !e.Partial {
		t.Fatalf("%v text %q", err, res.Text)
	}
	<-srv.Disconnected()
}

func TestConfigFailsFast(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		text string
	}{
		{Config{}, "no OpenRouter API key: set the OPENROUTER_API_KEY environment variable or the opencode.openrouter.apiKey setting"},
		{Config{APIKey: "  "}, "no OpenRouter API key"},
		{Config{APIKey: "k", BaseURL: "openrouter.ai/api/v1"}, `OpenRouter base URL "openrouter.ai/api/v1" is not an absolute http:// or https:// URL`},
		{Config{APIKey: "k", BaseURL: "localhost:8080/api/v1"}, "is not an absolute http:// or https:// URL"},
		{Config{APIKey: "k", BaseURL: "ftp://example.com"}, "is not an absolute"},
		{Config{APIKey: "k", BaseURL: "https://user:hunter2@example.com"}, "is not an absolute"},
	} {
		if tc.cfg.BaseURL == "https://user:hunter2@example.com" {
			// A URL with credentials is valid; check that its password never shows in messages instead.
			if _, err := New(tc.cfg); err != nil {
				t.Fatalf("valid URL refused: %v", err)
			}
			if q := quoteURL(tc.cfg.BaseURL); strings.Contains(q, "hunter2") {
				t.Fatalf("quoted URL shows the password: %s", q)
			}
			continue
		}
		_, err := New(tc.cfg)
		e := wantKind(t, err, KindConfig)
		if !strings.Contains(e.Error(), tc.text) {
			t.Fatalf("%q does not contain %q", e.Error(), tc.text)
		}
	}
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{})
	_, err := newClient(t, srv, nil).Stream(context.Background(), Request{}, nil)
	wantKind(t, err, KindConfig)
	_, err = newClient(t, srv, nil).Stream(context.Background(), Request{Messages: []Message{{Role: "tool", Content: "x"}}}, nil)
	wantKind(t, err, KindConfig)
	if len(srv.Requests()) != 0 {
		t.Fatal("a bad request was sent")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{EnvAPIKey: "sk-env", EnvBaseURL: "http://127.0.0.1:9/api/v1"}
	get := func(k string) string { return env[k] }
	c := ConfigFromEnv(Config{}, get)
	if c.APIKey != "sk-env" || c.KeySource != KeySourceEnv || c.BaseURL != env[EnvBaseURL] {
		t.Fatalf("%+v", c)
	}
	c = ConfigFromEnv(Config{APIKey: "sk-setting", BaseURL: "https://gw.example/api/v1"}, get)
	if c.APIKey != "sk-setting" || c.KeySource != KeySourceSetting || c.BaseURL != "https://gw.example/api/v1" {
		t.Fatalf("settings must win: %+v", c)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":     0,
		"0":    0,
		"5":    5 * time.Second,
		"1.5":  1500 * time.Millisecond,
		"-3":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		"Sun, 29 Nov 2026 12:00:30 GMT":                   30 * time.Second,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestCheckKeyAndModels(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testKey})
	c := newClient(t, srv, nil)
	info, err := c.CheckKey(context.Background())
	if err != nil || info.Label == "" || info.Usage != 1.234 || info.Limit != nil || info.IsFreeTier {
		t.Fatalf("%+v %v", info, err)
	}
	if strings.Contains(info.Label, testKey) {
		t.Fatal("label holds the key")
	}
	if p := srv.Requests()[0].Path; p != "/api/v1/key" {
		t.Fatalf("path %s", p)
	}

	legacy := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testKey, NoKeyPath: true})
	if _, err := newClient(t, legacy, nil).CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := legacy.Requests(); len(r) != 2 || r[1].Path != "/api/v1/auth/key" {
		t.Fatalf("no fallback to /auth/key: %+v", r)
	}

	bad := newClient(t, srv, func(c *Config) { c.APIKey = "sk-or-v1-wrong"; c.KeySource = KeySourceSetting })
	_, err = bad.CheckKey(context.Background())
	if e := wantKind(t, err, KindAuth); !strings.Contains(e.Error(), KeySourceSetting) {
		t.Fatal(e.Error())
	}

	models, err := c.Models(context.Background())
	if err != nil || len(models) != 1 || models[0].ID != "openai/gpt-4o-mini" || models[0].Pricing.Prompt != "0.00000015" {
		t.Fatalf("%+v %v", models, err)
	}
}

// TestSecretNeverLeaks drives every path of the client with a sentinel key
// and checks that the key appears nowhere but in the Authorization header:
// not in log records (debug level), events, results, error texts or the
// request bodies, even when the service echoes it in error messages.
func TestSecretNeverLeaks(t *testing.T) {
	const sentinel = "sk-or-v1-SENTINEL-5e1f0c2a9b7d4e3f"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: sentinel})
	echo := "Invalid credentials: " + sentinel + " (Authorization: Bearer " + sentinel + ")"
	srv.Enqueue(
		fakeopenrouter.Reply{KeepAlives: 2, Chunks: []string{"fine"}},
		fakeopenrouter.Reply{Status: 401, Error: &fakeopenrouter.ErrorObject{Message: echo}},
		rateLimited("0.001"), fakeopenrouter.Reply{Status: 429, Error: &fakeopenrouter.ErrorObject{Message: echo}},
		fakeopenrouter.Reply{Status: 403, Error: &fakeopenrouter.ErrorObject{Message: echo, Metadata: map[string]any{"reasons": []string{echo}}}},
		fakeopenrouter.Reply{Status: 402, Error: &fakeopenrouter.ErrorObject{Message: echo, Metadata: map[string]any{"remedy_hint": echo}}},
		fakeopenrouter.Reply{Status: 502, Header: http.Header{"Content-Type": {"text/plain"}}},
		fakeopenrouter.Reply{Chunks: []string{"x"}, ErrorAfter: 1, StreamError: &fakeopenrouter.ErrorObject{Code: "server_error", Message: echo}},
		fakeopenrouter.Reply{Chunks: []string{"x"}, Cut: fakeopenrouter.CutBeforeFinish},
		fakeopenrouter.Reply{Hang: fakeopenrouter.HangAfterHeaders},
	)
	c := newClient(t, srv, func(c *Config) {
		c.APIKey, c.Logger, c.MaxRetries, c.IdleTimeout = sentinel, logger, 1, 100*time.Millisecond
	})
	var seen []string
	for range 9 {
		var rec recorder
		res, err := c.Stream(context.Background(), hello, rec.on)
		for _, e := range rec.events {
			seen = append(seen, jsonString(e), e.Delta)
			if e.Err != nil {
				seen = append(seen, e.Err.Error())
			}
		}
		seen = append(seen, jsonString(res))
		if err != nil {
			var e *Error
			errors.As(err, &e)
			seen = append(seen, err.Error(), jsonString(e))
		}
	}
	// The key check, with a wrong key and with the right one.
	if _, err := c.CheckKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	wrong := newClient(t, srv, func(c *Config) { c.APIKey = sentinel + "x"; c.Logger = logger })
	if _, err := wrong.CheckKey(context.Background()); err != nil {
		seen = append(seen, err.Error())
	}
	// A closed port: network errors quote the address, never the key.
	gone := fakeopenrouter.Start(fakeopenrouter.Options{})
	gone.Close()
	closed, _ := New(Config{BaseURL: gone.URL, APIKey: sentinel, Logger: logger, MaxRetries: -1})
	if _, err := closed.Stream(context.Background(), hello, nil); err != nil {
		seen = append(seen, err.Error())
	}

	if strings.Contains(logs.String(), sentinel) {
		t.Fatalf("key in logs:\n%s", logs.String())
	}
	for _, s := range seen {
		if strings.Contains(s, sentinel) {
			t.Fatalf("key leaked: %s", s)
		}
	}
	for _, r := range srv.Requests() {
		if strings.Contains(string(r.Body), sentinel) || strings.Contains(r.Path, sentinel) {
			t.Fatalf("key in a request body or path: %s %s", r.Path, r.Body)
		}
	}
	if !strings.Contains(strings.Join(seen, "\n"), "[REDACTED]") {
		t.Fatal("echoed keys were not redacted (the test did not reach the echo paths)")
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the log check checked nothing")
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestModelScenarios drives the client through the fake's model-name
// scenarios, the switches an editor-level test can reach through settings.
func TestModelScenarios(t *testing.T) {
	srv := fakeopenrouter.New(t, fakeopenrouter.Options{ModelScenarios: true})
	c, waits := retryClient(t, srv, nil)
	for model, kind := range map[string]ErrorKind{
		"fake/status-401": KindAuth, "fake/status-402": KindCredits, "fake/status-403": KindModeration,
		"fake/status-408": KindTimeout, "fake/status-429": KindRateLimited, "fake/status-503": KindUnavailable,
		"fake/stream-error": KindStream, "fake/stream-error-string": KindStream, "fake/error-only": KindStream,
		"fake/cut": KindTruncated, "fake/no-done": KindTruncated,
	} {
		req := hello
		req.Model = model
		_, err := c.Stream(context.Background(), req, nil)
		e := wantKind(t, err, kind)
		t.Logf("%s: %s", model, e.Error())
	}
	if len(*waits) != 2*DefaultMaxRetries {
		t.Fatalf("waits %v: 429 and 503 should each be retried %d times", *waits, DefaultMaxRetries)
	}
	for _, w := range *waits {
		if w != time.Second {
			t.Fatalf("waits %v, want Retry-After's 1s", *waits)
		}
	}
	var rec recorder
	req := hello
	req.Model = "fake/keepalive"
	if res, err := c.Stream(context.Background(), req, rec.on); err != nil || rec.count(EventWaiting) != 3 || res.Text == "" {
		t.Fatalf("keepalive: %+v %v", res, err)
	}
	req.Model = "fake/tool-calls"
	if res, err := c.Stream(context.Background(), req, nil); err != nil || res.FinishReason != "tool_calls" {
		t.Fatalf("tool-calls: %+v %v", res, err)
	}
}
