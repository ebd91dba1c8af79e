package e2b

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
)

const key = "e2b_f00dfeedcafe0123456789abcdef"

// sleeps records the waits a client asked for instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

type env struct {
	fake   *fakee2b.Server
	p      *Provider
	c      *Client
	sleeps *sleeps
}

func newEnv(t *testing.T, opts fakee2b.Options) *env {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = key
	}
	f := fakee2b.New(t, opts)
	p, err := NewProvider(Config{APIKey: key, APIURL: f.APIURL, SandboxURL: f.SandboxURL, Domain: f.Domain})
	if err != nil {
		t.Fatal(err)
	}
	sl := &sleeps{}
	p.client.sleep = sl.sleep
	return &env{fake: f, p: p, c: p.client, sleeps: sl}
}

func (e *env) open(t *testing.T, spec sandbox.Spec) *Sandbox {
	t.Helper()
	if spec.Key == "" {
		spec.Key = "ws-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	sb, err := e.p.open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return sb
}

func runCmd(t *testing.T, sb *Sandbox, c sandbox.Cmd) (sandbox.ExitStatus, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	st, err := sb.Exec(context.Background(), c)
	if err != nil {
		t.Fatalf("Exec(%+v): %v", c, err)
	}
	return st, out.String(), errb.String()
}

func TestErrorsNameOperationAndSandboxNeverTheKey(t *testing.T) {
	f := fakee2b.New(t, fakee2b.Options{APIKey: "e2b_the_right_key"})
	c, err := NewClient(Config{APIKey: key, APIURL: f.APIURL, SandboxURL: f.SandboxURL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(context.Background(), CreateParams{})
	const want = `e2b: create sandbox (template "base"): 401 Invalid API key`
	if err == nil || err.Error() != want {
		t.Fatalf("Create with a wrong key = %v; want %q", err, want)
	}
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), key) {
		t.Errorf("error %v: want ErrUnauthorized and no key", err)
	}

	e := newEnv(t, fakee2b.Options{})
	err = e.c.Kill(context.Background(), "nosuchsandbox")
	if !errors.Is(err, ErrSandboxNotFound) || err.Error() != `e2b: kill sandbox nosuchsandbox: 404 sandbox "nosuchsandbox" not found` {
		t.Errorf("Kill(unknown) = %v", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 404 || apiErr.StatusCode != 404 {
		t.Errorf("Kill(unknown) = %#v; want an APIError with code 404", err)
	}
	if _, err := e.c.Get(context.Background(), "nosuchsandbox"); !errors.Is(err, ErrSandboxNotFound) {
		t.Errorf("Get(unknown) = %v", err)
	}
	if err := e.c.SetTimeout(context.Background(), "nosuchsandbox", time.Minute); !errors.Is(err, ErrSandboxNotFound) {
		t.Errorf("SetTimeout(unknown) = %v", err)
	}
	// A server that echoes the key does not get it into the error.
	strict := fakee2b.New(t, fakee2b.Options{APIKey: key, Templates: []string{"base"}})
	sc, _ := NewClient(Config{APIKey: key, APIURL: strict.APIURL})
	_, err = sc.Create(context.Background(), CreateParams{TemplateID: key})
	if err == nil || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("Create(template = key) = %v", err)
	}

	sb := e.open(t, sandbox.Spec{})
	_, err = sb.Exec(context.Background(), sandbox.Cmd{Shell: "true", Dir: "missing"})
	if err == nil || !strings.Contains(err.Error(), "e2b: exec in sandbox "+sb.ID()+": invalid_argument: cwd '") {
		t.Errorf("Exec in a missing Dir = %v", err)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceAPI, Path: "/v2/sandboxes", Method: "POST", Status: 429, RetryAfter: "7", Times: 2})
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceAPI, Path: "/v2/sandboxes", Method: "POST", Status: 503})
	sb := e.open(t, sandbox.Spec{})
	if got, want := e.sleeps.get(), []time.Duration{7 * time.Second, 7 * time.Second, time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v; want %v (Retry-After twice, then backoff)", got, want)
	}
	creates := 0
	for _, r := range e.fake.Requests() {
		if r.Path == "/v2/sandboxes" && r.Method == "POST" {
			creates++
		}
	}
	if creates != 4 || len(e.fake.SandboxIDs()) != 1 {
		t.Errorf("%d create requests, %d sandboxes; want 4 and 1", creates, len(e.fake.SandboxIDs()))
	}

	// envd: a 503 on the stream and a 429 on an upload are retried too.
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceEnvd, Path: "/process.Process/Start", Status: 503, RetryAfter: "2"})
	if st, out, _ := runCmd(t, sb, sandbox.Cmd{Shell: "echo ok"}); st.Code != 0 || out != "ok\n" {
		t.Errorf("Exec after a 503: %+v %q", st, out)
	}
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceEnvd, Path: "/files", Method: "POST", Status: 429, RetryAfter: "3"})
	if err := sb.WriteFile(context.Background(), "f.txt", []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := sb.ReadFile(context.Background(), "f.txt"); err != nil || string(b) != "content" {
		t.Errorf("ReadFile after a retried upload = %q, %v", b, err)
	}
	if got := e.sleeps.get()[3:]; !slices.Equal(got, []time.Duration{2 * time.Second, 3 * time.Second}) {
		t.Errorf("envd waits = %v; want [2s 3s]", got)
	}

	// A Retry-After too long to wait for, and a 429 that persists, end in a
	// clear error.
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceAPI, Path: "/sandboxes/" + sb.ID() + "/timeout", Status: 429, RetryAfter: "3600"})
	err := e.c.SetTimeout(context.Background(), sb.ID(), time.Minute)
	if !errors.Is(err, ErrRateLimited) || err.Error() != fmt.Sprintf("e2b: set timeout of sandbox %s: 429 Too Many Requests", sb.ID()) {
		t.Errorf("SetTimeout with Retry-After 3600 = %v", err)
	}
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceAPI, Path: "/sandboxes/" + sb.ID(), Method: "GET", Status: 503, Times: 10})
	before := len(e.fake.Requests())
	if _, err := e.c.Get(context.Background(), sb.ID()); !errors.Is(err, ErrRateLimited) {
		t.Errorf("Get under a persisting 503 = %v", err)
	}
	if n := len(e.fake.Requests()) - before; n != defaultRetry.attempts {
		t.Errorf("%d attempts; want %d", n, defaultRetry.attempts)
	}
}

func TestLifecycleCalls(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	ctx := context.Background()
	a := e.open(t, sandbox.Spec{Key: "ws-a", Labels: map[string]string{"owner": "alice"}, Timeout: 90 * time.Second})
	b := e.open(t, sandbox.Spec{Key: "ws-b", Labels: map[string]string{"owner": "bob", MetadataTag: "spoofed"}})
	other, err := e.c.Create(ctx, CreateParams{Metadata: map[string]string{"app": "else"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.c.Get(ctx, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	wantMeta := map[string]string{MetadataTag: "1", MetadataWorkspace: "ws-a", "owner": "alice"}
	if fmt.Sprint(d.Metadata) != fmt.Sprint(wantMeta) || d.State != "running" {
		t.Errorf("Get = %+v; want metadata %v", d, wantMeta)
	}
	if life := d.EndAt.Sub(d.StartedAt); life < 89*time.Second || life > 91*time.Second+time.Minute {
		t.Errorf("sandbox lives %v; want the spec's 90s", life)
	}
	e.c.listLimit = 1 // make List follow X-Next-Token
	ours, err := e.c.List(ctx, ListParams{Metadata: map[string]string{MetadataTag: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ours {
		ids = append(ids, s.SandboxID)
	}
	slices.Sort(ids)
	want := []string{a.ID(), b.ID()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("List(ours) = %v; want %v (not %s)", ids, want, other.SandboxID)
	}
	one, err := e.c.List(ctx, ListParams{Metadata: map[string]string{MetadataTag: "1", MetadataWorkspace: "ws-b"}, State: []string{"running"}})
	if err != nil || len(one) != 1 || one[0].SandboxID != b.ID() {
		t.Errorf("List(ws-b) = %+v, %v", one, err)
	}
	if err := e.c.SetTimeout(ctx, b.ID(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if d, err := e.c.Get(ctx, b.ID()); err != nil || d.EndAt.Sub(d.StartedAt) < time.Hour {
		t.Errorf("after SetTimeout(1h): %+v, %v", d, err)
	}
	if err := e.c.Kill(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close of a sandbox killed elsewhere: %v", err)
	}
	if left, _ := e.c.List(ctx, ListParams{Metadata: map[string]string{MetadataWorkspace: "ws-b"}}); len(left) != 0 {
		t.Errorf("List after Kill = %+v", left)
	}
	for _, r := range e.fake.Requests() {
		if r.Path == "/v2/sandboxes" && r.Method == "GET" {
			if q, _ := url.ParseQuery(r.RawQuery); q.Get("metadata") == "" {
				t.Errorf("List sent no metadata filter: %s", r.RawQuery)
			}
		}
	}
}

func TestKeysGoOnlyToTheirService(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{Env: map[string]string{"A": "1"}})
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "x.txt"), []byte("x"), 0o644)
	ctx := context.Background()
	if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
		t.Fatal(err)
	}
	runCmd(t, sb, sandbox.Cmd{Shell: "echo hi"})
	if _, err := sb.ReadFile(ctx, "x.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Manifest(ctx); err != nil {
		t.Fatal(err)
	}
	sb.Close(ctx)
	var api, envd int
	for _, r := range e.fake.Requests() {
		var dump strings.Builder
		fmt.Fprintf(&dump, "%s %s?%s\n", r.Method, r.Path, r.RawQuery)
		for k, vs := range r.Header {
			if k != "X-Api-Key" {
				fmt.Fprintf(&dump, "%s: %s\n", k, strings.Join(vs, ","))
			}
		}
		dump.Write(r.Body)
		if strings.Contains(dump.String(), key) {
			t.Errorf("the API key went somewhere other than the X-API-KEY header: %s", dump.String())
		}
		switch r.Service {
		case fakee2b.ServiceAPI:
			api++
			if r.Header.Get("X-API-KEY") != key {
				t.Errorf("control-plane request without the key: %s %s", r.Method, r.Path)
			}
		case fakee2b.ServiceEnvd:
			envd++
			if _, ok := r.Header["X-Api-Key"]; ok {
				t.Errorf("envd request carries X-API-KEY: %s %s", r.Method, r.Path)
			}
			if r.Header.Get("X-Access-Token") == "" || r.Header.Get("E2b-Sandbox-Id") != sb.ID() || r.Header.Get("E2b-Sandbox-Port") != "49983" {
				t.Errorf("envd request lacks its headers: %s %s %v", r.Method, r.Path, r.Header)
			}
		}
	}
	if api < 2 || envd < 5 {
		t.Errorf("%d control-plane and %d envd requests recorded; the check saw too little", api, envd)
	}
}

func TestSandboxDiesMidCommand(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{})
	out := &trigger{want: "ready", fire: func() { e.fake.KillSandbox(sb.ID()) }}
	st, err := sb.Exec(context.Background(), sandbox.Cmd{Shell: "echo ready; sleep 600", Stdout: out})
	if !errors.Is(err, sandbox.ErrClosed) || !strings.Contains(err.Error(), "e2b: exec in sandbox "+sb.ID()) {
		t.Errorf("Exec in a dying sandbox = %+v, %v; want an error naming the sandbox and wrapping ErrClosed", st, err)
	}
	if _, err := sb.ReadFile(context.Background(), "x"); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("ReadFile in a dead sandbox = %v; want ErrClosed", err)
	}
	if err := sb.Close(context.Background()); err != nil {
		t.Errorf("Close of a dead sandbox = %v", err)
	}
}

// trigger calls fire once when its output contains want.
type trigger struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	fire func()
}

func (w *trigger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.fire != nil && strings.Contains(w.buf.String(), w.want) {
		w.fire()
		w.fire = nil
	}
	return len(p), nil
}

func TestEnvironmentLayers(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	t.Setenv("E2B_TEST_DAEMON_SECRET", "leak")
	sb := e.open(t, sandbox.Spec{Env: map[string]string{"SPEC_ONLY": "s", "BOTH": "spec", "TERM": "xterm"}})
	if got := e.fake.SandboxEnvVars(sb.ID()); got["LANG"] != "C.UTF-8" || got["SPEC_ONLY"] != "s" || got["TERM"] != "xterm" {
		t.Errorf("envVars = %v", got)
	}
	_, out, _ := runCmd(t, sb, sandbox.Cmd{Shell: "env", Env: map[string]string{"BOTH": "cmd", "CMD_ONLY": "c"}})
	for _, want := range []string{"SPEC_ONLY=s\n", "BOTH=cmd\n", "CMD_ONLY=c\n", "LANG=C.UTF-8\n", "TERM=xterm\n", "USER=user\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("env lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "E2B_TEST_DAEMON_SECRET") || strings.Contains(out, key) {
		t.Errorf("the daemon's environment reached the sandbox:\n%s", out)
	}
}

func TestExecStreamHeadersAndKeepalives(t *testing.T) {
	e := newEnv(t, fakee2b.Options{KeepaliveInterval: time.Millisecond})
	sb := e.open(t, sandbox.Spec{})
	st, out, _ := runCmd(t, sb, sandbox.Cmd{Shell: "sleep 0.05; echo after-keepalives", Timeout: 5 * time.Minute})
	if st.Code != 0 || out != "after-keepalives\n" {
		t.Errorf("Exec with keep-alive events = %+v %q", st, out)
	}
	var start *fakee2b.Request
	for _, r := range e.fake.Requests() {
		if r.Path == "/process.Process/Start" && bytes.Contains(r.Body, []byte("after-keepalives")) {
			start = &r
		}
	}
	if start == nil {
		t.Fatal("no Start request recorded")
	}
	if start.Header.Get("Keepalive-Ping-Interval") != "50" || start.Header.Get("Content-Type") != "application/connect+json" {
		t.Errorf("Start headers: %v", start.Header)
	}
	ms, err := strconv.Atoi(start.Header.Get("Connect-Timeout-Ms"))
	budget := (5*time.Minute + streamGrace).Milliseconds()
	if err != nil || int64(ms) > budget || int64(ms) < budget-60_000 {
		t.Errorf("Connect-Timeout-Ms = %q; want about %d (timeout + grace)", start.Header.Get("Connect-Timeout-Ms"), budget)
	}
}

func TestTimeoutKillsTheTree(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{})
	st, out, _ := runCmd(t, sb, sandbox.Cmd{Shell: "(sleep 1; echo late > late.txt) & echo started; sleep 600", Timeout: 200 * time.Millisecond})
	if !st.TimedOut || st.Code != -1 || st.Signal != "killed" || out != "started\n" {
		t.Errorf("timed-out Exec = %+v %q", st, out)
	}
	time.Sleep(1500 * time.Millisecond) // a surviving child would have written by now
	if _, err := sb.ReadFile(context.Background(), "late.txt"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("late.txt: %v; a child outlived the timeout", err)
	}
	if pids := e.fake.LiveProcesses(sb.ID()); len(pids) != 0 {
		t.Errorf("processes still tracked by envd: %v", pids)
	}
}

func TestPreviewURLAndPerSandboxHost(t *testing.T) {
	f := fakee2b.New(t, fakee2b.Options{APIKey: key, Domain: "sbx.example"})
	envdURL, _ := url.Parse(f.SandboxURL)
	var mu sync.Mutex
	var hosts []string
	// No SandboxURL: envd is addressed as https://49983-<id>.<domain>; the
	// transport sends it to the fake instead and records the host.
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != strings.TrimPrefix(f.APIURL, "http://") {
			mu.Lock()
			hosts = append(hosts, r.URL.Scheme+"://"+r.URL.Host)
			mu.Unlock()
			r = r.Clone(r.Context())
			r.URL.Scheme, r.URL.Host = "http", envdURL.Host
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	p, err := NewProvider(Config{APIKey: key, APIURL: f.APIURL, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.Open(context.Background(), sandbox.Spec{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())
	mu.Lock()
	if len(hosts) == 0 || hosts[0] != "https://49983-"+sb.ID()+".sbx.example" {
		t.Errorf("envd hosts = %v", hosts)
	}
	mu.Unlock()
	pv, err := sb.PreviewURL(context.Background(), 3000)
	if err != nil || pv.URL != "https://3000-"+sb.ID()+".sbx.example" || pv.Headers != nil {
		t.Errorf("PreviewURL = %+v, %v", pv, err)
	}
	if _, err := sb.PreviewURL(context.Background(), 0); err == nil {
		t.Error("PreviewURL(0) succeeded")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestOpenFailureKillsTheSandbox(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceEnvd, Path: "/filesystem.Filesystem/MakeDir", Status: 500})
	_, err := e.p.Open(context.Background(), sandbox.Spec{Key: "k"})
	if err == nil || !strings.Contains(err.Error(), "open working copy") {
		t.Fatalf("Open with a failing envd = %v", err)
	}
	if ids := e.fake.SandboxIDs(); len(ids) != 0 {
		t.Errorf("sandboxes left running after a failed Open: %v", ids)
	}
}

func TestConfigFromEnv(t *testing.T) {
	vals := map[string]string{"E2B_API_KEY": "k", "E2B_DOMAIN": "d.example", "E2B_API_URL": "http://127.0.0.1:1", "E2B_SANDBOX_URL": "http://127.0.0.1:2"}
	cfg := ConfigFromEnv(func(k string) string { return vals[k] })
	if cfg != (Config{APIKey: "k", Domain: "d.example", APIURL: "http://127.0.0.1:1", SandboxURL: "http://127.0.0.1:2"}) {
		t.Errorf("ConfigFromEnv = %+v", cfg)
	}
	c, err := NewClient(Config{APIKey: "k", Domain: "d.example"})
	if err != nil || c.apiURL.String() != "https://api.d.example" || c.sbURL != nil {
		t.Errorf("defaults: %v %v", c, err)
	}
	if _, err := NewClient(Config{}); err == nil {
		t.Error("NewClient without a key succeeded")
	}
	if _, err := NewClient(Config{APIKey: "k", SandboxURL: "ftp://x"}); err == nil {
		t.Error("NewClient with an ftp sandbox URL succeeded")
	}
}

func TestCloseRetriesAFailedKillAndIgnoresCancellation(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{})
	e.fake.InjectFault(fakee2b.Fault{Service: fakee2b.ServiceAPI, Method: "DELETE", Status: 500})
	if err := sb.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "e2b: kill sandbox "+sb.ID()+": 500") {
		t.Fatalf("Close with a failing kill = %v", err)
	}
	if _, err := sb.ReadFile(context.Background(), "x"); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("ReadFile after Close = %v; want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sb.Close(ctx); err != nil {
		t.Fatalf("second Close with a cancelled context = %v", err)
	}
	if ids := e.fake.SandboxIDs(); len(ids) != 0 {
		t.Errorf("sandboxes left running: %v", ids)
	}
	before := len(e.fake.Requests())
	if err := sb.Close(context.Background()); err != nil || len(e.fake.Requests()) != before {
		t.Errorf("third Close = %v, %d requests", err, len(e.fake.Requests())-before)
	}
}

func TestLongCommandsExtendTheSandbox(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{Timeout: time.Minute})
	// A command that may run 30 minutes needs the sandbox to outlive it.
	runCmd(t, sb, sandbox.Cmd{Shell: "true", Timeout: 30 * time.Minute})
	d, err := e.c.Get(context.Background(), sb.ID())
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(d.EndAt); left < 30*time.Minute {
		t.Errorf("sandbox expires in %v; want it to outlive the command's 30m", left)
	}
	// Beyond the tier's maximum (the fake's is 1h), it settles for 1h.
	runCmd(t, sb, sandbox.Cmd{Shell: "true", Timeout: 3 * time.Hour})
	if d, err = e.c.Get(context.Background(), sb.ID()); err != nil || time.Until(d.EndAt) < 59*time.Minute {
		t.Errorf("after a 3h command: %v, %v", d, err)
	}
}
