package daytona

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Exec defaults (sandbox.Cmd).
const (
	defaultTimeout     = 10 * time.Minute
	defaultOutputLimit = 16 << 20
)

// Timings of Exec.
const (
	// killDrain is how long the output of a killed command is still read
	// before Exec gives up waiting for its end.
	killDrain = 15 * time.Second
	// followCheck is how often a running command's status is read while its
	// output is followed, in case a daemon keeps the socket open after the
	// command ended.
	followCheck = 5 * time.Second
)

// fixedEnv is the minimal environment of every command, on top of PATH,
// HOME, USER and LOGNAME taken from the sandbox.
var fixedEnv = []string{
	"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=dumb", "NO_COLOR=1", "PAGER=cat", "GIT_PAGER=cat",
	"GIT_TERMINAL_PROMPT=0", "PYTHONUNBUFFERED=1", "npm_config_update_notifier=false", "npm_config_fund=false",
}

// sessionCommand is the line run in the command's session. The session's
// shell sees `setsid /bin/sh -c <wrapper>`: a child process, so an `exit` in
// the command cannot end the session shell (corrections §5), and the leader
// of a new process group whose id it writes to <run>.pid for the kill. The
// wrapper refuses to start when <run>.cancel exists (a cancel that came
// before the start), enters the directory, and runs the command under
// `env -i` with the minimal environment, Spec.Env (sourced from the env file)
// and Cmd.Env.
func (s *Sandbox) sessionCommand(c sandbox.Cmd, dir, run string) string {
	var inner strings.Builder
	if s.envFile != "" {
		fmt.Fprintf(&inner, "set -a; . %s; set +a\n", shq(s.envFile))
	}
	names := make([]string, 0, len(c.Env))
	for k := range c.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&inner, "export %s=%s\n", k, shq(c.Env[k]))
	}
	if c.Shell != "" {
		fmt.Fprintf(&inner, "exec /bin/sh -c %s\n", shq(c.Shell))
	} else {
		inner.WriteString("exec")
		for _, a := range c.Args {
			inner.WriteString(" ")
			inner.WriteString(shq(a))
		}
		inner.WriteString("\n")
	}
	var w strings.Builder
	fmt.Fprintf(&w, "echo $$ >%s\n", shq(run+".pid"))
	fmt.Fprintf(&w, "if [ -e %s ]; then exit 137; fi\n", shq(run+".cancel"))
	fmt.Fprintf(&w, "cd %s || exit 254\n", shq(dir))
	fmt.Fprintf(&w, "env -i PATH=\"$PATH\" HOME=\"${HOME:-%s}\" USER=\"$USER\" LOGNAME=\"$USER\" %s /bin/sh -c %s\n",
		s.home, strings.Join(fixedEnv, " "), shq(inner.String()))
	fmt.Fprintf(&w, "r=$?\nrm -f %s\nexit $r\n", shq(run+".pid"))
	return "$(command -v setsid 2>/dev/null) /bin/sh -c " + shq(w.String()) + " </dev/null"
}

// killScript kills the process group recorded in <run>.pid and every
// descendant of its leader (including those that left the group), after
// creating <run>.cancel so that a command that has not started yet never
// will.
func killScript(run string) string {
	return fmt.Sprintf(`touch %s
p=$(cat %s 2>/dev/null)
[ -n "$p" ] || exit 0
kill -s STOP -- -"$p" 2>/dev/null
walk() {
	for c in $(cat /proc/$1/task/*/children 2>/dev/null); do
		kill -s STOP "$c" 2>/dev/null
		walk "$c"
	done
	kill -s KILL "$1" 2>/dev/null
}
walk "$p"
kill -s KILL -- -"$p" 2>/dev/null
kill -s CONT -- -"$p" 2>/dev/null
exit 0
`, shq(run+".cancel"), shq(run+".pid"))
}

// Exec runs one command in the working copy (see [sandbox.Sandbox.Exec] and
// the package doc). The timeout counts from the moment the command was
// started in the sandbox. When the timeout expires, ctx is cancelled or the
// sandbox is closed, the command's process tree is killed and the output it
// printed until then is still delivered; ExitStatus then has Code -1 and
// Signal "killed".
func (s *Sandbox) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.ExitStatus, error) {
	const op = "run command"
	start := time.Now()
	var st sandbox.ExitStatus
	fail := func(err error) (sandbox.ExitStatus, error) {
		st.Duration = time.Since(start)
		return st, s.opErr(op, err)
	}
	if err := s.enter(); err != nil {
		return fail(err)
	}
	defer s.running.Done()
	switch {
	case len(c.Args) == 0 && c.Shell == "":
		return fail(errors.New("empty command: set Args or Shell"))
	case len(c.Args) > 0 && c.Shell != "":
		return fail(errors.New("both Args and Shell are set"))
	}
	rel, err := relPath(c.Dir)
	if err != nil {
		return fail(fmt.Errorf("Dir: %w", err))
	}
	for k := range c.Env {
		if !validEnvName(k) {
			return fail(fmt.Errorf("Env: %q is not a valid variable name", k))
		}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	limit := c.OutputLimit
	if limit <= 0 {
		limit = defaultOutputLimit
	}
	dir := s.root
	if rel != "." {
		dir += "/" + rel
	}

	eid := randHex(8)
	run := s.state + "/run/" + eid

	// Check Dir while a session is taken.
	var dirCheck string
	var dirErr error
	var wg sync.WaitGroup
	if rel != "." {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirCheck, dirErr = s.script(ctx, op, s.checkScript(rel, true), time.Minute)
		}()
	}
	ss, serr := s.takeSession(ctx)
	wg.Wait()
	reusable := false
	if serr == nil {
		defer func() { s.releaseSession(ss, reusable) }()
	}
	if dirErr == nil && rel != "." {
		switch lastLines(dirCheck, 1) {
		case checkOK:
		case checkEscape:
			dirErr = fmt.Errorf("Dir %q: %w", c.Dir, sandbox.ErrPathEscape)
		case checkNotDir:
			dirErr = fmt.Errorf("Dir %q: %w", c.Dir, errNotDir)
		default:
			dirErr = fmt.Errorf("Dir %q: %w", c.Dir, sandbox.ErrNotFound)
		}
	}
	if dirErr != nil {
		reusable = true
		return fail(dirErr)
	}
	if serr != nil {
		return fail(s.canceled(ctx, serr, &st))
	}
	line := s.sessionCommand(c, dir, run)
	cmdID, err := s.tb.execAsync(ctx, ss.id, line)
	var e *Error
	if err != nil && ss.uses > 1 && ctx.Err() == nil && errors.As(err, &e) &&
		(e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone) {
		// A pooled session that died meanwhile: take a new one.
		s.releaseSession(ss, false)
		if ss, err = s.newSession(ctx); err == nil {
			cmdID, err = s.tb.execAsync(ctx, ss.id, line)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// The command may have been started: make sure it dies.
			s.kill(ctx, run)
		}
		return fail(s.canceled(ctx, err, &st))
	}
	sid := ss.id

	var lastData atomic.Int64 // unix ns of the last output
	lastData.Store(time.Now().UnixNano())
	ht := sandbox.NewHeadTail(limit, c.Stdout, c.Stderr)
	var ports *portScanner
	if c.OnListen != nil {
		ports = newPortScanner(c.OnListen)
	}
	stdout, stderr := ht.Stdout(), ht.Stderr()
	var sent [3]int // bytes delivered per stream
	dm := newDemux(func(stream int, p []byte) {
		lastData.Store(time.Now().UnixNano())
		sent[stream] += len(p)
		if stream == streamStderr {
			stderr.Write(p)
		} else {
			stdout.Write(p)
		}
		if ports != nil {
			ports.write(stream, p)
		}
	})

	// The watcher kills the command on timeout, cancel or close, then gives
	// the output some time to drain before the follow is abandoned.
	type outcome int
	const (
		finished outcome = iota
		timedOut
		canceled
		closed
	)
	// opCtx bounds the calls made after ctx may have ended (kill, status);
	// followCtx is abandoned when a killed command's output does not end.
	opCtx := context.WithoutCancel(ctx)
	followCtx, stopFollow := context.WithCancel(opCtx)
	defer stopFollow()
	done := make(chan struct{})
	var (
		mu      sync.Mutex
		result  = finished
		killErr error
	)
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		var keep <-chan time.Time
		if s.autoStop > 0 {
			t := time.NewTicker(max(time.Duration(s.autoStop)*time.Minute/3, 30*time.Second))
			defer t.Stop()
			keep = t.C
		}
		var why outcome
	wait:
		for {
			select {
			case <-done:
				return
			case <-keep:
				kctx, cancel := context.WithTimeout(opCtx, 30*time.Second)
				s.c.KeepAlive(kctx, s.id)
				cancel()
			case <-timer.C:
				why = timedOut
				break wait
			case <-ctx.Done():
				why = canceled
				break wait
			case <-s.closed:
				why = closed
				break wait
			}
		}
		mu.Lock()
		result = why
		mu.Unlock()
		if why != closed {
			err := s.kill(opCtx, run)
			mu.Lock()
			killErr = err
			mu.Unlock()
		}
		select {
		case <-done:
		case <-time.After(killDrain):
			stopFollow()
		}
	}()
	// A daemon that keeps the follow socket open after the command ended is
	// noticed by reading the command's status now and then: once it has an
	// exit code and no output came for a while, the follow is abandoned.
	var abandoned atomic.Bool
	go func() {
		t := time.NewTicker(followCheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastData.Load())) < followCheck {
					continue
				}
				code, err := s.tb.commandExit(opCtx, sid, cmdID)
				if err == nil && code != nil && time.Since(time.Unix(0, lastData.Load())) >= followCheck {
					abandoned.Store(true)
					stopFollow()
					return
				}
			}
		}
	}()

	ferr := s.tb.followLogs(followCtx, sid, cmdID, dm)
	dm.flush()
	var known *int // the exit code, once read
	if abandoned.Load() {
		ferr = nil
	} else if followCtx.Err() == nil && !errors.Is(ferr, sandbox.ErrClosed) && !isAuthError(ferr) {
		// No follow socket, or one that ended before the command did (a
		// proxy that drops long connections): poll for the rest.
		code, err := s.tb.commandExit(followCtx, sid, cmdID)
		known = code
		if err == nil && code == nil || ferr != nil {
			s.c.log.Debug("daytona: following output over WebSocket ended early, polling", "sandbox", s.id, "err", ferr)
			ferr = s.pollLogs(followCtx, sid, cmdID, dm.emit, &sent)
		}
	}
	var code int
	var cerr error
	if known != nil && ferr == nil {
		code = *known
	} else {
		wctx, cancelWait := context.WithTimeout(opCtx, killDrain+30*time.Second)
		code, cerr = s.waitExit(wctx, sid, cmdID)
		cancelWait()
	}
	close(done)
	<-watcherDone
	st.DroppedBytes = ht.Close()
	st.Duration = time.Since(start)
	mu.Lock()
	why, kerr := result, killErr
	mu.Unlock()
	switch why {
	case timedOut:
		reusable = cerr == nil && kerr == nil
		st.TimedOut, st.Code, st.Signal = true, -1, "killed"
		if kerr != nil {
			return st, s.opErr(op, fmt.Errorf("kill the command after its timeout: %w", kerr))
		}
		return st, nil
	case canceled:
		reusable = cerr == nil && kerr == nil
		st.Canceled, st.Code, st.Signal = true, -1, "killed"
		if kerr != nil {
			return st, s.opErr(op, fmt.Errorf("%w (and killing it failed: %v)", ctx.Err(), kerr))
		}
		return st, s.opErr(op, ctx.Err())
	case closed:
		st.Canceled, st.Code, st.Signal = true, -1, "killed"
		return st, s.opErr(op, sandbox.ErrClosed)
	}
	if ferr != nil && cerr != nil {
		return fail(ferr)
	}
	if cerr != nil {
		return fail(cerr)
	}
	reusable = ferr == nil
	st.Code = code
	return st, nil
}

// canceled turns err into the context's error when ctx ended, marking st.
func (s *Sandbox) canceled(ctx context.Context, err error, st *sandbox.ExitStatus) error {
	if ctx.Err() != nil {
		st.Canceled, st.Code, st.Signal = true, -1, "killed"
		return ctx.Err()
	}
	return err
}

// kill runs killScript for run with process/execute.
func (s *Sandbox) kill(ctx context.Context, run string) error {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := s.script(kctx, "kill command", killScript(run), 30*time.Second)
	return err
}

// waitExit reads the session command's exit code, polling briefly: the
// status file may appear a moment after the output ends.
func (s *Sandbox) waitExit(ctx context.Context, sid, cid string) (int, error) {
	delay := 10 * time.Millisecond
	deadline := time.Now().Add(killDrain)
	for {
		code, err := s.tb.commandExit(ctx, sid, cid)
		if err != nil {
			return 0, err
		}
		if code != nil {
			return *code, nil
		}
		if time.Now().After(deadline) {
			return 0, &Error{Op: "read command status in sandbox", Sandbox: s.id, Message: "the command's output ended but it has no exit code"}
		}
		if err := s.c.sleep(ctx, delay); err != nil {
			return 0, err
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// pollLogs is the fallback when the follow-logs WebSocket cannot be opened
// or ends before the command: it polls the command's status and logs (spec
// §4.2) and delivers what is new on each stream beyond sent.
func (s *Sandbox) pollLogs(ctx context.Context, sid, cid string, emit func(int, []byte), sent *[3]int) error {
	delay := 100 * time.Millisecond
	for {
		code, err := s.tb.commandExit(ctx, sid, cid)
		if err != nil {
			return err
		}
		out, errOut, err := s.tb.commandLogs(ctx, sid, cid)
		if err != nil {
			return err
		}
		if len(out) > sent[streamStdout] {
			emit(streamStdout, out[sent[streamStdout]:])
		}
		if len(errOut) > sent[streamStderr] {
			emit(streamStderr, errOut[sent[streamStderr]:])
		}
		if code != nil {
			return nil
		}
		if err := s.c.sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, time.Second)
	}
}

func isAuthError(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// Session pool: a session whose last command ended is idle (every command
// runs in a child process of the session's shell, so no shell state is left
// behind) and is reused, which saves two requests per Exec.
const (
	maxIdleSessions = 4
	maxSessionUses  = 64
)

type session struct {
	id   string
	uses int
}

func (s *Sandbox) takeSession(ctx context.Context) (*session, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		ss := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		ss.uses++
		return ss, nil
	}
	s.mu.Unlock()
	return s.newSession(ctx)
}

func (s *Sandbox) newSession(ctx context.Context) (*session, error) {
	ss := &session{id: "opencode-lsp-" + randHex(8), uses: 1}
	if err := s.tb.createSession(ctx, ss.id); err != nil {
		return nil, err
	}
	return ss, nil
}

// releaseSession puts ss back in the pool, or deletes it in the background
// when it is not reusable, used up, or the pool is full.
func (s *Sandbox) releaseSession(ss *session, reusable bool) {
	if ss == nil {
		return
	}
	s.mu.Lock()
	if reusable && ss.uses < maxSessionUses && len(s.idle) < maxIdleSessions && !s.isClosed() {
		s.idle = append(s.idle, ss)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if s.isClosed() {
		return // deleting the sandbox ends its sessions
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.tb.deleteSession(ctx, ss.id)
	}()
}
