package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"

	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
)

const (
	testE2BKey     = "e2b_CMDTEST_key_0123456789abcdef0123"
	testDaytonaKey = "dtn_CMDTEST_key_0123456789abcdef0123"
)

// fakes are the cloud fakes and the environment that points a daemon at
// them (the services' own variables), with a private HOME and state dir.
type fakes struct {
	e2b     *fakee2b.Server
	daytona *fakedaytona.Server
	env     map[string]string
}

func newFakes(t *testing.T) *fakes {
	t.Helper()
	f := &fakes{e2b: fakee2b.New(t, fakee2b.Options{APIKey: testE2BKey})}
	var err error
	if f.daytona, err = fakedaytona.New(fakedaytona.Options{APIKey: testDaytonaKey}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.daytona.Close() })
	home := t.TempDir()
	f.env = map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": home, "XDG_STATE_HOME": filepath.Join(home, "state"), "XDG_CACHE_HOME": filepath.Join(home, "cache"),
		"E2B_API_KEY": testE2BKey, "E2B_API_URL": f.e2b.APIURL, "E2B_SANDBOX_URL": f.e2b.SandboxURL, "E2B_DOMAIN": f.e2b.Domain,
		"DAYTONA_API_KEY": testDaytonaKey, "DAYTONA_API_URL": f.daytona.APIURL(),
	}
	return f
}

func (f *fakes) live() int { return len(f.e2b.SandboxIDs()) + len(f.daytona.SandboxIDs()) }

func (f *fakes) environ() []string {
	var out []string
	for k, v := range f.env {
		out = append(out, k+"="+v)
	}
	return out
}

// lspDaemon is the built binary serving LSP on its stdio, driven by a minimal
// client.
type lspDaemon struct {
	t          *testing.T
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	stdout     io.ReadCloser
	stderrPipe *os.File // read end of the daemon's stderr
	conn       jsonrpc2.Conn
	stderr     *syncBuffer
	exited     chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type pipes struct {
	io.Reader
	io.WriteCloser
}

func startLSPDaemon(t *testing.T, env []string) *lspDaemon {
	t.Helper()
	cmd := exec.Command(binary, "--log-level", "debug")
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &lspDaemon{t: t, cmd: cmd, stdin: stdin, stdout: stdout, stderr: &syncBuffer{}, exited: make(chan struct{})}
	// Our own stderr pipe, so that a test can close its read end as a dying
	// editor does.
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errW
	d.stderrPipe = errR
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errW.Close()
	go func() { _, _ = io.Copy(d.stderr, errR) }()
	go func() { cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
	d.conn = jsonrpc2.NewConn(jsonrpc2.NewStream(pipes{stdout, stdin}))
	d.conn.Go(context.Background(), func(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request) error {
		if _, ok := req.(*jsonrpc2.Call); ok {
			return reply(ctx, nil, nil) // workDoneProgress/create and the like
		}
		return nil
	})
	return d
}

func (d *lspDaemon) call(ctx context.Context, method string, params, result any) error {
	_, err := d.conn.Call(ctx, method, params, result)
	return err
}

func (d *lspDaemon) initialize(ctx context.Context, root string) {
	d.t.Helper()
	uri := (&url.URL{Scheme: "file", Path: filepath.ToSlash(root)}).String()
	params := map[string]any{
		"processId": os.Getpid(), "rootUri": uri,
		"workspaceFolders": []map[string]any{{"uri": uri, "name": "ws"}},
		"capabilities":     map[string]any{},
	}
	if err := d.call(ctx, "initialize", params, nil); err != nil {
		d.t.Fatalf("initialize: %v", err)
	}
	if err := d.conn.Notify(ctx, "initialized", map[string]any{}); err != nil {
		d.t.Fatal(err)
	}
}

// run executes opencode.run with a trivial command in provider's sandbox.
func (d *lspDaemon) run(ctx context.Context, provider string) {
	d.t.Helper()
	var res struct {
		ExitCode   int    `json:"exitCode"`
		OutputTail string `json:"outputTail"`
	}
	args := map[string]any{"command": "echo hello from " + provider, "sandbox": provider}
	if err := d.call(ctx, "workspace/executeCommand", map[string]any{"command": "opencode.run", "arguments": []any{args}}, &res); err != nil {
		d.t.Fatalf("opencode.run in %s: %v", provider, err)
	}
	if res.ExitCode != 0 {
		d.t.Fatalf("opencode.run in %s: %+v", provider, res)
	}
}

func (d *lspDaemon) status(ctx context.Context) (out struct {
	Sandboxes []struct{ Provider, ID, State string }
	Usage     map[string]float64
}) {
	d.t.Helper()
	if err := d.call(ctx, "workspace/executeCommand", map[string]any{"command": "opencode.status", "arguments": []any{map[string]any{}}}, &out); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// wait waits for the daemon's exit and returns its exit code.
func (d *lspDaemon) wait(ctx context.Context) int {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.cmd.ProcessState.ExitCode()
	case <-ctx.Done():
		d.t.Fatalf("the lspDaemon did not exit: %v", ctx.Err())
		return -1
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// await waits for cond; the bound only keeps a broken test from hanging.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// withSandboxes starts a lspDaemon that holds one E2B and one Daytona sandbox.
func withSandboxes(t *testing.T, ctx context.Context, f *fakes) *lspDaemon {
	t.Helper()
	d := startLSPDaemon(t, f.environ())
	d.initialize(ctx, t.TempDir())
	d.run(ctx, "e2b")
	d.run(ctx, "daytona")
	if n := f.live(); n != 2 {
		t.Fatalf("%d sandboxes in the fakes, want 2", n)
	}
	st := d.status(ctx)
	if len(st.Sandboxes) != 2 || st.Usage["e2b"] <= 0 || st.Usage["daytona"] <= 0 {
		t.Fatalf("status: %+v", st)
	}
	return d
}

// A lspDaemon killed with SIGKILL leaves its sandboxes running; the next
// lspDaemon kills them at start-up, without any command.
func TestSIGKILLThenRestartLeavesNoSandbox(t *testing.T) {
	ctx := testCtx(t)
	f := newFakes(t)
	d := withSandboxes(t, ctx, f)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.wait(ctx)
	if n := f.live(); n != 2 {
		t.Fatalf("SIGKILL: %d sandboxes in the fakes (a killed lspDaemon cannot clean up)", n)
	}
	d2 := startLSPDaemon(t, f.environ())
	d2.initialize(ctx, t.TempDir())
	await(t, "the restarted lspDaemon to kill the orphans", func() bool { return f.live() == 0 })
	// Their time is in the usage file, read by the new daemon.
	st := d2.status(ctx)
	if len(st.Sandboxes) != 0 || st.Usage["e2b"] <= 0 || st.Usage["daytona"] <= 0 {
		t.Fatalf("status after the restart: %+v", st)
	}
	if err := d2.call(ctx, "shutdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	d2.conn.Notify(ctx, "exit", nil)
	if code := d2.wait(ctx); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// SIGTERM and the editor going away (stdin EOF) close every sandbox before
// the lspDaemon exits.
func TestSIGTERMAndStdinEOFLeaveNoSandbox(t *testing.T) {
	for _, how := range []string{"SIGTERM", "stdin EOF", "editor died", "shutdown+exit"} {
		t.Run(how, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFakes(t)
			d := withSandboxes(t, ctx, f)
			switch how {
			case "SIGTERM":
				d.cmd.Process.Signal(syscall.SIGTERM)
			case "stdin EOF":
				d.stdin.Close()
			case "editor died":
				// All three pipes close at once: writes to stdout/stderr
				// fail (EPIPE), and must not kill the daemon mid-cleanup.
				d.stdout.Close()
				d.stderrPipe.Close()
				d.stdin.Close()
			default:
				if err := d.call(ctx, "shutdown", nil, nil); err != nil {
					t.Fatal(err)
				}
				if n := f.live(); n != 0 {
					t.Fatalf("%d sandboxes left after shutdown", n)
				}
				d.conn.Notify(ctx, "exit", nil)
			}
			d.wait(ctx)
			if n := f.live(); n != 0 {
				t.Fatalf("%s: %d sandboxes left in the fakes", how, n)
			}
			// The usage file holds their time and no live record.
			b, err := os.ReadFile(filepath.Join(f.env["XDG_STATE_HOME"], "opencode-lsp", "usage.json"))
			if err != nil {
				t.Fatal(err)
			}
			var u struct {
				Months map[string]map[string]float64
				Live   []any
			}
			if err := json.Unmarshal(b, &u); err != nil {
				t.Fatal(err)
			}
			m := u.Months[time.Now().UTC().Format("2006-01")]
			if len(u.Live) != 0 || m["e2b"] <= 0 || m["daytona"] <= 0 {
				t.Fatalf("usage file: %s", b)
			}
		})
	}
}
