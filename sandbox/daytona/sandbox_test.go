package daytona

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
)

// syncBuffer is a concurrency-safe writer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func open(t *testing.T, p *Provider, spec sandbox.Spec) *Sandbox {
	t.Helper()
	if spec.Key == "" {
		spec.Key = "test-" + randHex(4)
	}
	if spec.WorkspaceRoot == "" {
		spec.WorkspaceRoot = t.TempDir()
	}
	sb, err := p.Open(ctxT(t), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return sb.(*Sandbox)
}

func shell(t *testing.T, sb *Sandbox, script string, env map[string]string) (string, string, sandbox.ExitStatus) {
	t.Helper()
	var o, e syncBuffer
	st, err := sb.Exec(ctxT(t), sandbox.Cmd{Shell: script, Env: env, Stdout: &o, Stderr: &e, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("Exec(%q): %v", script, err)
	}
	return o.String(), e.String(), st
}

func TestOpenLabelsTimeoutAndClose(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	p := newProvider(t, f, nil)
	sb := open(t, p, sandbox.Spec{Key: "ws-1", Labels: map[string]string{"test": "x", LabelApp: "0"}, Timeout: 90 * time.Second,
		Env: map[string]string{"AGENT_KEY": "sk-agent-secret"}})
	st, ok := f.Sandbox(sb.ID())
	if !ok {
		t.Fatal("no sandbox in the fake")
	}
	want := map[string]string{LabelApp: "1", LabelWorkspace: "ws-1", "test": "x"}
	if len(st.Labels) != len(want) {
		t.Errorf("labels %v; want %v", st.Labels, want)
	}
	for k, v := range want {
		if st.Labels[k] != v {
			t.Errorf("label %s = %q; want %q", k, st.Labels[k], v)
		}
	}
	if st.AutoStopInterval != 2 {
		t.Errorf("autoStopInterval %d; want 2 (90 s rounded up to minutes)", st.AutoStopInterval)
	}
	if len(st.Env) != 0 {
		t.Errorf("Spec.Env went into the create request: %v", st.Env)
	}
	if sb.Root() != st.Home+"/workspace" {
		t.Errorf("Root() = %q; home %q", sb.Root(), st.Home)
	}
	found, err := p.Client().List(ctxT(t), map[string]string{LabelApp: "1", LabelWorkspace: "ws-1"})
	if err != nil || len(found) != 1 || found[0].ID != sb.ID() {
		t.Errorf("List by our labels = %v, %v", found, err)
	}
	if err := sb.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Sandbox(sb.ID()); ok {
		t.Errorf("the sandbox survived Close")
	}
	if err := sb.Close(ctxT(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := sb.ReadFile(ctxT(t), "x"); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("ReadFile after Close: %v", err)
	}
}

func TestOpenFailureDeletesTheSandbox(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	p := newProvider(t, f, nil)
	f.InjectFault(fakedaytona.Fault{Path: "/toolbox/", Status: 500, Count: 1})
	_, err := p.Open(ctxT(t), sandbox.Spec{Key: "k", WorkspaceRoot: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error") {
		t.Fatalf("Open with a failing toolbox: %v", err)
	}
	if ids := f.SandboxIDs(); len(ids) != 0 {
		t.Errorf("a sandbox that failed to open was left behind: %v", ids)
	}
}

func TestToolboxURLFromTheAPI(t *testing.T) {
	f := newFake(t, fakedaytona.Options{OmitToolboxProxyURL: true})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	if out, _, _ := shell(t, sb, "echo hi", nil); out != "hi\n" {
		t.Errorf("exec printed %q", out)
	}
	if n := countRequests(f, "GET", "/api/sandbox/"+sb.ID()+"/toolbox-proxy-url"); n != 1 {
		t.Errorf("%d toolbox-proxy-url requests; want 1", n)
	}
}

func TestToolboxURLOverride(t *testing.T) {
	// The API advertises a proxy nobody listens on; DAYTONA_TOOLBOX_URL wins.
	f := newFake(t, fakedaytona.Options{AdvertisedToolboxURL: "http://127.0.0.1:9/toolbox"})
	sb := open(t, newProvider(t, f, func(o *Options) { o.ToolboxURL = f.ToolboxURL() + "/" }), sandbox.Spec{})
	if out, _, _ := shell(t, sb, "echo hi", nil); out != "hi\n" {
		t.Errorf("exec printed %q", out)
	}
}

func TestEnvironment(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	secret := `s3cr'et "value" $HOME \n`
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{Env: map[string]string{"AGENT_KEY": secret, "SHARED": "spec"}})
	out, _, _ := shell(t, sb, `printf '%s|%s|%s' "$AGENT_KEY" "$SHARED" "$ONLY_CMD"`, map[string]string{"SHARED": "cmd", "ONLY_CMD": "c"})
	if out != secret+"|cmd|c" {
		t.Errorf("environment: %q", out)
	}
	// The secret travelled as a file, never in a command line or a query.
	for _, r := range f.Requests() {
		if strings.Contains(r.Query.Encode(), "s3cr") {
			t.Errorf("the Spec.Env value went into a query: %s %s", r.Method, r.Path)
		}
	}
}

func TestKeyGoesOnlyToDaytona(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for a server in the sandbox")
	}
	f := newFake(t, fakedaytona.Options{})
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := newProvider(t, f, func(o *Options) { o.Logger = logger })
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "index.html"), []byte("hello from the sandbox\n"), 0o644)
	sb := open(t, p, sandbox.Spec{WorkspaceRoot: ws})
	ctx := ctxT(t)
	if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
		t.Fatal(err)
	}

	// A server in the sandbox, found through its output.
	port := freePort(t)
	ports := make(chan int, 4)
	srvCtx, stopSrv := context.WithCancel(ctx)
	defer stopSrv()
	done := make(chan error, 1)
	go func() {
		_, err := sb.Exec(srvCtx, sandbox.Cmd{Args: []string{"python3", "-m", "http.server", strconv.Itoa(port), "--bind", "127.0.0.1"},
			OnListen: func(p int) { ports <- p }})
		done <- err
	}()
	select {
	case got := <-ports:
		if got != port {
			t.Fatalf("OnListen(%d); want %d", got, port)
		}
	case err := <-done:
		t.Fatalf("server ended: %v", err)
	}
	pv, err := sb.PreviewURL(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Headers[PreviewHeader] == "" {
		t.Fatalf("preview without a token header: %+v", pv)
	}
	get := func(headers map[string]string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", pv.URL+"/index.html", nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(pv.Headers); code != 200 || body != "hello from the sandbox\n" {
		t.Errorf("preview with the token: %d %q", code, body)
	}
	if code, _ := get(nil); code != http.StatusUnauthorized {
		t.Errorf("preview without the token: %d; want 401", code)
	}
	stopSrv()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled server: %v", err)
	}
	if _, err := sb.ReadFile(ctx, "index.html"); err != nil {
		t.Fatal(err)
	}
	if err := sb.WriteFile(ctx, "w.txt", []byte("w"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Manifest(ctx); err != nil {
		t.Fatal(err)
	}
	sb.Close(ctx)

	var api, toolbox, preview int
	for _, r := range f.Requests() {
		auth := r.Header.Get("Authorization")
		switch r.Target {
		case "api", "toolbox":
			if auth != "Bearer "+testKey {
				t.Errorf("%s %s carried Authorization %q", r.Method, r.Path, auth)
			}
			if r.Target == "api" {
				api++
			} else {
				toolbox++
			}
			if v := r.Header.Get("X-Daytona-SDK-Version"); v == "" {
				t.Errorf("%s %s without X-Daytona-SDK-Version", r.Method, r.Path)
			}
		case "preview":
			preview++
			if auth != "" {
				t.Errorf("the preview request carried Authorization %q", auth)
			}
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if k != "Authorization" && strings.Contains(v, testKey) {
					t.Errorf("%s %s: the key is in header %s", r.Method, r.Path, k)
				}
			}
		}
		if strings.Contains(r.Query.Encode(), testKey) || strings.Contains(r.Path, testKey) {
			t.Errorf("the key is in the URL of %s %s", r.Method, r.Path)
		}
	}
	if api == 0 || toolbox == 0 || preview != 2 {
		t.Errorf("requests: %d api, %d toolbox, %d preview", api, toolbox, preview)
	}
	if logs.String() == "" {
		t.Errorf("no debug log at all")
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("the key is in the log")
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestFollowFallsBackToPolling(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	f.InjectFault(fakedaytona.Fault{WebSocket: true, Status: 404})
	out, errOut, st := shell(t, sb, "echo out; echo err >&2; sleep 0.3; echo more; exit 4", nil)
	if out != "out\nmore\n" || errOut != "err\n" || st.Code != 4 {
		t.Errorf("polled exec: %q %q %+v", out, errOut, st)
	}
	if n := countRequests(f, "GET", "/toolbox/"+sb.ID()+"/process/session/"); n < 2 {
		t.Errorf("%d status/log requests", n)
	}
}

func TestFollowDroppedMidwayFallsBackToPolling(t *testing.T) {
	f := newFake(t, fakedaytona.Options{FollowDropAfter: 5})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	out, errOut, st := shell(t, sb, "echo a; sleep 0.3; echo b; echo c >&2; exit 2", nil)
	if out != "a\nb\n" || errOut != "c\n" || st.Code != 2 {
		t.Errorf("exec whose follow socket dropped: %q %q %+v", out, errOut, st)
	}
	polled := 0
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/logs") && r.Query.Get("follow") == "" {
			polled++
		}
	}
	if polled == 0 {
		t.Errorf("the rest of the output was not polled")
	}
}

func TestSessionsAreReused(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	for i := 0; i < 3; i++ {
		shell(t, sb, "cd /; export X=1; exit 0", nil)
	}
	out, _, _ := shell(t, sb, `pwd; echo "X=$X"`, nil)
	if out != sb.Root()+"\nX=\n" {
		t.Errorf("state leaked between commands of one session: %q", out)
	}
	if n := countRequests(f, "POST", "/toolbox/"+sb.ID()+"/process/session"); n != 4+1 {
		// 4 execs + 1 session create
		t.Errorf("%d session requests; want 5 (one create, four execs)", n)
	}
}

func TestStoppedSandbox(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	if err := f.SetState(sb.ID(), "stopped", ""); err != nil {
		t.Fatal(err)
	}
	_, err := sb.Exec(ctxT(t), sandbox.Cmd{Shell: "true"})
	if err == nil || !errors.Is(err, sandbox.ErrClosed) || !strings.Contains(err.Error(), sb.ID()) ||
		!strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Errorf("Exec in a stopped sandbox: %v", err)
	}
}

func TestSyncSymlinksAndTypeChanges(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	ws := t.TempDir()
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{WorkspaceRoot: ws})
	os.MkdirAll(filepath.Join(ws, "d"), 0o755)
	os.WriteFile(filepath.Join(ws, "d", "f.txt"), []byte("f\n"), 0o600)
	os.WriteFile(filepath.Join(ws, "x"), []byte("x is a file\n"), 0o644)
	os.Symlink("d/f.txt", filepath.Join(ws, "rel-link"))
	os.Symlink(filepath.Join(ws, "d"), filepath.Join(ws, "abs-link"))
	ctx := ctxT(t)
	m, st, err := sb.Sync(ctx, sandbox.Source{Root: ws})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || st.Written != 4 || st.Skipped != 0 || len(m) != 2 {
		t.Errorf("first sync: %+v, manifest %v", st, m)
	}
	if m["d/f.txt"].Mode != 0o600 {
		t.Errorf("mode %v; want 0600", m["d/f.txt"].Mode)
	}
	out, _, _ := shell(t, sb, "readlink rel-link; readlink abs-link; cat abs-link/f.txt; stat -c %a d/f.txt", nil)
	if out != "d/f.txt\nd\nf\n600\n" {
		t.Errorf("working copy: %q", out)
	}
	// x becomes a directory, a link becomes a file.
	os.Remove(filepath.Join(ws, "x"))
	os.MkdirAll(filepath.Join(ws, "x"), 0o755)
	os.WriteFile(filepath.Join(ws, "x", "inner.txt"), []byte("inner\n"), 0o644)
	os.Remove(filepath.Join(ws, "rel-link"))
	os.WriteFile(filepath.Join(ws, "rel-link"), []byte("now a file\n"), 0o644)
	os.Chmod(filepath.Join(ws, "d", "f.txt"), 0o644)
	m, st, err = sb.Sync(ctx, sandbox.Source{Root: ws})
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != 1 || st.Written != 3 {
		t.Errorf("second sync: %+v", st)
	}
	out, _, _ = shell(t, sb, "cat x/inner.txt rel-link; stat -c %a d/f.txt", nil)
	if out != "inner\nnow a file\n644\n" {
		t.Errorf("working copy: %q", out)
	}
	mf, err := sb.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(mf) != len(m) || mf["x/inner.txt"].Hash != m["x/inner.txt"].Hash || mf["d/f.txt"].Mode != 0o644 {
		t.Errorf("Manifest %v; synced %v", mf, m)
	}
	// Only what changed is hashed again: an unchanged tree is one listing.
	before := countRequests(f, "POST", "/toolbox/"+sb.ID()+"/process/execute")
	if _, st, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil || st.Written != 0 {
		t.Fatalf("unchanged sync: %+v %v", st, err)
	}
	if n := countRequests(f, "POST", "/toolbox/"+sb.ID()+"/process/execute") - before; n != 1 {
		t.Errorf("an unchanged sync took %d commands; want 1", n)
	}
}

func TestUploadManyFilesInBatches(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	ws := t.TempDir()
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{WorkspaceRoot: ws})
	const n = batchFiles + 5
	for i := 0; i < n; i++ {
		os.WriteFile(filepath.Join(ws, "f"+strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644)
	}
	m, st, err := sb.Sync(ctxT(t), sandbox.Source{Root: ws})
	if err != nil || st.Written != n || len(m) != n {
		t.Fatalf("sync of %d files: %+v %v", n, st, err)
	}
	if got := countRequests(f, "POST", "/toolbox/"+sb.ID()+"/files/bulk-upload"); got != 2 {
		t.Errorf("%d bulk uploads; want 2", got)
	}
	mf, err := sb.Manifest(ctxT(t))
	if err != nil || len(mf) != n || mf["f1000"].Hash != sumBytes([]byte("1000")) {
		t.Errorf("Manifest: %d entries, %v", len(mf), err)
	}
}

func TestLegacyExitCodeField(t *testing.T) {
	f := newFake(t, fakedaytona.Options{LegacyExitCode: true})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	code, _, err := sb.scriptCode(ctxT(t), "test", "exit 3", time.Minute)
	if err != nil || code != 3 {
		t.Errorf("scriptCode = %d, %v; want 3", code, err)
	}
}

func TestExecuteTimeoutIs408(t *testing.T) {
	f := newFake(t, fakedaytona.Options{TerminationGrace: 100 * time.Millisecond})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	_, _, err := sb.tb.execute(ctxT(t), "run test", "sleep 30", "", time.Second)
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusRequestTimeout || e.Code != "REQUEST_TIMEOUT" ||
		!strings.Contains(err.Error(), "run test "+sb.ID()+": 408 Request Timeout: Command execution timed out after 1 seconds") {
		t.Errorf("execute past its timeout: %v", err)
	}
}

func TestScriptLongerThanACommandLine(t *testing.T) {
	f := newFake(t, fakedaytona.Options{})
	sb := open(t, newProvider(t, f, nil), sandbox.Spec{})
	var b strings.Builder
	for b.Len() < 2*maxInlineScript {
		b.WriteString("# padding padding padding padding padding padding padding padding\n")
	}
	b.WriteString("echo long; exit 5\n")
	code, out, err := sb.scriptCode(ctxT(t), "test", b.String(), time.Minute)
	if err != nil || code != 5 || out != "long\n" {
		t.Errorf("long script: %d %q %v", code, out, err)
	}
}
