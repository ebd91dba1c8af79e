package daytona

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// recordSleeps replaces the client's waits with a recorder.
func recordSleeps(c *Client) func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
}

func countRequests(f *fakedaytona.Server, method, pathPrefix string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

func TestErrorsNameOperationAndSandbox(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	bad, err := NewClient(Options{APIKey: "dtn_wrong_key_0123", APIURL: f.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Create(ctxT(t), CreateParams{})
	const want = "daytona: create sandbox: 401 Unauthorized: invalid API key"
	if err == nil || err.Error() != want {
		t.Fatalf("create with a wrong key: %v; want %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusUnauthorized {
		t.Errorf("error %#v is not an *Error with status 401", err)
	}

	c := newProvider(t, f, nil).Client()
	_, err = c.Get(ctxT(t), "no-such-sandbox")
	if err == nil || !strings.HasPrefix(err.Error(), "daytona: get sandbox no-such-sandbox: 404 Not Found: ") {
		t.Errorf("get of a missing sandbox: %v", err)
	}
	if err := c.Delete(ctxT(t), "no-such-sandbox"); err != nil {
		t.Errorf("delete of a missing sandbox: %v; want nil", err)
	}
}

func TestMissingKeyAndBadURLs(t *testing.T) {
	for _, o := range []Options{
		{},
		{APIKey: "k", APIURL: "ftp://x"},
		{APIKey: "k", APIURL: "https://user:pw@app.daytona.io/api"},
		{APIKey: "k", ToolboxURL: "not a url"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	p, err := New(Options{APIKey: "k"})
	if err != nil || p.Client().apiURL != DefaultAPIURL {
		t.Errorf("default API URL: %v %v", p, err)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("DAYTONA_API_KEY", "dtn_env")
	t.Setenv("DAYTONA_API_URL", "")
	t.Setenv("DAYTONA_SERVER_URL", "http://127.0.0.1:1/api")
	t.Setenv("DAYTONA_TOOLBOX_URL", "http://127.0.0.1:2/toolbox")
	t.Setenv("DAYTONA_TARGET", "eu")
	o := OptionsFromEnv(nil)
	if o.APIKey != "dtn_env" || o.APIURL != "http://127.0.0.1:1/api" || o.ToolboxURL != "http://127.0.0.1:2/toolbox" || o.Target != "eu" {
		t.Errorf("OptionsFromEnv(nil) = %+v", o)
	}
	t.Setenv("DAYTONA_API_URL", "http://127.0.0.1:3/api")
	if o := OptionsFromEnv(nil); o.APIURL != "http://127.0.0.1:3/api" {
		t.Errorf("DAYTONA_API_URL does not win over DAYTONA_SERVER_URL: %+v", o)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	c := newProvider(t, f, nil).Client()
	waits := recordSleeps(c)
	f.InjectFault(fakedaytona.Fault{Method: "POST", Path: "/api/sandbox", Status: 429, RetryAfter: "7", Count: 2})
	f.InjectFault(fakedaytona.Fault{Method: "POST", Path: "/api/sandbox", Status: 503, RetryAfter: "2"})
	sb, err := c.Create(ctxT(t), CreateParams{})
	if err != nil {
		t.Fatalf("create after 429, 429, 503: %v", err)
	}
	if got := countRequests(f, "POST", "/api/sandbox"); got != 4 {
		t.Errorf("%d create requests; want 4", got)
	}
	if w := waits(); len(w) != 3 || w[0] != 7*time.Second || w[1] != 7*time.Second || w[2] != 2*time.Second {
		t.Errorf("waited %v; want [7s 7s 2s] as Retry-After said", w)
	}

	// An HTTP-date Retry-After, on the toolbox this time.
	f.InjectFault(fakedaytona.Fault{Path: "/toolbox/", Status: 503,
		RetryAfter: time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)})
	info, err := c.WaitStarted(ctxT(t), sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	base, err := c.ToolboxBase(ctxT(t), info)
	if err != nil {
		t.Fatal(err)
	}
	tb := &toolbox{c: c, id: sb.ID, base: base}
	// An hour is beyond MaxRetryWait: the error comes at once.
	if _, err := tb.homeDir(ctxT(t)); err == nil || !strings.Contains(err.Error(), "503 Service Unavailable") ||
		!strings.Contains(err.Error(), sb.ID) {
		t.Errorf("toolbox call with a Retry-After of an hour: %v", err)
	}
	f.InjectFault(fakedaytona.Fault{Path: "/toolbox/", Status: 429, RetryAfter: "0"})
	before := len(waits())
	if _, err := tb.homeDir(ctxT(t)); err != nil {
		t.Errorf("toolbox call after a 429: %v", err)
	}
	if w := waits(); len(w) != before+1 || w[before] != 0 {
		t.Errorf("waits %v; want one more of 0s", w)
	}

	// Retries are bounded.
	c.maxRetries = 2
	f.InjectFault(fakedaytona.Fault{Method: "GET", Path: "/api/sandbox/", Status: 429, RetryAfter: "1", Count: 10})
	if _, err := c.Get(ctxT(t), sb.ID); err == nil || !strings.Contains(err.Error(), "429 Too Many Requests") {
		t.Errorf("get after endless 429s: %v", err)
	}
}

func TestListPagesOnNextCursor(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	c := newProvider(t, f, nil).Client()
	c.listLimit = 2
	want := map[string]bool{}
	for i := 0; i < 5; i++ {
		sb, err := c.Create(ctxT(t), CreateParams{Labels: map[string]string{"team": "a b", "i": string(rune('0' + i))}})
		if err != nil {
			t.Fatal(err)
		}
		want[sb.ID] = true
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Create(ctxT(t), CreateParams{Labels: map[string]string{"team": "other"}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.List(ctxT(t), map[string]string{"team": "a b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("List = %d sandboxes; want %d", len(got), len(want))
	}
	for _, sb := range got {
		if !want[sb.ID] || sb.Labels["team"] != "a b" {
			t.Errorf("List returned %s %v", sb.ID, sb.Labels)
		}
	}
	var pages, withCursor int
	for _, r := range f.Requests() {
		if r.Method == "GET" && r.Path == "/api/sandbox" {
			pages++
			if r.Query.Get("cursor") != "" {
				withCursor++
			}
			if r.Query.Get("labels") != `{"team":"a b"}` {
				t.Errorf("labels filter sent as %q", r.Query.Get("labels"))
			}
		}
	}
	if pages != 3 || withCursor != 2 {
		t.Errorf("%d pages, %d with a cursor; want 3 and 2", pages, withCursor)
	}
	all, err := c.List(ctxT(t), nil)
	if err != nil || len(all) != 7 {
		t.Errorf("List(nil) = %d, %v; want 7", len(all), err)
	}
}

func TestLifecycle(t *testing.T) {
	f := newFake(t, fakedaytona.Options{StartAfterPolls: 3})
	c := newProvider(t, f, nil).Client()
	recordSleeps(c)
	ctx := ctxT(t)
	sb, err := c.Create(ctx, CreateParams{})
	if err != nil {
		t.Fatal(err)
	}
	if sb.State == "started" {
		t.Fatalf("a new sandbox is already started")
	}
	info, err := c.WaitStarted(ctx, sb.ID)
	if err != nil || info.State != "started" {
		t.Fatalf("WaitStarted = %+v, %v", info, err)
	}
	if n := countRequests(f, "GET", "/api/sandbox/"+sb.ID); n != 3 {
		t.Errorf("%d polls; want 3", n)
	}
	if err := c.Stop(ctx, sb.ID, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Sandbox(sb.ID); st.State != "stopped" {
		t.Errorf("after Stop the state is %q", st.State)
	}
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/stop") && r.Query.Get("force") != "false" {
			t.Errorf("stop sent force=%q", r.Query.Get("force"))
		}
	}
	if info, err := c.Start(ctx, sb.ID); err != nil || info.State != "started" {
		t.Fatalf("Start = %+v, %v", info, err)
	}
	if err := f.SetState(sb.ID, "archived", ""); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Start(ctx, sb.ID); err != nil || info.State != "started" {
		t.Fatalf("Start of an archived sandbox = %+v, %v", info, err)
	}
	if err := f.SetState(sb.ID, "error", "disk quota exceeded"); err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitStarted(ctx, sb.ID)
	if err == nil || !strings.Contains(err.Error(), "state error: disk quota exceeded") || !strings.Contains(err.Error(), sb.ID) {
		t.Errorf("waiting on an errored sandbox: %v", err)
	}
	if err := c.Delete(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Sandbox(sb.ID); ok {
		t.Errorf("the sandbox still exists after Delete")
	}
	if err := c.Delete(ctx, sb.ID); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func TestWaitStartedTimesOut(t *testing.T) {
	f := newFake(t, fakedaytona.Options{StartAfterPolls: 1 << 30})
	c := newProvider(t, f, func(o *Options) { o.StartTimeout = 300 * time.Millisecond }).Client()
	sb, err := c.Create(ctxT(t), CreateParams{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitStarted(ctxT(t), sb.ID)
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), sb.ID) {
		t.Errorf("WaitStarted on a sandbox that never starts: %v", err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"soon", 0, false},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, true},
	} {
		got, ok := retryAfter(tc.v, 0)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
	if d, ok := retryAfter("", 2); !ok || d != 2*time.Second {
		t.Errorf("backoff without Retry-After: %v %v", d, ok)
	}
}
