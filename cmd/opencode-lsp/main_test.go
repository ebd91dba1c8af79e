package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opencode-lsp-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "opencode-lsp")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// wire is a minimal LSP client over a process's stdio or a socket.
type wire struct {
	t   *testing.T
	w   io.Writer
	r   *bufio.Reader
	mu  sync.Mutex
	seq int
}

func (c *wire) send(msg map[string]any) {
	c.t.Helper()
	msg["jsonrpc"] = "2.0"
	b, _ := json.Marshal(msg)
	if _, err := fmt.Fprintf(c.w, "Content-Length: %d\r\n\r\n%s", len(b), b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message (any kind).
func (c *wire) read() (map[string]json.RawMessage, error) {
	length := -1
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	return m, json.Unmarshal(body, &m)
}

// call sends a request and returns its response, answering server requests
// with null on the way.
func (c *wire) call(method string, params any) map[string]json.RawMessage {
	c.t.Helper()
	c.seq++
	id := c.seq
	c.send(map[string]any{"id": id, "method": method, "params": params})
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("%s: reading the response: %v", method, err)
		}
		if _, isReq := m["method"]; isReq {
			if m["id"] != nil {
				c.send(map[string]any{"id": json.RawMessage(m["id"]), "result": nil})
			}
			continue
		}
		if string(m["id"]) == strconv.Itoa(id) {
			return m
		}
	}
}

func (c *wire) initialize(root string) {
	c.t.Helper()
	resp := c.call("initialize", map[string]any{"processId": os.Getpid(), "rootUri": "file://" + root, "capabilities": map[string]any{}})
	if resp["result"] == nil {
		c.t.Fatalf("initialize: %s", resp["error"])
	}
	c.send(map[string]any{"method": "initialized", "params": map[string]any{}})
}

type daemon struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *bytes.Buffer
	done   chan struct{}
}

func startDaemon(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+t.TempDir())
	stdin, _ := cmd.StdinPipe()
	// Our own pipe (not StdoutPipe): Wait must not close it before we have
	// read everything the daemon wrote.
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdoutW
	d := &daemon{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdoutR), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &syncWriter{b: d.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdoutW.Close()
	t.Cleanup(func() { stdoutR.Close() })
	go func() { _ = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
	})
	return d
}

func (d *daemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not exit; stderr:\n%s", d.stderr)
		return -1
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shutdown bool
		want     int
	}{{"shutdown then exit", true, 0}, {"exit without shutdown", false, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, nil)
			c := &wire{t: t, w: d.stdin, r: d.stdout}
			c.initialize(t.TempDir())
			if tc.shutdown {
				c.call("shutdown", nil)
			}
			c.send(map[string]any{"method": "exit"})
			if code := d.wait(t); code != tc.want {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.want, d.stderr)
			}
		})
	}
}

// Nothing but protocol on stdout, logs on stderr; --rpc-trace logs every
// message with secrets redacted.
func TestStdoutIsProtocolOnlyAndTraceIsRedacted(t *testing.T) {
	d := startDaemon(t, []string{"OPENROUTER_API_KEY=sk-or-v1-sentinel0123456789"}, "--rpc-trace", "--log-level", "debug")
	c := &wire{t: t, w: d.stdin, r: d.stdout}
	resp := c.call("initialize", map[string]any{"processId": nil, "capabilities": map[string]any{},
		"initializationOptions": map[string]any{"openrouter": map[string]any{"apiKey": "sk-or-v1-settingsecret0123456789"}}})
	if resp["result"] == nil {
		t.Fatalf("initialize: %v", resp)
	}
	c.call("shutdown", nil)
	c.send(map[string]any{"method": "exit"})
	d.stdin.Close()
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Everything left on stdout must be framed messages.
	for {
		if _, err := c.read(); err != nil {
			if err != io.EOF {
				t.Fatalf("non-protocol bytes on stdout: %v", err)
			}
			break
		}
	}
	log := d.stderr.String()
	if !strings.Contains(log, "RPC <-") || !strings.Contains(log, "RPC ->") {
		t.Fatalf("no trace in the log:\n%s", log)
	}
	if strings.Contains(log, "sentinel") || strings.Contains(log, "settingsecret") {
		t.Fatalf("a key reached the log:\n%s", log)
	}
}

// The editor dies: stdin closes while a command runs. The daemon kills the
// command and exits.
func TestStdinEOFCleansUpAndExits(t *testing.T) {
	d := startDaemon(t, nil)
	c := &wire{t: t, w: d.stdin, r: d.stdout}
	root := t.TempDir()
	c.initialize(root)
	marker := "opencode-lsp-eof-" + strconv.Itoa(os.Getpid())
	c.send(map[string]any{"id": 99, "method": "workspace/executeCommand", "params": map[string]any{
		"command": "opencode.run", "arguments": []any{map[string]any{"command": "echo started; exec sleep 600 # " + marker}}}})
	// Wait until the command runs.
	deadline := time.Now().Add(30 * time.Second)
	for !processRunning(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("the command never started; stderr:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stdin.Close()
	if code := d.wait(t); code != 1 {
		t.Fatalf("exit code %d after stdin EOF, want 1", code)
	}
	if processRunning(marker) {
		t.Fatal("the command outlived the daemon")
	}
}

// The editor's process (processId) disappears without closing our stdin.
func TestEditorProcessGoneExits(t *testing.T) {
	editor := exec.Command("sleep", "60")
	if err := editor.Start(); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, nil)
	c := &wire{t: t, w: d.stdin, r: d.stdout}
	resp := c.call("initialize", map[string]any{"processId": editor.Process.Pid, "capabilities": map[string]any{}})
	if resp["result"] == nil {
		t.Fatalf("initialize: %v", resp)
	}
	_ = editor.Process.Signal(syscall.SIGKILL)
	_ = editor.Wait()
	if code := d.wait(t); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

func processRunning(marker string) bool {
	out, _ := exec.Command("pgrep", "-f", marker).Output()
	return len(bytes.TrimSpace(out)) > 0
}

// --listen serves several editors at once, each its own session.
func TestListenServesSeveralEditors(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "lsp.sock")
			} else {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				addr = l.Addr().String()
				l.Close()
			}
			d := startDaemon(t, nil, "--listen", network+":"+addr)
			var conns []net.Conn
			deadline := time.Now().Add(20 * time.Second)
			for len(conns) < 2 {
				c, err := net.Dial(network, addr)
				if err != nil {
					if time.Now().After(deadline) {
						t.Fatalf("dial: %v; stderr:\n%s", err, d.stderr)
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				conns = append(conns, c)
			}
			// Both editors work on the same folder at the same time.
			root := t.TempDir()
			var wires []*wire
			for _, conn := range conns {
				c := &wire{t: t, w: conn, r: bufio.NewReader(conn)}
				c.initialize(root)
				wires = append(wires, c)
			}
			for i, c := range wires {
				resp := c.call("workspace/executeCommand", map[string]any{"command": "opencode.run", "arguments": []any{map[string]any{"command": "echo ok"}}})
				if resp["result"] == nil {
					t.Fatalf("session %d: run: %s", i, resp["error"])
				}
			}
			for i, c := range wires {
				conn := conns[i]
				c.call("shutdown", nil)
				c.send(map[string]any{"method": "exit"})
				conn.Close()
			}
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			if code := d.wait(t); code != 0 {
				t.Fatalf("listener exit code %d after SIGTERM; stderr:\n%s", code, d.stderr)
			}
		})
	}
}

func TestVersionAndUsage(t *testing.T) {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "opencode-lsp ") {
		t.Fatalf("--version: %q %v", out, err)
	}
	cmd := exec.Command(binary, "--log-level", "loud")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("bad --log-level: %v", err)
	}
}

// `opencode-lsp run` is the README's main job: the example project's
// problems print as file:line:col lines and the exit code is the command's.
func TestRunCLIOnTheExampleProject(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not installed")
	}
	cache := t.TempDir() // one sandbox cache for both runs: one cold build
	cmd := exec.Command(binary, "run", "../../examples/hello-go")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d, want go vet's 1; stderr:\n%s", code, stderr.String())
	}
	want := "main.go:13:14: warning: fmt.Printf format %d has arg name of wrong type string\n"
	if stdout.String() != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", stdout.String(), want, stderr.String())
	}
	// The same run with a given command and --json.
	cmd = exec.Command(binary, "run", "--json", "../../examples/hello-go", "--", "go", "test", "./...")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
	out, _ := cmd.Output()
	var res struct {
		Result struct {
			Command  string `json:"command"`
			ExitCode int    `json:"exitCode"`
		} `json:"result"`
		Diagnostics map[string][]json.RawMessage `json:"diagnostics"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Result.Command != "go test ./..." || res.Result.ExitCode != 1 || len(res.Diagnostics) == 0 {
		t.Fatalf("--json: %s (%v)", out, err)
	}
}

// --listen serves only this machine (loopback) or this user (a 0600 unix
// socket): every client may run commands.
func TestListenIsLocalOnly(t *testing.T) {
	out, err := exec.Command(binary, "--listen", "tcp:0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only a loopback address") {
		t.Fatalf("non-loopback listen: %v %s", err, out)
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	d := startDaemon(t, nil, "--listen", "unix:"+sock)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(sock); err == nil {
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("socket mode %v, want 0600", st.Mode().Perm())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket; stderr:\n%s", d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(t)
}
