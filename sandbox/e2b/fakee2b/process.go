package fakee2b

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"

	pb "github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process/processconnect"
)

// proc is one process started through process.Process/Start.
type proc struct {
	cmd    *exec.Cmd
	config *pb.ProcessConfig
	tag    *string
	stdin  io.WriteCloser // nil when started with stdin:false
	pipes  []io.Closer    // read ends of stdout and stderr
	done   chan struct{}  // closed once the end event is out

	mu       sync.Mutex
	subs     []*eventQueue
	finished bool
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// subscribe returns a queue that receives the process's events from now on;
// nil when the process has already finished.
func (p *proc) subscribe() *eventQueue {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return nil
	}
	q := newEventQueue()
	p.subs = append(p.subs, q)
	return q
}

func (p *proc) unsubscribe(q *eventQueue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs = slices.DeleteFunc(p.subs, func(x *eventQueue) bool { return x == q })
}

func (p *proc) emit(ev *pb.ProcessEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range p.subs {
		q.push(ev)
	}
	if ev.GetEnd() != nil {
		p.finished = true
		p.subs = nil
	}
}

// cancelReaders stops reading output (envd does so on SIGKILL/SIGTERM, so
// the stream ends even while a child still holds the pipes).
func (p *proc) cancelReaders() {
	for _, c := range p.pipes {
		c.Close()
	}
}

// eventQueue is an unbounded FIFO of events with a wake-up channel.
type eventQueue struct {
	mu     sync.Mutex
	events []*pb.ProcessEvent
	notify chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{notify: make(chan struct{}, 1)} }

func (q *eventQueue) push(ev *pb.ProcessEvent) {
	q.mu.Lock()
	q.events = append(q.events, ev)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *eventQueue) drain() []*pb.ProcessEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.events
	q.events = nil
	return evs
}

type processService struct {
	processconnect.UnimplementedProcessHandler
	s *Server
}

func (ps *processService) Start(ctx context.Context, req *connect.Request[pb.StartRequest], stream *connect.ServerStream[pb.StartResponse]) error {
	sb := sandboxFrom(ctx)
	cfg := req.Msg.GetProcess()
	if cfg == nil || cfg.GetCmd() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is required"))
	}
	if req.Msg.Pty != nil {
		return connect.NewError(connect.CodeUnimplemented, errors.New("pty is not supported by this envd"))
	}
	cwd := sb.home
	if cfg.Cwd != nil {
		cwd = sb.resolve(cfg.GetCwd())
	}
	if st, err := os.Stat(cwd); err != nil || !st.IsDir() {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cwd '%s' does not exist", cwd))
	}
	cmd := exec.Command(cfg.GetCmd(), cfg.GetArgs()...)
	cmd.Dir = cwd
	// corrections §5: envd's PATH, HOME, USER, LOGNAME, then the sandbox's
	// envVars, then the request's envs; the last value wins.
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": sb.home, "USER": "user", "LOGNAME": "user"}
	order := []string{"PATH", "HOME", "USER", "LOGNAME"}
	for _, m := range []map[string]string{sb.envVars, cfg.GetEnvs()} {
		for k, v := range m {
			if _, ok := env[k]; !ok {
				order = append(order, k)
			}
			env[k] = v
		}
	}
	for _, k := range order {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: sb.pgid()}
	p := &proc{cmd: cmd, config: cfg, tag: req.Msg.Tag, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	p.pipes = []io.Closer{stdout, stderr}
	if req.Msg.Stdin == nil || req.Msg.GetStdin() {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return connect.NewError(connect.CodeInternal, err)
		}
	}
	q := p.subscribe()
	sb.mu.Lock()
	if sb.killed {
		sb.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	if err := cmd.Start(); err != nil {
		sb.mu.Unlock()
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("error starting process '%s': %w", cfg.GetCmd(), err))
	}
	pid := uint32(cmd.Process.Pid)
	sb.procs[pid] = p
	sb.mu.Unlock()

	p.emit(&pb.ProcessEvent{Event: &pb.ProcessEvent_Start{Start: &pb.ProcessEvent_StartEvent{Pid: pid}}})
	var readers sync.WaitGroup
	read := func(r io.Reader, stderr bool) {
		defer readers.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunk := slices.Clone(buf[:n])
				data := &pb.ProcessEvent_DataEvent{Output: &pb.ProcessEvent_DataEvent_Stdout{Stdout: chunk}}
				if stderr {
					data.Output = &pb.ProcessEvent_DataEvent_Stderr{Stderr: chunk}
				}
				p.emit(&pb.ProcessEvent{Event: &pb.ProcessEvent_Data{Data: data}})
			}
			if err != nil {
				return
			}
		}
	}
	readers.Add(2)
	go read(stdout, false)
	go read(stderr, true)
	go func() {
		readers.Wait()
		werr := cmd.Wait()
		st := cmd.ProcessState
		end := &pb.ProcessEvent_EndEvent{ExitCode: int32(st.ExitCode()), Exited: st.Exited(), Status: st.String()}
		if werr != nil {
			msg := werr.Error()
			end.Error = &msg
		}
		sb.mu.Lock()
		delete(sb.procs, pid)
		sb.mu.Unlock()
		p.emit(&pb.ProcessEvent{Event: &pb.ProcessEvent_End{End: end}})
		close(p.done)
	}()
	return ps.stream(ctx, req.Header(), sb, p, q, func(ev *pb.ProcessEvent) error {
		return stream.Send(&pb.StartResponse{Event: ev})
	})
}

// Connect attaches to a running process and streams its events from now on.
func (ps *processService) Connect(ctx context.Context, req *connect.Request[pb.ConnectRequest], stream *connect.ServerStream[pb.ConnectResponse]) error {
	sb := sandboxFrom(ctx)
	p, err := sb.find(req.Msg.GetProcess())
	if err != nil {
		return err
	}
	q := p.subscribe()
	if q == nil {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("process with pid %d not found", p.pid()))
	}
	if err := stream.Send(&pb.ConnectResponse{Event: &pb.ProcessEvent{Event: &pb.ProcessEvent_Start{
		Start: &pb.ProcessEvent_StartEvent{Pid: uint32(p.pid())}}}}); err != nil {
		p.unsubscribe(q)
		return err
	}
	return ps.stream(ctx, req.Header(), sb, p, q, func(ev *pb.ProcessEvent) error {
		return stream.Send(&pb.ConnectResponse{Event: ev})
	})
}

// stream forwards a process's events until its end event, sending
// keep-alives when asked. A deadline (Connect-Timeout-Ms) kills the process
// itself (not its group) and ends the stream with deadline_exceeded; a
// client that goes away leaves the process running (corrections §2); a
// sandbox that dies cuts the connection without an end-of-stream frame.
func (ps *processService) stream(ctx context.Context, h http.Header, sb *sandbox, p *proc, q *eventQueue, send func(*pb.ProcessEvent) error) error {
	defer p.unsubscribe(q)
	var tick <-chan time.Time
	if secs, err := strconv.Atoi(h.Get("Keepalive-Ping-Interval")); err == nil && secs > 0 {
		d := time.Duration(secs) * time.Second
		if ps.s.opts.KeepaliveInterval > 0 {
			d = ps.s.opts.KeepaliveInterval
		}
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-sb.dead:
			panic(http.ErrAbortHandler)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				p.cmd.Process.Signal(syscall.SIGKILL)
				p.cancelReaders()
				return connect.NewError(connect.CodeDeadlineExceeded, errors.New("context deadline exceeded"))
			}
			return connect.NewError(connect.CodeCanceled, ctx.Err())
		case <-tick:
			if err := send(&pb.ProcessEvent{Event: &pb.ProcessEvent_Keepalive{Keepalive: &pb.ProcessEvent_KeepAlive{}}}); err != nil {
				return err
			}
		case <-q.notify:
			for _, ev := range q.drain() {
				// dead is closed before the sandbox's processes are
				// killed, so no event caused by the kill (their end
				// events) gets past this check.
				select {
				case <-sb.dead:
					panic(http.ErrAbortHandler)
				default:
				}
				if err := send(ev); err != nil {
					return err
				}
				if ev.GetEnd() != nil {
					return nil
				}
			}
		}
	}
}

// find resolves a ProcessSelector.
func (sb *sandbox) find(sel *pb.ProcessSelector) (*proc, error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch s := sel.GetSelector().(type) {
	case *pb.ProcessSelector_Pid:
		if p := sb.procs[s.Pid]; p != nil {
			return p, nil
		}
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process with pid %d not found", s.Pid))
	case *pb.ProcessSelector_Tag:
		for _, p := range sb.procs {
			if p.tag != nil && *p.tag == s.Tag {
				return p, nil
			}
		}
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process with tag %s not found", s.Tag))
	}
	return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("invalid process selector"))
}

func (ps *processService) List(ctx context.Context, _ *connect.Request[pb.ListRequest]) (*connect.Response[pb.ListResponse], error) {
	sb := sandboxFrom(ctx)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	res := &pb.ListResponse{}
	for pid, p := range sb.procs {
		res.Processes = append(res.Processes, &pb.ProcessInfo{Config: p.config, Pid: pid, Tag: p.tag})
	}
	slices.SortFunc(res.Processes, func(a, b *pb.ProcessInfo) int { return int(a.Pid) - int(b.Pid) })
	return connect.NewResponse(res), nil
}

// SendSignal signals the process only, not its group (corrections §1);
// SIGKILL and SIGTERM also stop the output readers.
func (ps *processService) SendSignal(ctx context.Context, req *connect.Request[pb.SendSignalRequest]) (*connect.Response[pb.SendSignalResponse], error) {
	sb := sandboxFrom(ctx)
	p, err := sb.find(req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	var sig syscall.Signal
	switch req.Msg.GetSignal() {
	case pb.Signal_SIGNAL_SIGKILL:
		sig = syscall.SIGKILL
	case pb.Signal_SIGNAL_SIGTERM:
		sig = syscall.SIGTERM
	default:
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid signal: %v", req.Msg.GetSignal()))
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error sending signal: %w", err))
	}
	p.cancelReaders()
	return connect.NewResponse(&pb.SendSignalResponse{}), nil
}

func (ps *processService) SendInput(ctx context.Context, req *connect.Request[pb.SendInputRequest]) (*connect.Response[pb.SendInputResponse], error) {
	sb := sandboxFrom(ctx)
	p, err := sb.find(req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	in, ok := req.Msg.GetInput().GetInput().(*pb.ProcessInput_Stdin)
	if !ok {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("only stdin input is supported"))
	}
	if p.stdin == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("stdin not enabled or closed"))
	}
	if _, err := p.stdin.Write(in.Stdin); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error writing to stdin: %w", err))
	}
	return connect.NewResponse(&pb.SendInputResponse{}), nil
}

func (ps *processService) CloseStdin(ctx context.Context, req *connect.Request[pb.CloseStdinRequest]) (*connect.Response[pb.CloseStdinResponse], error) {
	sb := sandboxFrom(ctx)
	p, err := sb.find(req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if p.stdin == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("stdin not enabled or closed"))
	}
	if err := p.stdin.Close(); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error closing stdin: %w", err))
	}
	return connect.NewResponse(&pb.CloseStdinResponse{}), nil
}
