package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/sandboxtest"
)

// modes runs f once without isolation and once under bubblewrap (skipped
// when bubblewrap is unusable here).
func modes(t *testing.T, f func(t *testing.T, iso Isolation)) {
	t.Run("none", func(t *testing.T) { f(t, IsolationNone) })
	t.Run("bwrap", func(t *testing.T) {
		newTestProvider(t, IsolationBwrap)
		f(t, IsolationBwrap)
	})
}

func openTest(t *testing.T, p *Provider, files map[string]string) (*Sandbox, string) {
	t.Helper()
	ws := t.TempDir()
	for name, content := range files {
		f := filepath.Join(ws, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb, err := p.Open(context.Background(), sandbox.Spec{Key: "test-" + randHex(4), WorkspaceRoot: ws})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	if _, _, err := sb.Sync(context.Background(), sandbox.Source{Root: ws}); err != nil {
		t.Fatal(err)
	}
	return sb.(*Sandbox), ws
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// marked returns the live processes whose environment holds kv.
func marked(kv string) []proc {
	var live []proc
	for _, p := range withEnv(allProcs(), kv, 0) {
		if alive(p.id()) {
			live = append(live, p)
		}
	}
	return live
}

// treeCommand starts children of every kind a command tree can have: a
// background child, a grandchild, one in its own session, and a foreground
// sleep.
const treeCommand = "sleep 600 & sh -c 'sleep 600 & wait' & setsid sleep 600 & sleep 0.2; echo started; sleep 600"

func TestCancelLeavesNoProcess(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	modes(t, func(t *testing.T, iso Isolation) {
		sb, _ := openTest(t, newTestProvider(t, iso), nil)
		mark := "SANDBOX_TEST_MARK=" + randHex(8)
		name, val, _ := strings.Cut(mark, "=")
		out := sandboxtest.NewBuffer("started\n")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		var st sandbox.ExitStatus
		go func() {
			var err error
			st, err = sb.Exec(ctx, sandbox.Cmd{Shell: treeCommand, Env: map[string]string{name: val}, Stdout: out})
			done <- err
		}()
		select {
		case <-out.Seen():
		case err := <-done:
			t.Fatalf("Exec ended early: %v %+v", err, st)
		}
		if n := len(marked(mark)); n < 4 {
			t.Fatalf("found %d processes of the command before cancel; the marker scan is broken", n)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) || !st.Canceled {
			t.Fatalf("Exec = %+v, %v", st, err)
		}
		if left := marked(mark); len(left) > 0 {
			t.Errorf("processes left after cancel: %+v", left)
		}
	})
}

func TestTimeoutLeavesNoProcess(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	modes(t, func(t *testing.T, iso Isolation) {
		sb, _ := openTest(t, newTestProvider(t, iso), nil)
		mark := "SANDBOX_TEST_MARK=" + randHex(8)
		name, val, _ := strings.Cut(mark, "=")
		var out sandboxtest.Buffer
		st, err := sb.Exec(context.Background(), sandbox.Cmd{Shell: treeCommand, Env: map[string]string{name: val}, Stdout: &out, Timeout: 700 * time.Millisecond})
		if err != nil || !st.TimedOut || st.Canceled {
			t.Fatalf("Exec = %+v, %v; want TimedOut and no error", st, err)
		}
		if left := marked(mark); len(left) > 0 {
			t.Errorf("processes left after the timeout: %+v", left)
		}
	})
}

func TestExitKillsLeftovers(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	modes(t, func(t *testing.T, iso Isolation) {
		sb, _ := openTest(t, newTestProvider(t, iso), nil)
		mark := "SANDBOX_TEST_MARK=" + randHex(8)
		name, val, _ := strings.Cut(mark, "=")
		var out sandboxtest.Buffer
		// The main process exits at once; one child keeps the pipe open,
		// another left the session with its output elsewhere.
		st, err := sb.Exec(context.Background(), sandbox.Cmd{
			Shell: "sleep 600 & setsid sleep 600 >/dev/null 2>&1 & sleep 0.2; echo bye",
			Env:   map[string]string{name: val}, Stdout: &out, Timeout: 5 * time.Minute,
		})
		if err != nil || st.Code != 0 || st.TimedOut || out.String() != "bye\n" {
			t.Fatalf("Exec = %+v, %v, %q", st, err, out.String())
		}
		if left := marked(mark); len(left) > 0 {
			t.Errorf("processes left after the command exited: %+v", left)
		}
	})
}

// countWriter counts bytes and remembers the first and last few.
type countWriter struct {
	n          int64
	head, tail []byte
}

func (c *countWriter) Write(p []byte) (int, error) {
	if len(c.head) < 64 {
		c.head = append(c.head, p[:min(len(p), 64-len(c.head))]...)
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > 64 {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-64:]...)
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestOutputCapBoundsMemory(t *testing.T) {
	modes(t, func(t *testing.T, iso Isolation) {
		sb, _ := openTest(t, newTestProvider(t, iso), nil)
		const total = 100_000_000
		const limit = 1 << 20
		var out countWriter
		out.tail = make([]byte, 0, 256)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st, err := sb.Exec(context.Background(), sandbox.Cmd{
			Shell:       fmt.Sprintf("echo first; head -c %d /dev/zero | tr '\\0' x; echo; echo last", total),
			Stdout:      &out,
			OutputLimit: limit,
		})
		runtime.ReadMemStats(&after)
		if err != nil || st.Code != 0 {
			t.Fatalf("Exec = %+v, %v", st, err)
		}
		printed := int64(len("first\n") + total + len("\nlast\n"))
		if st.DroppedBytes != printed-limit {
			t.Errorf("DroppedBytes = %d; want %d", st.DroppedBytes, printed-limit)
		}
		marker := fmt.Sprintf("\n[... %d bytes of output dropped ...]\n", st.DroppedBytes)
		if out.n != limit+int64(len(marker)) {
			t.Errorf("delivered %d bytes; want the limit %d plus the marker line %d", out.n, limit, len(marker))
		}
		if !bytes.HasPrefix(out.head, []byte("first\nxxx")) || !bytes.HasSuffix(out.tail, []byte("xxx\nlast\n")) {
			t.Errorf("head %q tail %q", out.head, out.tail)
		}
		// The 100 MB went through a bounded buffer: allocations stay within
		// a few times the limit, not the output size.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*limit {
			t.Errorf("Exec allocated %d bytes for %d bytes of output with a %d-byte limit", alloc, printed, limit)
		}
	})
}

func TestIsolation(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	_ = py
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "secret.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Keep the real toolchains reachable: they are found through PATH,
	// which does not depend on HOME.
	t.Setenv("HOME", home)
	p := newTestProvider(t, IsolationBwrap)
	other, _ := openTest(t, p, map[string]string{"other.txt": "another workspace\n"})
	sb, ws := openTest(t, p, map[string]string{"a.txt": "a\n"})
	outside := filepath.Join(t.TempDir(), "written-from-sandbox")
	tmpName := "sandbox-test-" + randHex(6)

	r := func(c sandbox.Cmd) (sandbox.ExitStatus, string) {
		t.Helper()
		var out sandboxtest.Buffer
		c.Stdout, c.Stderr = &out, &out
		st, err := sb.Exec(context.Background(), c)
		if err != nil {
			t.Fatalf("Exec(%q): %v", c.Shell, err)
		}
		return st, out.String()
	}
	checks := []struct {
		shell string
		want  string
	}{
		{"cat " + filepath.Join(home, "secret.txt") + " 2>/dev/null || echo hidden", "hidden\n"},
		{"ls -A " + ws, ""},
		{"cat " + filepath.Join(other.Root(), "other.txt") + " 2>/dev/null || echo hidden", "hidden\n"},
		{"touch /etc/sandbox-test 2>/dev/null || echo read-only", "read-only\n"},
		{"{ echo x > " + outside + "; } 2>/dev/null; echo done", "done\n"},
		{"echo ok > a.txt && cat a.txt", "ok\n"},
		{"echo $HOME; echo x > $HOME/h && cat $HOME/h", sb.path("home") + "\nx\n"},
		{"echo x > /tmp/" + tmpName + " && cat /tmp/" + tmpName, "x\n"},
	}
	for _, c := range checks {
		if _, out := r(sandbox.Cmd{Shell: c.shell}); out != c.want {
			t.Errorf("%q printed %q; want %q", c.shell, out, c.want)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("a command wrote %s outside the working copy", outside)
	}
	if _, err := os.Stat(filepath.Join("/tmp", tmpName)); err == nil {
		t.Errorf("a command wrote into the host's /tmp")
	}
	if _, err := os.Stat(filepath.Join(home, "h")); err == nil {
		t.Errorf("a command wrote into the real HOME")
	}

	// Network: off by default, on with Cmd.Network.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from the host\n"))
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	connect := "python3 -c 'import socket,sys\ntry:\n  s=socket.create_connection((\"127.0.0.1\"," + port + "),timeout=5); print(s.recv(100).decode().strip())\nexcept OSError as e: print(\"unreachable\")'"
	if _, out := r(sandbox.Cmd{Shell: connect}); out != "unreachable\n" {
		t.Errorf("without network a command reached the host: %q", out)
	}
	if _, out := r(sandbox.Cmd{Shell: connect, Network: true}); out != "hello from the host\n" {
		t.Errorf("with network a command could not reach the host: %q", out)
	}
}

func TestOnListen(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	t.Run("network", func(t *testing.T) { testOnListen(t, true) })
	t.Run("no-network", func(t *testing.T) { testOnListen(t, false) })
}

func testOnListen(t *testing.T, network bool) {
	modes(t, func(t *testing.T, iso Isolation) {
		sb, _ := openTest(t, newTestProvider(t, iso), nil)
		// Also a listener of the host that the command does not own: it must
		// not be reported.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		hostPort := ln.Addr().(*net.TCPAddr).Port

		ports := make(chan int, 10)
		out := sandboxtest.NewBuffer("\n")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := sb.Exec(ctx, sandbox.Cmd{
				Shell:    `python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(600)'`,
				Stdout:   out,
				Network:  network,
				OnListen: func(p int) { ports <- p },
			})
			done <- err
		}()
		select {
		case <-out.Seen():
		case err := <-done:
			t.Fatalf("Exec ended early: %v", err)
		}
		want, err := strconv.Atoi(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("listener printed %q", out.String())
		}
		select {
		case got := <-ports:
			if got != want {
				t.Errorf("OnListen(%d); want %d (host listener %d)", got, want, hostPort)
			}
		case err := <-done:
			t.Fatalf("Exec ended before OnListen: %v", err)
		}
		cancel()
		<-done
		select {
		case p := <-ports:
			t.Errorf("OnListen called again with %d", p)
		default:
		}
	})
}

func TestPreviewURL(t *testing.T) {
	modes(t, func(t *testing.T, iso Isolation) {
		sb, _ := openTest(t, newTestProvider(t, iso), nil)
		ctx := context.Background()
		if _, err := sb.PreviewURL(ctx, 0); err == nil {
			t.Errorf("PreviewURL(0) succeeded")
		}
		pv, err := sb.PreviewURL(ctx, 8080)
		if iso == IsolationBwrap {
			if err == nil {
				t.Errorf("PreviewURL without a networked command = %+v; want an error", pv)
			}
		} else if err != nil || pv.URL != "http://127.0.0.1:8080" {
			t.Errorf("PreviewURL = %+v, %v", pv, err)
		}
		out := sandboxtest.NewBuffer("up\n")
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			sb.Exec(cctx, sandbox.Cmd{Shell: "echo up; sleep 600", Network: true, Stdout: out})
			close(done)
		}()
		<-out.Seen()
		if pv, err := sb.PreviewURL(ctx, 8080); err != nil || pv.URL != "http://127.0.0.1:8080" {
			t.Errorf("PreviewURL with a networked command = %+v, %v", pv, err)
		}
		cancel()
		<-done
	})
}

func TestMinimalEnvironment(t *testing.T) {
	t.Setenv("OPENROUTER_API_KEY", "sk-or-sentinel")
	t.Setenv("E2B_API_KEY", "e2b-sentinel")
	modes(t, func(t *testing.T, iso Isolation) {
		p := newTestProvider(t, iso)
		sb, _ := openTest(t, p, nil)
		sb.reuse(sandbox.Spec{Env: map[string]string{"FROM_SPEC": "spec", "BOTH": "spec"}})
		var out sandboxtest.Buffer
		st, err := sb.Exec(context.Background(), sandbox.Cmd{Args: []string{"env"}, Stdout: &out, Env: map[string]string{"BOTH": "cmd"}})
		if err != nil || st.Code != 0 {
			t.Fatal(st, err)
		}
		allowed := []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR", "NO_COLOR", "PAGER",
			"GIT_PAGER", "GIT_TERMINAL_PROMPT", "PYTHONUNBUFFERED", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOFLAGS",
			"CARGO_HOME", "CARGO_NET_OFFLINE", "RUSTUP_HOME", "PYENV_ROOT", "npm_config_cache", "npm_config_offline",
			"npm_config_update_notifier", "npm_config_fund", markerVar, "PWD", "FROM_SPEC", "BOTH"}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			k, v, _ := strings.Cut(line, "=")
			got[k] = v
			if !slices.Contains(allowed, k) {
				t.Errorf("unexpected variable in the minimal environment: %s", line)
			}
		}
		if got["FROM_SPEC"] != "spec" || got["BOTH"] != "cmd" || got["TERM"] != "dumb" || got["LC_ALL"] != "C.UTF-8" {
			t.Errorf("environment: %v", got)
		}
		if strings.Contains(out.String(), "sentinel") {
			t.Errorf("a key of the daemon leaked: %q", out.String())
		}
		if got["HOME"] != sb.path("home") {
			t.Errorf("HOME = %q; want the private %q", got["HOME"], sb.path("home"))
		}
	})
}

func TestGoModulesOffline(t *testing.T) {
	p := newTestProvider(t, IsolationBwrap)
	if p.tc.goModCache == "" {
		t.Skip("no Go module cache on this machine")
	}
	// A module this repository depends on, so its cache holds it.
	const mod, ver = "github.com/tidwall/match", "v1.1.1"
	if _, err := os.Stat(filepath.Join(p.tc.goModCache, "cache", "download", mod, "@v", ver+".mod")); err != nil {
		t.Skipf("%s@%s not in the module cache", mod, ver)
	}
	sb, _ := openTest(t, p, map[string]string{
		"go.mod":  "module offline\n\ngo 1.21\n\nrequire " + mod + " " + ver + "\n",
		"main.go": "package main\n\nimport _ \"" + mod + "\"\n\nfunc main() {}\n",
	})
	var out sandboxtest.Buffer
	st, err := sb.Exec(context.Background(), sandbox.Cmd{Shell: "go mod download -json " + mod + " >/dev/null && go list -deps -f '{{.ImportPath}}' . | grep tidwall", Stdout: &out, Stderr: &out})
	if err != nil || st.Code != 0 || out.String() != mod+"\n" {
		t.Errorf("offline module resolution: %+v %v %q", st, err, out.String())
	}
	// With network the module comes from the host cache through GOPROXY's
	// file:// entry into the sandbox's own cache.
	out = sandboxtest.Buffer{}
	st, err = sb.Exec(context.Background(), sandbox.Cmd{Shell: "go env GOMODCACHE GOPROXY", Network: true, Stdout: &out, Stderr: &out})
	if err != nil || st.Code != 0 || !strings.HasPrefix(out.String(), sb.path("cache")) || !strings.Contains(out.String(), "file://"+p.tc.goModCache) {
		t.Errorf("networked go env: %+v %v %q", st, err, out.String())
	}
}

func TestStatus(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p, err := New(Options{StateDir: t.TempDir(), Bwrap: "/nonexistent/bwrap", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.Isolated || !strings.Contains(st.Reason, "not found") {
		t.Errorf("Status() = %+v", st)
	}
	if n := strings.Count(logs.String(), "bubblewrap not found, commands run without isolation"); n != 1 {
		t.Errorf("logged %d times: %q", n, logs.String())
	}
	if _, err := New(Options{StateDir: t.TempDir(), Bwrap: "/nonexistent/bwrap", Isolation: IsolationBwrap, Logger: quietLogger()}); err == nil {
		t.Errorf("IsolationBwrap without bwrap: New succeeded")
	}
	// A bwrap that exists but cannot create namespaces.
	fake := filepath.Join(t.TempDir(), "bwrap")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	p, err = New(Options{StateDir: t.TempDir(), Bwrap: fake, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.Isolated || st.Bwrap != fake || !strings.Contains(st.Reason, "No permissions to create new namespace") {
		t.Errorf("Status() with a broken bwrap = %+v", st)
	}
	if !strings.Contains(logs.String(), "does not work here") {
		t.Errorf("log: %q", logs.String())
	}
	// Commands still run.
	sb, _ := openTest(t, p, nil)
	var out sandboxtest.Buffer
	if st, err := sb.Exec(context.Background(), sandbox.Cmd{Shell: "echo ok", Stdout: &out}); err != nil || out.String() != "ok\n" {
		t.Errorf("Exec without isolation: %+v %v %q", st, err, out.String())
	}
	if p := newTestProvider(t, IsolationNone); p.Status().Isolated || p.Status().Reason == "" {
		t.Errorf("IsolationNone: %+v", p.Status())
	}
}

func TestOpenReuseLockRemove(t *testing.T) {
	dir := t.TempDir()
	p, err := New(Options{StateDir: dir, Isolation: IsolationNone, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "f"), []byte("f"), 0o644)
	ctx := context.Background()
	spec := sandbox.Spec{Key: "file:///home/user/my project", WorkspaceRoot: ws}
	a, err := p.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := p.Open(ctx, spec); err != nil || b != a {
		t.Errorf("second Open = %v, %v; want the same sandbox", b, err)
	}
	if id := a.ID(); strings.ContainsAny(id, "/: ") || !strings.HasPrefix(id, "file-home-user-my-proj") {
		t.Errorf("ID() = %q", id)
	}
	// Another provider (as another daemon would) gets a second working copy
	// of the same workspace meanwhile, never the one in use.
	p2, _ := New(Options{StateDir: dir, Isolation: IsolationNone, Logger: quietLogger()})
	other, err := p2.Open(ctx, spec)
	if err != nil || other.ID() != a.ID()+"-2" || other.Root() == a.Root() {
		t.Errorf("Open by a second provider: %v %v", other, err)
	}
	if other != nil {
		other.Close(ctx)
	}
	if err := p.Remove(spec.Key); err == nil {
		t.Errorf("Remove of an open sandbox succeeded")
	}
	if _, _, err := a.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	// Reopened after Close: a new sandbox on the same working copy, whose
	// persisted state makes the next sync write nothing.
	b, err := p2.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Errorf("Open after Close returned the closed sandbox")
	}
	if _, st, err := b.Sync(ctx, sandbox.Source{Root: ws}); err != nil || st.Written != 0 || st.Files != 1 {
		t.Errorf("sync after reopening: %+v, %v; want nothing written", st, err)
	}
	b.Close(ctx)
	if err := p.Remove(spec.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Dir(spec.Key)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s: %v", p.Dir(spec.Key), err)
	}
	if err := p.Remove(spec.Key); err != nil {
		t.Errorf("Remove of a missing sandbox: %v", err)
	}
}

func TestSyncDetails(t *testing.T) {
	p := newTestProvider(t, IsolationNone)
	sb, ws := openTest(t, p, map[string]string{"a.txt": "alpha\n", "dir/b.txt": "bravo\n", "d2/x": "x"})
	ctx := context.Background()
	src := sandbox.Source{Root: ws}
	sync := func() sandbox.SyncStats {
		t.Helper()
		_, st, err := sb.Sync(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	wcPath := func(rel string) string { return filepath.Join(sb.Root(), filepath.FromSlash(rel)) }

	// Touched but unchanged: nothing is written.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(ws, "a.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	if st := sync(); st.Written != 0 {
		t.Errorf("touched file: %+v", st)
	}
	// Same size, mtime put back: ctime still tells the content changed.
	fi, _ := os.Stat(filepath.Join(ws, "a.txt"))
	os.WriteFile(filepath.Join(ws, "a.txt"), []byte("ALPHA\n"), 0o644)
	os.Chtimes(filepath.Join(ws, "a.txt"), fi.ModTime(), fi.ModTime())
	if st := sync(); st.Written != 1 {
		t.Errorf("same-size change with mtime restored: %+v", st)
	}
	// The same in the working copy.
	fi, _ = os.Stat(wcPath("dir/b.txt"))
	os.WriteFile(wcPath("dir/b.txt"), []byte("BRAVO\n"), 0o644)
	os.Chtimes(wcPath("dir/b.txt"), fi.ModTime(), fi.ModTime())
	if st := sync(); st.Written != 1 {
		t.Errorf("working-copy change with mtime restored: %+v", st)
	}
	if b, _ := os.ReadFile(wcPath("dir/b.txt")); string(b) != "bravo\n" {
		t.Errorf("working copy not restored: %q", b)
	}
	// Mode change.
	os.Chmod(filepath.Join(ws, "a.txt"), 0o755)
	if st := sync(); st.Written != 1 {
		t.Errorf("chmod: %+v", st)
	}
	if fi, _ := os.Stat(wcPath("a.txt")); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode in the copy: %v", fi.Mode())
	}

	// Symlinks: inside (relative, absolute, dangling) copied; outside skipped.
	os.Symlink("a.txt", filepath.Join(ws, "rel-link"))
	os.Symlink(filepath.Join(ws, "dir", "b.txt"), filepath.Join(ws, "dir", "abs-link"))
	os.Symlink("dir", filepath.Join(ws, "dir-link"))
	os.Symlink("nothere", filepath.Join(ws, "dangling"))
	os.Symlink("/etc/passwd", filepath.Join(ws, "out-abs"))
	os.Symlink("../../etc", filepath.Join(ws, "dir", "out-rel"))
	syscall.Mkfifo(filepath.Join(ws, "fifo"), 0o644)
	st := sync()
	if st.Written != 4 || st.Skipped != 3 {
		t.Errorf("symlinks: %+v; want 4 written, 3 skipped", st)
	}
	for link, want := range map[string]string{"rel-link": "a.txt", "dir/abs-link": "b.txt", "dir-link": "dir", "dangling": "nothere"} {
		if got, err := os.Readlink(wcPath(link)); err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", link, got, err, want)
		}
	}
	for _, name := range []string{"out-abs", "dir/out-rel", "fifo"} {
		if _, err := os.Lstat(wcPath(name)); err == nil {
			t.Errorf("%s was synced", name)
		}
	}
	if st := sync(); st.Written != 0 || st.Removed != 0 {
		t.Errorf("unchanged tree with symlinks: %+v", st)
	}
	m, _ := sb.Manifest(ctx)
	if _, ok := m["rel-link"]; ok {
		t.Errorf("Manifest lists a symlink")
	}

	// Type changes: a file becomes a directory and a directory a file.
	os.Remove(filepath.Join(ws, "a.txt"))
	os.MkdirAll(filepath.Join(ws, "a.txt"), 0o755)
	os.WriteFile(filepath.Join(ws, "a.txt", "inner"), []byte("inner"), 0o644)
	os.RemoveAll(filepath.Join(ws, "d2"))
	os.WriteFile(filepath.Join(ws, "d2"), []byte("now a file"), 0o644)
	st = sync()
	if b, err := os.ReadFile(wcPath("a.txt/inner")); err != nil || string(b) != "inner" {
		t.Errorf("file→dir: %q %v (%+v)", b, err, st)
	}
	if b, err := os.ReadFile(wcPath("d2")); err != nil || string(b) != "now a file" {
		t.Errorf("dir→file: %q %v (%+v)", b, err, st)
	}

	// A removed directory disappears from the copy unless a command put
	// files in it.
	os.MkdirAll(filepath.Join(ws, "gone/deep"), 0o755)
	os.WriteFile(filepath.Join(ws, "gone/deep/f"), []byte("f"), 0o644)
	os.MkdirAll(filepath.Join(ws, "kept"), 0o755)
	os.WriteFile(filepath.Join(ws, "kept/f"), []byte("f"), 0o644)
	sync()
	os.WriteFile(wcPath("kept/build.out"), []byte("made by a build"), 0o644)
	os.RemoveAll(filepath.Join(ws, "gone"))
	os.RemoveAll(filepath.Join(ws, "kept"))
	if st := sync(); st.Removed != 2 {
		t.Errorf("removed dirs: %+v", st)
	}
	if _, err := os.Lstat(wcPath("gone")); err == nil {
		t.Errorf("empty directory left behind")
	}
	if b, _ := os.ReadFile(wcPath("kept/build.out")); string(b) != "made by a build" {
		t.Errorf("a command's file was removed")
	}

	// Errors: relative root, missing root, root overlapping the copy.
	for _, bad := range []string{"relative", filepath.Join(ws, "missing"), sb.Root(), filepath.Dir(sb.Root())} {
		if _, _, err := sb.Sync(ctx, sandbox.Source{Root: bad}); err == nil {
			t.Errorf("Sync(%q) succeeded", bad)
		}
	}
}

func TestSyncCancelled(t *testing.T) {
	p := newTestProvider(t, IsolationNone)
	files := map[string]string{}
	for i := 0; i < 2000; i++ {
		files[fmt.Sprintf("d%02d/f%04d.txt", i%20, i)] = strconv.Itoa(i)
	}
	ws := t.TempDir()
	for name, c := range files {
		os.MkdirAll(filepath.Join(ws, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(ws, name), []byte(c), 0o644)
	}
	sbi, err := p.Open(context.Background(), sandbox.Spec{Key: "cancel", WorkspaceRoot: ws})
	if err != nil {
		t.Fatal(err)
	}
	defer sbi.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := sbi.Sync(ctx, sandbox.Source{Root: ws}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Sync = %v", err)
	}
	m, st, err := sbi.Sync(context.Background(), sandbox.Source{Root: ws})
	if err != nil || len(m) != len(files) || st.Files != len(files) {
		t.Errorf("Sync after a cancelled one: %d files, %+v, %v", len(m), st, err)
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
	p, ok := parseStat(4242, []byte(line))
	if !ok || p.state != 'S' || p.ppid != 1 || p.pgid != 4242 || p.sid != 4242 || p.start != 987654 {
		t.Errorf("parseStat = %+v, %v", p, ok)
	}
	if _, ok := parseStat(1, []byte("garbage")); ok {
		t.Errorf("parseStat accepted garbage")
	}
}

func TestSandboxID(t *testing.T) {
	for key, want := range map[string]string{"abc": "abc", "my-ws_1.2": "my-ws_1.2"} {
		if got := sandboxID(key); got != want {
			t.Errorf("sandboxID(%q) = %q", key, got)
		}
	}
	a, b := sandboxID("/home/u/a b"), sandboxID("/home/u/a-b")
	if a == b || strings.ContainsAny(a, "/ ") {
		t.Errorf("ids %q %q", a, b)
	}
	for _, k := range []string{"..", ".", "../x", strings.Repeat("x", 100)} {
		if id := sandboxID(k); id == k || strings.Contains(id, "/") || id == "." || id == ".." {
			t.Errorf("sandboxID(%q) = %q", k, id)
		}
	}

}

func TestPathBind(t *testing.T) {
	for entry, want := range map[string]string{
		"/home/u/.opencode/bin":    "/home/u/.opencode",
		"/home/u/.npm-global/bin":  "/home/u/.npm-global",
		"/home/u/.local/bin":       "/home/u/.local/bin",
		"/home/u/.cargo/bin":       "/home/u/.cargo/bin",
		"/home/u/bin":              "/home/u/bin",
		"/home/u/go/bin":           "/home/u/go",
		"/usr/local/go/bin":        "/usr/local/go/bin",
		"/home/u/.pyenv/shims":     "/home/u/.pyenv",
		"/home/u/a/b/c/bin":        "/home/u/a/b/c",
		"/home/u":                  "/home/u",
		"/home/u/.config/tool/bin": "/home/u/.config/tool",
	} {
		if got := pathBind(entry, "/home/u"); got != want {
			t.Errorf("pathBind(%q) = %q; want %q", entry, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := newTestProvider(t, IsolationNone)
	sb, ws := openTest(t, p, map[string]string{"a.txt": "a\n"})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var out sandboxtest.Buffer
			st, err := sb.Exec(ctx, sandbox.Cmd{Shell: fmt.Sprintf("echo %d; cat a.txt >/dev/null", i), Stdout: &out})
			if err != nil || st.Code != 0 || out.String() != fmt.Sprintf("%d\n", i) {
				errs <- fmt.Errorf("exec %d: %+v %v %q", i, st, err, out.String())
			}
		}(i)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("f%d.txt", i)
			if err := sb.WriteFile(ctx, name, []byte(name), 0); err != nil {
				errs <- err
			}
			if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
				errs <- err
			}
			if _, err := sb.Manifest(ctx); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestToolBinds(t *testing.T) {
	dir := t.TempDir()
	nm := filepath.Join(dir, "tools", "node_modules")
	if err := os.MkdirAll(filepath.Join(nm, ".bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(nm, "pkg", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(nm, "pkg", "bin", "tool")
	if err := os.WriteFile(target, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(nm, ".bin", "tool")
	if err := os.Symlink("../pkg/bin/tool", link); err != nil {
		t.Fatal(err)
	}
	if got := ToolBinds(link, "relative/tool", "/usr/local/bin/go"); len(got) != 2 || got[0] != nm || got[1] != "/usr/local/bin" {
		t.Fatalf("ToolBinds = %v, want [%s /usr/local/bin]", got, nm)
	}
}
