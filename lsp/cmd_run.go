package lsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/outputdiag"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/project"
)

// outputTailBytes is how much of a command's output the result carries.
const outputTailBytes = 4096

func init() {
	commands[command.Run] = (*Server).cmdRun
}

// cmdRun implements opencode.run: the project's check command (or the given
// one) runs in the sandbox with the editor's unsaved buffers, its output
// streams into progress and the log, and what it reports becomes
// diagnostics.
func (s *Server) cmdRun(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.RunArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	if a.TimeoutSec < 0 {
		return nil, &command.ArgError{Command: command.Run, Field: "timeoutSec", Reason: "must be positive"}
	}
	root, err := s.rootFor(a.URI)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command.Run, err)
	}
	st := s.Settings()
	check, err := project.Resolve(a.Command, st.Run.Command, root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; give a command (the \"command\" argument, or `-- COMMAND` on the command line) or set opencode.run.command", command.Run, err)
	}
	provider := firstNonEmpty(a.Sandbox, st.Sandbox, "local")
	timeout := time.Duration(st.Run.TimeoutSec) * time.Second
	if a.TimeoutSec > 0 {
		timeout = time.Duration(a.TimeoutSec) * time.Second
	}
	title := "OpenCode: Run in sandbox"
	return s.withRun(ctx, "run", title, p, func(ctx context.Context, r *run, wd *workDone) (any, string, error) {
		res, err := s.runInSandbox(ctx, r, wd, runSpec{
			root: root, provider: provider, check: check, timeout: timeout,
			network: st.Run.Network, errorformat: st.Run.Errorformat, outputLimit: st.Run.OutputLimitBytes,
			excludes: st.Sync.Excludes,
		})
		if err != nil {
			return nil, "", err
		}
		total := 0
		for _, n := range res.Diagnostics {
			total += n
		}
		return res, fmt.Sprintf("exit %d, %s in %s (%s)", res.ExitCode, plural(total, "diagnostic"), plural(len(res.Diagnostics), "file"), time.Duration(res.DurationMs)*time.Millisecond), nil
	})
}

type runSpec struct {
	root, provider, command string
	check                   project.Check
	timeout                 time.Duration
	network                 bool
	errorformat, excludes   []string
	outputLimit             int64
}

func (s *Server) runInSandbox(ctx context.Context, r *run, wd *workDone, spec runSpec) (command.RunResult, error) {
	res := command.RunResult{RunID: r.ID, Command: spec.check.Command, Diagnostics: map[string]int{}}
	wd.Report("opening the " + spec.provider + " sandbox")
	ps, release, err := s.sandboxes.acquire(ctx, spec.provider, spec.root)
	if err != nil {
		return res, err
	}
	defer release()
	sb := ps.sb

	wd.Report("syncing the workspace")
	overlays, _ := s.overlays(spec.root)
	wc, err := s.prepareWorkingCopy(ctx, sb, sandbox.Source{Root: spec.root, Overlays: overlays, Excludes: spec.excludes})
	if err != nil {
		return res, fmt.Errorf("%s sandbox: %w", spec.provider, err)
	}
	s.log.Info("Synced workspace", "run", r.ID, "files", wc.Stats.Files, "written", wc.Stats.Written, "removed", wc.Stats.Removed, "elapsed", wc.Stats.Elapsed)

	// A detected check may depend on a tool (pytest): ask the sandbox.
	spec.command = spec.check.Command
	if spec.check.Requires != "" {
		st, err := sb.Exec(ctx, sandbox.Cmd{Shell: spec.check.Requires, Timeout: time.Minute, Network: spec.network})
		spec.command = spec.check.Choose(err == nil && st.Code == 0)
	}
	res.Command = spec.command
	s.log.Info("Running", "run", r.ID, "command", spec.command, "why", spec.check.Reason, "sandbox", spec.provider)

	// The text each tool saw: the synced unsaved buffers, else the file.
	text := func(rel string) ([]byte, bool) {
		if t, ok := overlays[rel]; ok {
			return t, true
		}
		b, err := readFileLimited(filepath.Join(spec.root, filepath.FromSlash(rel)), 8<<20)
		return b, err == nil
	}
	parseSpec := outputdiag.Spec{
		Command: spec.command, Errorformat: spec.errorformat, SandboxRoot: sb.Root(),
		WorkspaceRoot: spec.root, Encoding: s.encoding,
	}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	var results [2]outputdiag.Result
	var parseErrs [2]error
	var wg conc.WaitGroup
	for i, rd := range []*io.PipeReader{outR, errR} {
		wg.Go(func() {
			results[i], parseErrs[i] = outputdiag.Parse(ctx, rd, parseSpec, text)
			_, _ = io.Copy(io.Discard, rd) // keep the writer unblocked if Parse stopped early
		})
	}
	tail := &tailBuffer{max: outputTailBytes}
	logw := &logWriter{s: s, run: r.ID}
	progress := wd.Writer()
	var previewOnce sync.Once
	var previewMu sync.Mutex
	previewURL := ""
	cmd := sandbox.Cmd{
		Shell:       spec.command,
		Timeout:     spec.timeout,
		Network:     spec.network,
		OutputLimit: spec.outputLimit,
		Stdout:      io.MultiWriter(outW, tail, progress, logw),
		Stderr:      io.MultiWriter(errW, tail, progress, logw),
		OnListen: func(port int) {
			previewOnce.Do(func() {
				u := s.offerPreview(ctx, sb, port)
				previewMu.Lock()
				previewURL = u
				previewMu.Unlock()
			})
		},
	}
	wd.Report("running " + spec.command)
	start := time.Now()
	status, execErr := sb.Exec(ctx, cmd)
	outW.Close()
	errW.Close()
	wg.Wait()
	res.DurationMs = time.Since(start).Milliseconds()
	res.ExitCode = status.Code
	res.OutputTail = tail.String()
	previewMu.Lock()
	res.SandboxURL = previewURL
	previewMu.Unlock()
	if execErr != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, fmt.Errorf("running %q in the %s sandbox: %w", spec.command, spec.provider, execErr)
	}
	for _, e := range parseErrs {
		if e != nil && !errors.Is(e, context.Canceled) {
			s.log.Warn("Reading command output failed", "run", r.ID, "err", e)
		}
	}

	// Publish: this command's diagnostics replace its earlier ones.
	byURI := map[protocol.DocumentURI][]protocol.Diagnostic{}
	for _, pr := range results {
		s.addEditorURIs(byURI, pr.ByURI)
	}
	s.diags.Set(ctx, "run:"+spec.root+":"+spec.command, byURI)
	for uri, list := range byURI {
		res.Diagnostics[string(uri)] = len(list)
	}
	if status.TimedOut {
		return res, fmt.Errorf("%q timed out after %s (diagnostics from its output were published)", spec.command, spec.timeout)
	}
	if status.DroppedBytes > 0 {
		res.OutputTail = fmt.Sprintf("[%d bytes of output dropped]\n", status.DroppedBytes) + res.OutputTail
	}
	return res, nil
}

// addEditorURIs adds parsed diagnostics to dst under the URIs the editor
// uses for those files (an open document keeps its own spelling).
func (s *Server) addEditorURIs(dst, parsed map[protocol.DocumentURI][]protocol.Diagnostic) {
	for uri, list := range parsed {
		u := uri
		if path, ok := uriToPath(uri); ok {
			u = s.uriFor(path)
		}
		dst[u] = append(dst[u], list...)
	}
}

// offerPreview turns a listening port into a URL and offers it to the user.
func (s *Server) offerPreview(ctx context.Context, sb sandbox.Sandbox, port int) string {
	pv, err := sb.PreviewURL(ctx, port)
	if err != nil {
		s.log.Info("No preview for port", "port", port, "err", err)
		s.showMessage(ctx, protocol.MessageTypeInfo, fmt.Sprintf("OpenCode: the command listens on port %d, but it cannot be previewed: %v", port, err))
		return ""
	}
	if !s.showDocument(ctx, pv.URL, true, nil) {
		s.showMessage(ctx, protocol.MessageTypeInfo, "OpenCode: sandbox preview at "+pv.URL)
	}
	return pv.URL
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ToValidUTF8(stripANSI(string(t.buf)), "\uFFFD")
}

// logWriter sends command output to the log at debug level, as it arrives.
type logWriter struct {
	s   *Server
	run string
}

func (l *logWriter) Write(p []byte) (int, error) {
	if l.s.log.Enabled(context.Background(), -4) {
		l.s.log.Debug("Output", "run", l.run, "text", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
