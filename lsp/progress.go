package lsp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/outputdiag"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// reportInterval is the least time between two $/progress reports of one
// piece of work; the newest message in between is sent when it elapses.
const reportInterval = 100 * time.Millisecond

// progressTracker creates work-done progress and routes
// window/workDoneProgress/cancel to the work's cancel func.
type progressTracker struct {
	s   *Server
	seq atomic.Int64

	mu     sync.Mutex
	active map[string]*workDone // token JSON -> work
}

func newProgressTracker(s *Server) *progressTracker {
	return &progressTracker{s: s, active: map[string]*workDone{}}
}

// workDone reports the progress of one piece of work: through $/progress
// when the client supports it, else through window/showMessage (begin and
// end) and window/logMessage (reports). Its methods are safe for concurrent
// use; reports are throttled to one per reportInterval.
type workDone struct {
	t      *progressTracker
	token  *protocolx.ProgressToken // nil: the client has no progress support
	title  string
	cancel context.CancelFunc

	mu       sync.Mutex
	ended    bool
	last     time.Time
	pending  string
	timer    *time.Timer
	lastSent string
}

// start begins progress for a piece of work. clientToken is the
// workDoneToken the client sent with the request, if any; otherwise the
// server creates one when the client supports window.workDoneProgress.
// cancel is called when the user cancels the progress.
func (t *progressTracker) start(ctx context.Context, title, message string, clientToken *protocolx.ProgressToken, cancel context.CancelFunc) *workDone {
	s := t.s
	wd := &workDone{t: t, title: title, cancel: cancel}
	switch {
	case clientToken != nil:
		wd.token = clientToken
	case s.caps.WorkDoneProgress:
		tok := protocolx.NewStringProgressToken(fmt.Sprintf("opencode-%d", t.seq.Add(1)))
		err := s.call(ctx, protocolx.MethodWorkDoneProgressNew, protocolx.WorkDoneProgressCreateParams{Token: tok}, nil, 5*time.Second)
		if err != nil {
			s.log.Debug("Creating progress failed; falling back to messages", "err", err)
		} else {
			wd.token = tok
		}
	}
	if wd.token == nil {
		s.showMessage(ctx, protocol.MessageTypeInfo, joinNonEmpty(": ", title, message))
		return wd
	}
	t.mu.Lock()
	t.active[wd.token.String()] = wd
	t.mu.Unlock()
	s.notify(ctx, "$/progress", protocolx.ProgressParams{Token: wd.token, Value: protocolx.WorkDoneProgressBegin{
		Kind: "begin", Title: title, Message: message, Cancellable: cancel != nil,
	}})
	return wd
}

// cancelToken cancels the work a token belongs to.
func (t *progressTracker) cancelToken(tok *protocolx.ProgressToken) bool {
	if tok == nil {
		return false
	}
	t.mu.Lock()
	wd := t.active[tok.String()]
	t.mu.Unlock()
	if wd == nil || wd.cancel == nil {
		return false
	}
	wd.cancel()
	return true
}

// Report sends a progress message (the last line of msg), throttled.
func (wd *workDone) Report(msg string) {
	msg = lastLine(msg)
	if msg == "" {
		return
	}
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.ended {
		return
	}
	if wait := reportInterval - time.Since(wd.last); wait > 0 {
		wd.pending = msg
		if wd.timer == nil {
			wd.timer = time.AfterFunc(wait, wd.flush)
		}
		return
	}
	wd.sendLocked(msg)
}

func (wd *workDone) flush() {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	wd.timer = nil
	if wd.ended || wd.pending == "" {
		return
	}
	wd.sendLocked(wd.pending)
}

func (wd *workDone) sendLocked(msg string) {
	msg = wd.t.s.redactor.String(msg)
	wd.pending = ""
	wd.last = time.Now()
	if msg == wd.lastSent {
		return
	}
	wd.lastSent = msg
	s := wd.t.s
	ctx := s.ctx
	if wd.token == nil {
		s.logMessage(ctx, protocol.MessageTypeLog, wd.title+": "+msg)
		return
	}
	s.notify(ctx, "$/progress", protocolx.ProgressParams{Token: wd.token, Value: protocolx.WorkDoneProgressReport{
		Kind: "report", Message: msg, Cancellable: wd.cancel != nil,
	}})
}

// End finishes the progress with a final message. Later calls do nothing.
func (wd *workDone) End(msg string) {
	wd.mu.Lock()
	if wd.ended {
		wd.mu.Unlock()
		return
	}
	wd.ended = true
	if wd.timer != nil {
		wd.timer.Stop()
		wd.timer = nil
	}
	wd.mu.Unlock()
	s := wd.t.s
	if wd.token == nil {
		s.showMessage(s.ctx, protocol.MessageTypeInfo, joinNonEmpty(": ", wd.title, msg))
		return
	}
	wd.t.mu.Lock()
	delete(wd.t.active, wd.token.String())
	wd.t.mu.Unlock()
	s.notify(s.ctx, "$/progress", protocolx.ProgressParams{Token: wd.token, Value: protocolx.WorkDoneProgressEnd{
		Kind: "end", Message: msg,
	}})
}

// Writer returns an io.Writer that reports each complete line written to
// it (command output streaming into progress).
func (wd *workDone) Writer() *lineReporter { return &lineReporter{wd: wd} }

// lineReporter turns a byte stream into progress reports, one per line,
// keeping at most one partial line (capped) in memory.
type lineReporter struct {
	wd      *workDone
	mu      sync.Mutex
	partial []byte
}

func (l *lineReporter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(l.partial) < 512 {
				l.partial = append(l.partial, p[:min(len(p), 512-len(l.partial))]...)
			}
			break
		}
		line := append(l.partial, p[:i]...)
		l.partial = l.partial[:0]
		if s := strings.TrimSpace(stripANSI(string(line))); s != "" {
			l.wd.Report(s)
		}
		p = p[i+1:]
	}
	return n, nil
}

func (s *Server) workDoneProgressCancel(ctx context.Context, params json.RawMessage) (any, error) {
	var p protocolx.WorkDoneProgressCancelParams
	if json.Unmarshal(params, &p) == nil && s.progress.cancelToken(p.Token) {
		s.log.Info("Work cancelled from progress", "token", p.Token.String())
	}
	return nil, nil
}

func (s *Server) showMessage(ctx context.Context, typ protocol.MessageType, msg string) {
	s.notify(ctx, "window/showMessage", protocol.ShowMessageParams{Type: typ, Message: s.redactor.String(msg)})
}

func (s *Server) logMessage(ctx context.Context, typ protocol.MessageType, msg string) {
	s.notify(ctx, "window/logMessage", protocol.LogMessageParams{Type: typ, Message: s.redactor.String(msg)})
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\r\n ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.TrimSpace(s)
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// stripANSI removes terminal escape sequences (colours, cursor moves).
func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	return string(outputdiag.StripANSI([]byte(s)))
}
