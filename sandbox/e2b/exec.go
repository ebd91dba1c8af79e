package e2b

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	pb "github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process"
)

// groupWrapper runs "$@" as the leader of a process group of its own, so
// that the pid envd reports is the group id: when the shell is not a group
// leader already (envd does not give its children one) it execs setsid(1),
// which then calls setsid(2) in place without forking.
const groupWrapper = `read -r _ _ _ _ g _ < /proc/$$/stat 2>/dev/null; if [ "$g" = "$$" ]; then exec "$@"; fi; exec setsid "$@"`

// killGroup kills the process group "$1" and the process "$1".
const killGroup = `kill -9 -"$1" 2>/dev/null; kill -9 "$1" 2>/dev/null; exit 0`

// listenScript prints, one per line in hex, the TCP ports in LISTEN state
// whose sockets belong to a process of group "$1" (from /proc).
const listenScript = `inodes=$(for d in /proc/[0-9]*; do read -r _ _ _ _ g _ < "$d/stat" 2>/dev/null && [ "$g" = "$1" ] && ls -l "$d/fd" 2>/dev/null; done | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' | tr '\n' ' ')
[ -n "$inodes" ] || exit 0
awk -v ino=" $inodes " '$4 == "0A" && index(ino, " " $10 " ") { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; exit 0`

// listenPoll is how often OnListen looks for new listening ports (each look
// is one helper process in the sandbox).
const listenPoll = time.Second

// streamGrace is added to a command's timeout for the stream's
// Connect-Timeout-Ms, so this client's own timer (which kills the whole
// group) fires first and envd's deadline is only a backstop.
const streamGrace = 30 * time.Second

// killWait bounds how long Exec waits for the stream to end after killing
// the command.
const killWait = 20 * time.Second

// keepaliveSeconds is sent as Keepalive-Ping-Interval on streams (the SDK's
// value, spec §3.3), so that idle commands keep their connection alive.
const keepaliveSeconds = "50"

// Exec runs c in the working copy; see [sandbox.Sandbox.Exec].
func (s *Sandbox) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.ExitStatus, error) {
	started := time.Now()
	const op = "exec"
	if err := s.checkOpen(op); err != nil {
		return sandbox.ExitStatus{}, err
	}
	argv, err := commandLine(c)
	if err != nil {
		return sandbox.ExitStatus{}, fmt.Errorf("e2b: %s in sandbox %s: %w", op, s.id, err)
	}
	cwd, err := s.remotePath(op, c.Dir)
	if err != nil {
		return sandbox.ExitStatus{}, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultCmdTimeout
	}
	limit := c.OutputLimit
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	if err := s.touch(ctx, timeout+time.Minute); err != nil {
		return sandbox.ExitStatus{}, s.errorf(op, err)
	}
	out := sandbox.NewHeadTail(limit, c.Stdout, c.Stderr)

	// The stream is detached from ctx: cancelling it would not stop the
	// command (corrections §2), and the end event is still wanted after
	// the kill.
	sctx, cancelStream := context.WithTimeout(context.WithoutCancel(ctx), timeout+streamGrace)
	defer cancelStream()
	req := connect.NewRequest(&pb.StartRequest{
		Process: &pb.ProcessConfig{
			Cmd:  "/bin/sh",
			Args: append([]string{"-c", groupWrapper, "opencode-lsp"}, argv...),
			Envs: c.Env,
			Cwd:  &cwd,
		},
		Stdin: proto.Bool(false),
	})
	req.Header().Set("Keepalive-Ping-Interval", keepaliveSeconds)
	stream, err := s.envd.process.Start(sctx, req)
	if err != nil {
		return sandbox.ExitStatus{}, s.errorf(op, err)
	}
	type result struct {
		end *pb.ProcessEvent_EndEvent
		err error
	}
	pidc := make(chan uint32, 1)
	done := make(chan result, 1)
	go func() {
		var r result
		first := true
		for stream.Receive() {
			switch ev := stream.Msg().GetEvent().GetEvent().(type) {
			case *pb.ProcessEvent_Start:
				if first {
					pidc <- ev.Start.GetPid()
				}
			case *pb.ProcessEvent_Data:
				switch o := ev.Data.GetOutput().(type) {
				case *pb.ProcessEvent_DataEvent_Stdout:
					out.Stdout().Write(o.Stdout)
				case *pb.ProcessEvent_DataEvent_Stderr:
					out.Stderr().Write(o.Stderr)
				case *pb.ProcessEvent_DataEvent_Pty:
					out.Stdout().Write(o.Pty)
				}
			case *pb.ProcessEvent_End:
				r.end = ev.End
			}
			if first && stream.Msg().GetEvent().GetStart() == nil {
				r.err = errors.New("the process stream did not begin with a start event")
				break
			}
			first = false
		}
		if r.err == nil {
			r.err = stream.Err()
		}
		stream.Close()
		done <- r
	}()

	var listeners sync.WaitGroup
	stopListen := func() {}
	defer func() { stopListen(); listeners.Wait() }()
	var (
		pid      uint32
		timedOut bool
		canceled bool
		r        result
		timer    = time.NewTimer(timeout)
		ctxDone  = ctx.Done()
	)
	defer timer.Stop()
wait:
	for {
		select {
		case pid = <-pidc:
			pidc = nil
			if c.OnListen != nil {
				lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
				stopListen = cancel
				listeners.Add(1)
				go func(pgid uint32) {
					defer listeners.Done()
					s.pollListen(lctx, pgid, c.OnListen)
				}(pid)
			}
		case r = <-done:
			break wait
		case <-timer.C:
			timedOut = true
		case <-ctxDone:
			canceled = true
		}
		if timedOut || canceled {
			if pid == 0 {
				// No start event yet: wait for it (or for the stream to
				// end) before killing.
				select {
				case pid = <-pidc:
				case r = <-done:
					break wait
				}
			}
			s.kill(pid)
			select {
			case r = <-done:
			case <-time.After(killWait):
				cancelStream()
				r = <-done
			}
			break wait
		}
	}
	stopListen()
	listeners.Wait()
	st := sandbox.ExitStatus{Code: -1, TimedOut: timedOut, Canceled: canceled}
	if r.end != nil {
		st.Code = int(r.end.GetExitCode())
		if sig, ok := strings.CutPrefix(r.end.GetStatus(), "signal: "); ok {
			st.Code, st.Signal = -1, sig
		}
	} else if timedOut || canceled {
		st.Signal = "killed"
	}
	st.DroppedBytes = out.Close()
	st.Duration = time.Since(started)
	switch {
	case canceled:
		return st, fmt.Errorf("e2b: %s in sandbox %s: %w", op, s.id, context.Cause(ctx))
	case timedOut:
		return st, nil
	case r.end == nil && connect.CodeOf(r.err) == connect.CodeDeadlineExceeded:
		st.TimedOut = true
		return st, nil
	case r.end == nil:
		if r.err == nil {
			r.err = errors.New("the process stream ended without an end event")
		}
		return st, s.errorf(op, r.err)
	}
	return st, nil
}

// kill ends the process group pid leads, then the pid itself through
// SendSignal (which envd delivers to the pid only).
func (s *Sandbox) kill(pid uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	p := strconv.FormatUint(uint64(pid), 10)
	s.run(ctx, "", []string{"/bin/sh", "-c", killGroup, "kill", p}, 1<<10)
	_, err := s.envd.process.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}},
		Signal:  pb.Signal_SIGNAL_SIGKILL,
	}))
	_ = err // not_found: the group kill got it first
}

// pollListen calls cb once for each TCP port a process of the command's
// group listens on, until ctx ends.
func (s *Sandbox) pollListen(ctx context.Context, pgid uint32, cb func(int)) {
	seen := map[int]bool{}
	t := time.NewTicker(listenPoll)
	defer t.Stop()
	for {
		res, err := s.run(ctx, "", []string{"/bin/sh", "-c", listenScript, "listen", strconv.FormatUint(uint64(pgid), 10)}, 16<<10)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			for _, f := range strings.Fields(string(res.stdout)) {
				port, err := strconv.ParseUint(f, 16, 16)
				if err == nil && port > 0 && !seen[int(port)] {
					seen[int(port)] = true
					cb(int(port))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// commandLine returns the argv to run for c.
func commandLine(c sandbox.Cmd) ([]string, error) {
	switch {
	case c.Shell != "" && len(c.Args) > 0:
		return nil, errors.New("Cmd.Args and Cmd.Shell are both set")
	case c.Shell != "":
		return []string{"/bin/sh", "-c", c.Shell}, nil
	case len(c.Args) == 0 || c.Args[0] == "":
		return nil, errors.New("Cmd has neither Args nor Shell")
	}
	return c.Args, nil
}

// runResult is what an internal helper process produced.
type runResult struct {
	stdout, stderr []byte
	code           int
}

// run starts an internal helper process (not wrapped, not capped by
// Cmd.OutputLimit) and waits for it, keeping at most limit bytes of each
// stream. cwd "" is the user's home.
func (s *Sandbox) run(ctx context.Context, cwd string, argv []string, limit int) (runResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCmdTimeout)
		defer cancel()
	}
	cfg := &pb.ProcessConfig{Cmd: argv[0], Args: argv[1:]}
	if cwd != "" {
		cfg.Cwd = &cwd
	}
	req := connect.NewRequest(&pb.StartRequest{Process: cfg, Stdin: proto.Bool(false)})
	req.Header().Set("Keepalive-Ping-Interval", keepaliveSeconds)
	stream, err := s.envd.process.Start(ctx, req)
	if err != nil {
		return runResult{}, err
	}
	defer stream.Close()
	var stdout, stderr bytes.Buffer
	var end *pb.ProcessEvent_EndEvent
	add := func(b *bytes.Buffer, p []byte) {
		if room := limit - b.Len(); room > 0 {
			b.Write(p[:min(room, len(p))])
		}
	}
	for stream.Receive() {
		ev := stream.Msg().GetEvent()
		if d := ev.GetData(); d != nil {
			add(&stdout, d.GetStdout())
			add(&stderr, d.GetStderr())
		}
		if e := ev.GetEnd(); e != nil {
			end = e
		}
	}
	if end == nil {
		if err := stream.Err(); err != nil {
			return runResult{}, err
		}
		return runResult{}, errors.New("the process stream ended without an end event")
	}
	return runResult{stdout: stdout.Bytes(), stderr: stderr.Bytes(), code: int(end.GetExitCode())}, nil
}

// remotePath maps a workspace-relative slash path to its absolute path in
// the sandbox, refusing paths that leave the working copy.
func (s *Sandbox) remotePath(op, rel string) (string, error) {
	clean, err := cleanRel(rel)
	if err != nil {
		return "", fmt.Errorf("e2b: %s %q in sandbox %s: %w", op, rel, s.id, err)
	}
	if clean == "." {
		return s.root, nil
	}
	return s.root + "/" + clean, nil
}

// cleanRel cleans a workspace-relative slash path ("" and "." are the root).
func cleanRel(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("path contains a NUL byte")
	}
	if p == "" {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") {
		return "", sandbox.ErrPathEscape
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", sandbox.ErrPathEscape
	}
	return c, nil
}
