package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/opencode-lsp/opencode-lsp/bench/lspclient"
)

// server is a language server process driven by an lspclient.Conn over
// its stdio: the same client code for every server measured.
type server struct {
	*lspclient.Conn
	name   string
	cmd    *exec.Cmd
	stdin  io.Closer
	stderr *capped
	exited chan struct{} // closed when the process has been waited for
}

// capped keeps the first 64 KiB written to it (the server's stderr, shown
// when something fails).
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 64<<10 - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// startServer spawns the server in its own process group (so that every
// process it starts can be ended with it) and returns it with the instant
// right before the process was started.
func startServer(p *profile, dir string, hooks lspclient.Hooks) (*server, time.Time, error) {
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, time.Time{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, time.Time{}, err
	}
	s := &server{name: p.Name, cmd: cmd, stdin: stdin, stderr: &capped{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, t0, fmt.Errorf("%s: start %s: %w", p.Name, p.Argv[0], err)
	}
	s.Conn = lspclient.New(p.Name, stdout, stdin, hooks)
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	return s, t0, nil
}

// call is Conn.Call with the server's stderr attached when the server died.
func (s *server) call(ctx context.Context, method string, params any) (lspclient.Response, time.Time, error) {
	r, sent, err := s.Call(ctx, method, params)
	if err != nil {
		select {
		case <-s.Done():
			err = fmt.Errorf("%w; stderr:\n%s", err, tail(s.stderr.String(), 2000))
		default:
		}
	}
	return r, sent, err
}

// close ends the session: shutdown and exit when the server is still
// talking, then the whole process group after grace.
func (s *server) close(grace time.Duration) {
	select {
	case <-s.Done():
	default:
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		_, _, _ = s.Call(ctx, "shutdown", nil)
		cancel()
		_ = s.Notify("exit", nil)
	}
	_ = s.stdin.Close()
	select {
	case <-s.exited:
	case <-time.After(grace):
	}
	// The group may hold children (a `go list`, a worker) even after the
	// server exited.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
