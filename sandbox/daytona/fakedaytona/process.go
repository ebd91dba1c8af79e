package fakedaytona

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"
)

// serveToolbox routes /toolbox/{id}/... and /api/toolbox/{id}/toolbox/....
func (s *Server) serveToolbox(w http.ResponseWriter, r *http.Request) {
	var id string
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/toolbox/"); ok {
		id, _, _ = strings.Cut(rest, "/")
	} else {
		id, _, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/toolbox/"), "/")
	}
	sb, state := s.sandboxForToolbox(id)
	if sb == nil {
		// Unknown in the specs, like the answer for a stopped sandbox; the
		// fake answers in the daemon's shape with its own code.
		writeDaemon(w, r, http.StatusNotFound, "SANDBOX_NOT_FOUND", fmt.Sprintf("sandbox %s not found", id))
		return
	}
	if state != "started" {
		// corrections §7: the proxy's answer for a sandbox that is not started.
		writeDaemon(w, r, http.StatusBadGateway, "SANDBOX_NOT_STARTED",
			fmt.Sprintf("sandbox %s is not started (state %s)", id, state))
		return
	}
	p := daemonPath(r.URL.Path)
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case p == "/process/execute" && r.Method == http.MethodPost:
		sb.execute(w, r)
	case parts[0] == "process" && len(parts) >= 2 && parts[1] == "session":
		sb.serveSession(w, r, parts[2:])
	case parts[0] == "files":
		sb.serveFiles(w, r, strings.Join(parts[1:], "/"))
	case (p == "/user-home-dir" || p == "/project-dir") && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"dir": sb.home})
	case p == "/work-dir" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"dir": sb.home})
	case p == "/version" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"version": "v0.118.0"})
	default:
		writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("route %s %s not found", r.Method, p))
	}
}

// parseCommand splits a process/execute command the way the daemon does
// (corrections §4): on spaces only; a quote opens a quoted section that only
// the same quote closes, with no escapes; empty arguments are dropped.
func parseCommand(command string) []string {
	var args []string
	var cur strings.Builder
	var quote rune
	for _, r := range command {
		switch {
		case (r == '"' || r == '\'') && quote == 0:
			quote = r
		case r == quote:
			quote = 0
		case r == ' ' && quote == 0:
			if cur.Len() > 0 {
				args = append(args, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		args = append(args, cur.String())
	}
	return args
}

// resolve maps a toolbox path to a host path inside the sandbox: relative
// paths resolve against the home directory; anything outside the sandbox's
// directory is refused (the fake never touches the host outside it).
func (sb *sandbox) resolve(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(sb.home, p)
	}
	p = filepath.Clean(p)
	if p != sb.dir && !strings.HasPrefix(p, sb.dir+string(filepath.Separator)) {
		return "", false
	}
	return p, true
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// execute serves POST /process/execute (spec §4.1, corrections §4).
func (sb *sandbox) execute(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Command string            `json:"command"`
		Cwd     *string           `json:"cwd"`
		Envs    map[string]string `json:"envs"`
		Timeout *int              `json:"timeout"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Command == "" {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "command is required")
		return
	}
	parts := parseCommand(req.Command)
	if len(parts) == 0 {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "empty command")
		return
	}
	timeout := 360 * time.Second
	if req.Timeout != nil && *req.Timeout > 0 {
		timeout = time.Duration(*req.Timeout) * time.Second
	}
	cmd := exec.Command(parts[0], parts[1:]...)
	cmd.Dir = sb.home
	if req.Cwd != nil && *req.Cwd != "" {
		dir, ok := sb.resolve(*req.Cwd)
		if !ok {
			writeDaemon(w, r, http.StatusForbidden, "FORBIDDEN", "cwd outside the sandbox")
			return
		}
		cmd.Dir = dir
	}
	env := sb.baseEnv()
	for k, v := range req.Envs {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	exitField := "exitCode"
	if sb.srv.opts.LegacyExitCode {
		exitField = "code"
	}
	if err := cmd.Start(); err != nil {
		writeJSON(w, 200, map[string]any{exitField: -1, "result": err.Error()})
		return
	}
	pid := cmd.Process.Pid
	sb.track(pid)
	defer sb.untrack(pid)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		out.mu.Lock()
		result := out.b.String()
		out.mu.Unlock()
		writeJSON(w, 200, map[string]any{exitField: cmd.ProcessState.ExitCode(), "result": result})
	case <-timer.C:
		syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(sb.srv.opts.TerminationGrace):
			syscall.Kill(-pid, syscall.SIGKILL)
			<-done
		}
		writeDaemon(w, r, http.StatusRequestTimeout, "REQUEST_TIMEOUT", fmt.Sprintf(
			"Command execution timed out after %d seconds. The timeout can be increased by adjusting the timeout parameter in the request.",
			int(timeout/time.Second)))
	}
}

func (sb *sandbox) track(pid int) {
	sb.mu.Lock()
	sb.procs[pid] = struct{}{}
	sb.mu.Unlock()
}

func (sb *sandbox) untrack(pid int) {
	sb.mu.Lock()
	delete(sb.procs, pid)
	sb.mu.Unlock()
}

// killAll kills every process the sandbox started, with their descendants
// (whatever process group they moved to), and ends every session: what a
// stop does to a real sandbox.
func (sb *sandbox) killAll() {
	sb.mu.Lock()
	roots := make([]int, 0, len(sb.procs))
	for pid := range sb.procs {
		roots = append(roots, pid)
	}
	sessions := sb.sessions
	sb.sessions = map[string]*session{}
	if sb.goneCh != nil {
		close(sb.goneCh)
		sb.goneCh = nil
	}
	sb.mu.Unlock()
	// Processes whose parent died (a session shell that was deleted) are no
	// longer descendants of anything tracked; find them by their working
	// directory inside the sandbox.
	roots = append(roots, processesUnder(sb.dir)...)
	killTrees(roots)
	for _, ss := range sessions {
		ss.close()
	}
}

// shutdown kills everything and closes the preview listeners.
func (sb *sandbox) shutdown() {
	sb.killAll()
	sb.mu.Lock()
	previews := sb.previews
	sb.previews = map[int]*previewProxy{}
	sb.mu.Unlock()
	for _, p := range previews {
		p.close()
	}
}

// killTrees stops the given processes and all their descendants, then kills
// them and their process groups.
func killTrees(roots []int) {
	if len(roots) == 0 {
		return
	}
	seen := map[int]bool{}
	frontier := roots
	for len(frontier) > 0 {
		for _, pid := range frontier {
			seen[pid] = true
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		children := childrenOf(seen)
		frontier = frontier[:0:0]
		for _, c := range children {
			if !seen[c] {
				frontier = append(frontier, c)
			}
		}
	}
	for pid := range seen {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != syscall.Getpgrp() {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGCONT)
	}
}

// processesUnder lists the pids (other than this process) whose working
// directory is dir or below it.
func processesUnder(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil {
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			out = append(out, pid)
		}
	}
	return out
}

// childrenOf lists the pids whose parent is in parents, from /proc.
func childrenOf(parents map[int]bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name is in parentheses and may contain spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if parents[ppid] {
			out = append(out, pid)
		}
	}
	return out
}

// session is a persistent shell (spec §4.2): every command is written to its
// stdin as `{ cmd; } >out 2>err ; echo "$?" >exit`, so cd, exports and exit
// persist as they do in the daemon.
type session struct {
	id    string
	sb    *sandbox
	dir   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the shell has exited
	stop  chan struct{} // closed when the session is closed
	once  sync.Once

	mu       sync.Mutex
	commands map[string]*sessionCommand
	order    []string
	ended    bool // the shell exited
}

type sessionCommand struct {
	id, command string
	sess        *session

	mu       sync.Mutex
	log      []byte // combined, with stdout/stderr markers, as the follow socket carries it
	stdout   []byte
	stderr   []byte
	output   []byte
	exitCode *int
	finLen   int // len(log) when the command finished
	changed  chan struct{}
}

var (
	stdoutMarker = []byte{1, 1, 1}
	stderrMarker = []byte{2, 2, 2}
)

func (c *sessionCommand) append(stream int, p []byte) {
	c.mu.Lock()
	if stream == 1 {
		c.log = append(append(c.log, stdoutMarker...), p...)
		c.stdout = append(c.stdout, p...)
	} else {
		c.log = append(append(c.log, stderrMarker...), p...)
		c.stderr = append(c.stderr, p...)
	}
	c.output = append(c.output, p...)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *sessionCommand) finish(code int) {
	c.mu.Lock()
	if c.exitCode == nil {
		c.exitCode = &code
		c.finLen = len(c.log)
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
}

func (c *sessionCommand) dto() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := map[string]any{"id": c.id, "command": c.command}
	if c.exitCode != nil {
		d["exitCode"] = *c.exitCode
	}
	return d
}

func shellPath() string {
	if p, err := exec.LookPath("bash"); err == nil {
		return p
	}
	return "/bin/sh"
}

func (sb *sandbox) serveSession(w http.ResponseWriter, r *http.Request, parts []string) {
	switch {
	case len(parts) == 0 && r.Method == http.MethodPost:
		sb.createSession(w, r)
		return
	case len(parts) == 0 && r.Method == http.MethodGet:
		sb.mu.Lock()
		list := []map[string]any{}
		for _, ss := range sb.sessions {
			list = append(list, ss.dto())
		}
		sb.mu.Unlock()
		writeJSON(w, 200, list)
		return
	case len(parts) == 0:
		writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", "route not found")
		return
	}
	sb.mu.Lock()
	ss := sb.sessions[parts[0]]
	sb.mu.Unlock()
	if ss == nil {
		writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", "session not found")
		return
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		writeJSON(w, 200, ss.dto())
	case len(parts) == 1 && r.Method == http.MethodDelete:
		sb.mu.Lock()
		delete(sb.sessions, ss.id)
		sb.mu.Unlock()
		ss.close()
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 2 && parts[1] == "exec" && r.Method == http.MethodPost:
		ss.exec(w, r)
	case len(parts) >= 3 && parts[1] == "command":
		ss.mu.Lock()
		c := ss.commands[parts[2]]
		ss.mu.Unlock()
		if c == nil {
			writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", "command not found")
			return
		}
		switch {
		case len(parts) == 3 && r.Method == http.MethodGet:
			writeJSON(w, 200, c.dto())
		case len(parts) == 4 && parts[3] == "logs" && r.Method == http.MethodGet:
			if r.URL.Query().Get("follow") == "true" || strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				sb.followLogs(w, r, c)
				return
			}
			serveLogs(w, r, c)
		case len(parts) == 4 && parts[3] == "input" && r.Method == http.MethodPost:
			var body struct {
				Data string `json:"data"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				writeDaemon(w, r, http.StatusBadRequest, "INVALID_REQUEST_BODY", "invalid request body")
				return
			}
			c.mu.Lock()
			finished := c.exitCode != nil
			c.mu.Unlock()
			if finished {
				writeDaemon(w, r, http.StatusGone, "COMMAND_ALREADY_COMPLETED", "command has already completed")
				return
			}
			if _, err := io.WriteString(ss.stdin, body.Data); err != nil {
				writeDaemon(w, r, http.StatusGone, "SESSION_ENDED", "session has ended")
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", "route not found")
		}
	default:
		writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", "route not found")
	}
}

func (ss *session) dto() map[string]any {
	ss.mu.Lock()
	ids := append([]string(nil), ss.order...)
	cmds := make([]*sessionCommand, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, ss.commands[id])
	}
	ss.mu.Unlock()
	list := []map[string]any{}
	for _, c := range cmds {
		list = append(list, c.dto())
	}
	return map[string]any{"sessionId": ss.id, "commands": list}
}

func (sb *sandbox) createSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.SessionID == "" {
		writeDaemon(w, r, http.StatusBadRequest, "INVALID_REQUEST_BODY", "invalid request body: sessionId is required")
		return
	}
	if strings.ContainsAny(req.SessionID, "/\\") || req.SessionID == "." || req.SessionID == ".." {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid session id")
		return
	}
	sb.mu.Lock()
	if _, ok := sb.sessions[req.SessionID]; ok {
		sb.mu.Unlock()
		writeDaemon(w, r, http.StatusConflict, "CONFLICT", "session already exists")
		return
	}
	ss := &session{id: req.SessionID, sb: sb, commands: map[string]*sessionCommand{},
		done: make(chan struct{}), stop: make(chan struct{})}
	sb.sessions[req.SessionID] = ss
	sb.mu.Unlock()
	fail := func(err error) {
		sb.mu.Lock()
		delete(sb.sessions, ss.id)
		sb.mu.Unlock()
		writeDaemon(w, r, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", err.Error())
	}
	ss.dir = filepath.Join(sb.daemonDir, "sessions", newToken())
	if err := os.MkdirAll(ss.dir, 0o755); err != nil {
		fail(err)
		return
	}
	cmd := exec.Command(shellPath())
	cmd.Dir = sb.home
	cmd.Env = sb.baseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fail(err)
		return
	}
	if err := cmd.Start(); err != nil {
		fail(err)
		return
	}
	ss.cmd, ss.stdin = cmd, stdin
	sb.track(cmd.Process.Pid)
	go func() {
		cmd.Wait()
		sb.untrack(cmd.Process.Pid)
		ss.mu.Lock()
		ss.ended = true
		ss.mu.Unlock()
		close(ss.done)
	}()
	w.WriteHeader(http.StatusCreated)
}

// close ends the session the way the daemon does: its context is cancelled,
// which kills the shell process (not its children).
func (ss *session) close() {
	ss.once.Do(func() {
		close(ss.stop)
		if ss.cmd != nil && ss.cmd.Process != nil {
			ss.cmd.Process.Kill()
		}
		os.RemoveAll(ss.dir)
	})
}

func (ss *session) exec(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Command           string `json:"command"`
		RunAsync          bool   `json:"runAsync"`
		Async             bool   `json:"async"`
		SuppressInputEcho bool   `json:"suppressInputEcho"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeDaemon(w, r, http.StatusBadRequest, "INVALID_REQUEST_BODY", "invalid request body: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Command) == "" {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "command cannot be empty")
		return
	}
	ss.mu.Lock()
	ended := ss.ended
	ss.mu.Unlock()
	if ended {
		writeDaemon(w, r, http.StatusGone, "SESSION_ENDED", "session has ended")
		return
	}
	c := &sessionCommand{id: newID(), command: req.Command, sess: ss, changed: make(chan struct{})}
	dir := filepath.Join(ss.dir, c.id)
	fds, err := makeFifos(dir)
	if err != nil {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "failed to create log files: "+err.Error())
		return
	}
	ss.mu.Lock()
	ss.commands[c.id] = c
	ss.order = append(ss.order, c.id)
	ss.mu.Unlock()
	go c.pump(fds)
	line := fmt.Sprintf("{ %s; } >%s 2>%s ; echo \"$?\" >%s\n", req.Command,
		filepath.Join(dir, "out"), filepath.Join(dir, "err"), filepath.Join(dir, "exit"))
	if _, err := io.WriteString(ss.stdin, line); err != nil {
		writeDaemon(w, r, http.StatusGone, "SESSION_ENDED", "session has ended")
		return
	}
	if req.RunAsync || req.Async {
		writeJSON(w, http.StatusAccepted, map[string]any{"cmdId": c.id})
		return
	}
	for {
		c.mu.Lock()
		code, ch := c.exitCode, c.changed
		c.mu.Unlock()
		if code != nil {
			c.mu.Lock()
			resp := map[string]any{"cmdId": c.id, "output": string(c.output), "exitCode": *code,
				"stdout": string(c.stdout), "stderr": string(c.stderr)}
			c.mu.Unlock()
			writeJSON(w, 200, resp)
			return
		}
		select {
		case <-ch:
		case <-ss.stop:
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "session cancelled")
			return
		case <-r.Context().Done():
			return
		}
	}
}

// makeFifos creates dir with FIFOs out, err and exit and opens them for
// reading and writing (so they never report EOF and the shell's open never
// blocks), non-blocking.
func makeFifos(dir string) ([3]int, error) {
	var fds [3]int
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fds, err
	}
	for i, name := range []string{"out", "err", "exit"} {
		p := filepath.Join(dir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return fds, err
		}
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, f := range fds[:i] {
				unix.Close(f)
			}
			return fds, err
		}
		fds[i] = fd
	}
	return fds, nil
}

// pump moves a command's output into its log until the sandbox goes away.
// The exit code arrives on the exit FIFO only after the command's own output
// was written, so a final drain after reading it collects all of it.
func (c *sessionCommand) pump(fds [3]int) {
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	gone := c.sess.sb.gone()
	buf := make([]byte, 32*1024)
	drain := func(i int) {
		for {
			n, err := unix.Read(fds[i], buf)
			if n > 0 {
				c.append(i+1, append([]byte(nil), buf[:n]...))
			}
			if err != nil || n <= 0 {
				return
			}
		}
	}
	var exitBuf []byte
	finished := false
	for {
		pfds := []unix.PollFd{{Fd: int32(fds[0]), Events: unix.POLLIN}, {Fd: int32(fds[1]), Events: unix.POLLIN}}
		if !finished {
			pfds = append(pfds, unix.PollFd{Fd: int32(fds[2]), Events: unix.POLLIN})
		}
		n, err := unix.Poll(pfds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n > 0 {
			drain(0)
			drain(1)
			if !finished && pfds[2].Revents&unix.POLLIN != 0 {
				m, _ := unix.Read(fds[2], buf)
				if m > 0 {
					exitBuf = append(exitBuf, buf[:m]...)
				}
				if i := bytes.IndexByte(exitBuf, '\n'); i >= 0 {
					code, err := strconv.Atoi(strings.TrimSpace(string(exitBuf[:i])))
					if err != nil {
						code = -1
					}
					drain(0)
					drain(1)
					c.finish(code)
					finished = true
				}
			}
		}
		select {
		case <-c.sess.done:
			if !finished {
				// The shell itself exited (the command ran `exit N`):
				// corrections §5, the command reports N.
				drain(0)
				drain(1)
				code := -1
				if st := c.sess.cmd.ProcessState; st != nil {
					code = st.ExitCode()
				}
				c.finish(code)
				finished = true
			}
		default:
		}
		select {
		case <-gone:
			return
		default:
		}
	}
}

// gone is closed when the sandbox is next stopped or deleted.
func (sb *sandbox) gone() <-chan struct{} {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.goneCh == nil {
		sb.goneCh = make(chan struct{})
	}
	return sb.goneCh
}

// serveLogs answers a non-follow logs request (spec §4.2, corrections §6):
// JSON {output, stdout, stderr} for X-Daytona-SDK-Version >= 0.167.0, plain
// combined text otherwise.
func serveLogs(w http.ResponseWriter, r *http.Request, c *sessionCommand) {
	c.mu.Lock()
	out, so, se := string(c.output), string(c.stdout), string(c.stderr)
	c.mu.Unlock()
	if versionAtLeast(r.Header.Get("X-Daytona-SDK-Version"), 0, 167, 0) {
		writeJSON(w, 200, map[string]any{"output": out, "stdout": so, "stderr": se})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(200)
	io.WriteString(w, out)
}

func versionAtLeast(v string, major, minor, patch int) bool {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if v == "" {
		return false
	}
	f := strings.SplitN(v, ".", 3)
	var n [3]int
	for i := range f {
		s := f[i]
		if j := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			s = s[:j]
		}
		n[i], _ = strconv.Atoi(s)
	}
	want := [3]int{major, minor, patch}
	for i := range n {
		if n[i] != want[i] {
			return n[i] > want[i]
		}
	}
	return true
}

// followLogs streams a command's log over a WebSocket (spec §4.2): frames
// carry the log bytes with the 0x01 0x01 0x01 / 0x02 0x02 0x02 stream
// markers, split at LogFrameSize (so markers may span frames); the socket
// closes normally when the command has finished and everything up to then was
// sent.
func (sb *sandbox) followLogs(w http.ResponseWriter, r *http.Request, c *sessionCommand) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := conn.CloseRead(r.Context())
	typ := websocket.MessageBinary
	if sb.srv.opts.TextLogFrames {
		typ = websocket.MessageText
	}
	frame := sb.srv.opts.LogFrameSize
	off := 0
	for {
		c.mu.Lock()
		end := len(c.log)
		fin := c.exitCode != nil
		if fin {
			end = c.finLen
		}
		data := c.log[off:end]
		ch := c.changed
		c.mu.Unlock()
		for len(data) > 0 {
			n := min(frame, len(data))
			if drop := sb.srv.opts.FollowDropAfter; drop > 0 {
				if off >= drop {
					conn.Close(websocket.StatusGoingAway, "connection dropped")
					return
				}
				n = min(n, drop-off)
			}
			if err := conn.Write(ctx, typ, data[:n]); err != nil {
				return
			}
			data = data[n:]
			off += n
		}
		if fin {
			conn.Close(websocket.StatusNormalClosure, "")
			return
		}
		select {
		case <-ch:
		case <-c.sess.stop:
			conn.Close(websocket.StatusNormalClosure, "")
			return
		case <-ctx.Done():
			return
		}
	}
}
