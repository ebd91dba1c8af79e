package opencode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Run runs one task in a new session: it creates the session, sends the
// prompt asynchronously, follows the server's event stream (one /event
// connection per server, shared by its runs) until the session is idle
// (reconnecting and resynchronising from the session's messages when the
// stream drops, so nothing is lost or counted twice), answers permission
// requests per the policy or through h, and returns what the agent did.
//
// When ctx ends, the session is aborted, Run waits (at most
// Config.AbortTimeout) for OpenCode to go idle and returns the partial
// result with an error wrapping ctx.Err(). When the agent's turn ended with
// an error (model unreachable, bad key, ...), the result comes with an
// [*AgentError]. h may be nil (permissions that ask are then rejected).
func (s *Server) Run(ctx context.Context, t Task, h Handler) (*RunResult, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(t.Prompt) == "" {
		return nil, errors.New("opencode: empty prompt")
	}
	if h == nil {
		h = nopHandler{}
	}
	r := &run{
		s:         s,
		h:         h,
		log:       s.log,
		sessions:  map[string]bool{},
		roles:     map[string]string{},
		infos:     map[string]messageInfo{},
		pending:   map[string][]part{},
		texts:     map[string]*textState{},
		missed:    map[string]bool{},
		tools:     map[string]string{},
		commands:  map[string]Command{},
		fileSeen:  map[string]bool{},
		steps:     map[string]bool{},
		perms:     map[string]context.CancelFunc{},
		questions: map[string]bool{},
		permReply: make(chan permOutcome, 16),
	}
	return r.run(ctx, t)
}

type nopHandler struct{}

func (nopHandler) Progress(string)  {}
func (nopHandler) TextDelta(string) {}
func (nopHandler) Permission(context.Context, PermissionRequest) (Reply, error) {
	return ReplyReject, errors.New("no handler")
}

// run is the state of one Run. Everything but the permission goroutines
// runs on Run's goroutine.
type run struct {
	s   *Server
	h   Handler
	log *slog.Logger

	main     string          // the session's id
	dir      string          // the session's directory as OpenCode sees the working copy
	sessions map[string]bool // main and its sub-agent sessions
	roles    map[string]string
	infos    map[string]messageInfo
	pending  map[string][]part // parts of messages whose role is not known yet

	texts      map[string]*textState // text parts of the main session
	missed     map[string]bool       // parts a delta came for before the part itself
	emittedAny bool
	tools      map[string]string  // tool part id -> last status handled
	commands   map[string]Command // by tool part id
	files      []string
	fileSeen   map[string]bool
	steps      map[string]bool // step-start part ids
	stepCount  int             // step-starts of the main session

	perms     map[string]context.CancelFunc // permission requests being handled
	questions map[string]bool               // questions declined
	permWG    sync.WaitGroup
	permReply chan permOutcome

	listener *listener
	gaps     int  // times the stream may have lost events
	started  bool // the turn began (busy, an assistant message, or an error)
	idle     bool
	agentErr *messageError
	lastSeen time.Time // last event of one of our sessions
	prompted time.Time // when the prompt was accepted
	noTurn   bool      // OpenCode went idle without ever starting the turn
}

type textState struct {
	emitted string
	full    string // the longest text known
	done    bool   // the part's final text was seen
	gap     bool   // deltas may have been missed: wait for a full snapshot
}

type permOutcome struct {
	id  string
	err error
}

func (r *run) run(ctx context.Context, t Task) (*RunResult, error) {
	// Listen before the prompt is sent, so that no event of the turn is
	// missed; if the server's stream is reconnecting just now, the
	// reconnection brings a gap item and the run resynchronises.
	l := r.s.hub.add()
	defer r.s.hub.remove(l)
	r.listener = l

	title := t.Title
	if title == "" {
		title = defaultTitle(t.Prompt)
	}
	var sess sessionInfo
	if err := r.s.do(ctx, http.MethodPost, "/session", map[string]string{"title": title}, &sess); err != nil {
		return nil, fmt.Errorf("opencode: create the session: %w", err)
	}
	if sess.ID == "" {
		return nil, errors.New("opencode: create the session: no id in the answer")
	}
	r.main = sess.ID
	r.dir = strings.TrimSuffix(sess.Directory, "/")
	r.sessions[sess.ID] = true
	r.log = r.log.With("session", sess.ID)
	if sess.Directory != "" && sess.Directory != r.s.sb.Root() {
		r.log.Warn("OpenCode works in another directory than the working copy", "directory", sess.Directory, "root", r.s.sb.Root())
	}

	body := promptBody{Agent: t.Agent, Parts: []promptPart{{Type: "text", Text: t.Prompt}}}
	if strings.TrimSpace(t.Context) != "" {
		body.Parts = append(body.Parts, promptPart{Type: "text", Text: t.Context})
	}
	// OpenCode's question tool waits for an answer typed into its own UI;
	// nobody would type it here.
	body.Tools = map[string]bool{"question": false}
	body.Model.ProviderID = ProviderID
	body.Model.ModelID = r.s.cfg.Model
	if err := r.s.do(ctx, http.MethodPost, "/session/"+url.PathEscape(r.main)+"/prompt_async", body, nil); err != nil {
		if ctx.Err() != nil {
			// The prompt may have arrived: make sure the turn stops.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.cfg.RequestTimeout)
			_ = r.s.do(actx, http.MethodPost, "/session/"+url.PathEscape(r.main)+"/abort", nil, nil)
			cancel()
		}
		return nil, fmt.Errorf("opencode: send the prompt: %w", err)
	}
	r.lastSeen = time.Now()
	r.prompted = r.lastSeen

	err := r.follow(ctx, l.ch)
	r.s.hub.remove(l)
	// Stop asking the user: the run is over. A handler that ignores its
	// context is not waited for long.
	for _, cancel := range r.perms {
		cancel()
	}
	permsDone := make(chan struct{})
	go func() { r.permWG.Wait(); close(permsDone) }()
	select {
	case <-permsDone:
	case <-time.After(5 * time.Second):
		r.log.Warn("A permission handler did not return after the run ended")
	}

	// The session's messages are the record: when the stream may have
	// missed something (a gap, a cancel, a part or message left unfinished),
	// a last pass over them picks it up. A clean stream delivered every
	// event before the idle one, so the pass is skipped.
	if r.s.Err() == nil && !r.complete() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.cfg.RequestTimeout)
		if rerr := r.resync(fctx, false); rerr != nil {
			r.log.Debug("Final resynchronisation failed", "error", rerr)
		}
		cancel()
	}
	res := r.result()
	if err != nil {
		return res, err
	}
	if r.noTurn {
		return res, errors.New("opencode: the session went idle without answering the prompt")
	}
	if r.agentErr != nil {
		return res, &AgentError{Name: r.agentErr.Name, Message: r.s.red.Replace(r.agentErr.Data.Message)}
	}
	return res, nil
}

// complete reports whether the stream delivered the whole turn: no gap,
// every tool part finished, every text part final, every assistant message
// of the run's sessions completed, and no part waiting for its message.
func (r *run) complete() bool {
	if r.gaps > 0 || !r.idle || len(r.pending) > 0 || r.listener.dropped.Load() {
		return false
	}
	for _, st := range r.tools {
		if toolRank[st] < 2 {
			return false
		}
	}
	for _, ts := range r.texts {
		if !ts.done {
			return false
		}
	}
	for _, info := range r.infos {
		if info.Role == "assistant" && info.Time.Completed == 0 && info.Error == nil {
			return false
		}
	}
	return true
}

// follow handles events until the session is idle, the server dies, or ctx
// ends (then it aborts the session and waits for idle, bounded).
func (r *run) follow(ctx context.Context, items <-chan streamItem) error {
	check := time.NewTicker(10 * time.Second)
	defer check.Stop()
	var (
		cancelled error
		deadline  <-chan time.Time
		done      = ctx.Done()
	)
	for !r.idle {
		select {
		case it := <-items:
			if it.gap {
				r.gaps++
				r.log.Info("OpenCode event stream resumed; resynchronising")
				if err := r.resync(ctx, true); err != nil {
					r.log.Warn("Resynchronisation failed", "error", err)
				}
				continue
			}
			r.handle(it.ev)
		case o := <-r.permReply:
			if o.err != nil {
				r.log.Warn("Permission reply failed", "request", o.id, "error", o.err)
			}
		case <-check.C:
			// A lost idle event (without a stream drop) must not hang the run.
			if time.Since(r.lastSeen) > 20*time.Second {
				if err := r.checkStatus(ctx); err != nil {
					r.log.Debug("Status check failed", "error", err)
				}
			}
		case <-done:
			done = nil
			cancelled = fmt.Errorf("opencode: run cancelled: %w", ctx.Err())
			actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.cfg.RequestTimeout)
			err := r.s.do(actx, http.MethodPost, "/session/"+url.PathEscape(r.main)+"/abort", nil, nil)
			acancel()
			if err != nil {
				r.log.Warn("Abort failed", "error", err)
				return cancelled
			}
			deadline = time.After(r.s.cfg.AbortTimeout)
			ctx = context.WithoutCancel(ctx)
		case <-deadline:
			r.log.Warn("OpenCode did not go idle after the abort")
			return cancelled
		case <-r.s.done:
			return fmt.Errorf("opencode: run: %w", r.s.exitError())
		}
	}
	return cancelled
}

// handle applies one event.
func (r *run) handle(ev event) {
	switch ev.Type {
	case "message.part.updated":
		var p partEventProps
		if json.Unmarshal(ev.Properties, &p) == nil {
			r.onPart(p.Part, false)
		}
	case "message.part.delta":
		var d deltaEventProps
		if json.Unmarshal(ev.Properties, &d) == nil {
			r.onDelta(d)
		}
	case "message.updated":
		var m messageEventProps
		if json.Unmarshal(ev.Properties, &m) == nil {
			r.onMessage(m.Info)
		}
	case "session.created", "session.updated":
		var p sessionEventProps
		if json.Unmarshal(ev.Properties, &p) == nil && p.Info != nil && p.Info.ParentID != "" && r.sessions[p.Info.ParentID] && !r.sessions[p.Info.ID] {
			r.sessions[p.Info.ID] = true
			r.log.Debug("Sub-agent session", "child", p.Info.ID)
		}
	case "session.status":
		var p statusEventProps
		if json.Unmarshal(ev.Properties, &p) == nil && p.SessionID == r.main {
			r.lastSeen = time.Now()
			r.onStatus(p.Status)
		}
	case "session.idle":
		var p statusEventProps
		if json.Unmarshal(ev.Properties, &p) == nil && p.SessionID == r.main {
			r.onStatus(sessionStatus{Type: "idle"})
		}
	case "session.error":
		var p errorEventProps
		if json.Unmarshal(ev.Properties, &p) == nil && p.SessionID == r.main && p.Error != nil {
			r.started = true
			r.agentErr = p.Error
		}
	case "permission.asked", "permission.updated":
		var p permissionAsked
		if json.Unmarshal(ev.Properties, &p) == nil {
			r.onPermission(p)
		}
	case "question.asked":
		var q questionAsked
		if json.Unmarshal(ev.Properties, &q) == nil {
			r.onQuestion(q)
		}
	case "permission.replied":
		var p permissionReplied
		if json.Unmarshal(ev.Properties, &p) == nil {
			id := p.RequestID
			if id == "" {
				id = p.PermissionID
			}
			if cancel, ok := r.perms[id]; ok {
				cancel() // answered elsewhere: stop asking
			}
		}
	}
}

func (r *run) onStatus(st sessionStatus) {
	switch st.Type {
	case "busy":
		r.started = true
	case "retry":
		r.started = true
		msg := "The model call failed; retrying"
		if st.Attempt > 0 {
			msg += fmt.Sprintf(" (attempt %d)", st.Attempt)
		}
		if st.Message != "" {
			msg += ": " + oneLine(st.Message, 200)
		}
		r.progress(msg)
	case "idle":
		if r.started {
			r.idle = true
		}
	}
}

func (r *run) onMessage(info messageInfo) {
	if !r.sessions[info.SessionID] || info.ID == "" {
		return
	}
	r.lastSeen = time.Now()
	r.roles[info.ID] = info.Role
	r.infos[info.ID] = info
	if info.Role == "assistant" && info.SessionID == r.main {
		r.started = true
		if info.Error != nil {
			r.agentErr = info.Error
		}
	}
	if ps, ok := r.pending[info.ID]; ok {
		delete(r.pending, info.ID)
		// Replayed late, these snapshots are not in order with the deltas
		// that came meanwhile.
		for _, p := range ps {
			r.onPart(p, true)
		}
	}
}

// onPart applies a part snapshot; fromResync marks one read from the
// session's messages rather than from the stream.
func (r *run) onPart(p part, fromResync bool) {
	if !r.sessions[p.SessionID] || p.ID == "" {
		return
	}
	r.lastSeen = time.Now()
	role, ok := r.roles[p.MessageID]
	if !ok {
		r.pending[p.MessageID] = append(r.pending[p.MessageID], p)
		return
	}
	if role != "assistant" {
		return
	}
	switch p.Type {
	case "text":
		if p.SessionID == r.main && !p.Synthetic && !p.Ignored {
			r.onText(p, fromResync)
		}
	case "step-start":
		if !r.steps[p.ID] {
			r.steps[p.ID] = true
			if p.SessionID == r.main {
				r.stepCount++
				r.progress(fmt.Sprintf("Step %d", r.stepCount))
			}
		}
	case "tool":
		r.onTool(p)
	case "patch":
		for _, f := range p.Files {
			r.addFile(f)
		}
	}
}

func (r *run) onText(p part, fromResync bool) {
	ts := r.texts[p.ID]
	if ts == nil {
		ts = &textState{gap: r.missed[p.ID]}
		r.texts[p.ID] = ts
	}
	if ts.done {
		return
	}
	final := p.Time != nil && p.Time.End != 0
	if len(p.Text) >= len(ts.full) {
		ts.full = p.Text
	}
	switch {
	case len(p.Text) < len(ts.emitted):
		// An older snapshot than what was already streamed.
	case strings.HasPrefix(p.Text, ts.emitted):
		r.emit(ts, p.Text[len(ts.emitted):])
		// A snapshot from the stream is in order with the deltas after it;
		// one read from the messages is not.
		ts.gap = fromResync
	default:
		r.log.Debug("Text part diverged from the streamed text", "part", p.ID)
		ts.gap = true
	}
	if final {
		ts.done = true
	}
}

func (r *run) onDelta(d deltaEventProps) {
	if !r.sessions[d.SessionID] {
		return
	}
	r.lastSeen = time.Now()
	ts := r.texts[d.PartID]
	if ts == nil {
		r.missed[d.PartID] = true
		return
	}
	if ts.done || ts.gap || d.Field != "text" {
		return
	}
	r.emit(ts, d.Delta)
}

// emit streams text of one part, with a blank line between parts.
func (r *run) emit(ts *textState, s string) {
	if s == "" {
		return
	}
	if ts.emitted == "" && r.emittedAny {
		r.h.TextDelta("\n\n")
	}
	ts.emitted += s
	if len(ts.emitted) > len(ts.full) {
		ts.full = ts.emitted
	}
	r.emittedAny = true
	r.h.TextDelta(r.s.red.Replace(s))
}

var toolRank = map[string]int{"pending": 0, "running": 1, "completed": 2, "error": 2}

func (r *run) onTool(p part) {
	if p.State == nil {
		return
	}
	st := p.State
	rank, known := toolRank[st.Status]
	if !known {
		return
	}
	prev, seen := r.tools[p.ID]
	if seen && rank <= toolRank[prev] {
		return // stale or repeated (a running bash reports its output growing)
	}
	r.tools[p.ID] = st.Status
	if rank == 0 {
		return // no input yet
	}
	var in toolInput
	var md toolMetadata
	decodeLoose(st.Input, &in)
	decodeLoose(st.Metadata, &md)
	if !seen || toolRank[prev] == 0 {
		r.progress(r.describeTool(p.Tool, in, st.Title))
	}
	if rank < 2 {
		return
	}
	switch p.Tool {
	case "bash":
		c := Command{Command: r.s.red.Replace(in.Command)}
		out := st.Output
		if out == "" {
			out = md.Output
		}
		if st.Status == "error" {
			out = st.Error
		} else {
			c.ExitCode = md.Exit
		}
		c.OutputTail = r.s.red.Replace(tail(out, OutputTailLines, OutputTailBytes))
		r.commands[p.ID] = c
	case "write", "edit", "multiedit", "patch", "apply_patch":
		if st.Status == "completed" {
			f := md.Filepath
			if f == "" {
				f = in.FilePath
			}
			if f != "" {
				r.addFile(f)
			}
		}
	}
	if st.Status == "error" && p.Tool != "bash" {
		r.progress(fmt.Sprintf("%s failed: %s", p.Tool, oneLine(st.Error, 200)))
	}
}

func (r *run) describeTool(tool string, in toolInput, title string) string {
	switch tool {
	case "write":
		return "Writing " + r.rel(in.FilePath)
	case "edit", "multiedit":
		return "Editing " + r.rel(in.FilePath)
	case "read":
		return "Reading " + r.rel(in.FilePath)
	case "bash":
		return "Running: " + oneLine(in.Command, 200)
	}
	if title != "" {
		return tool + ": " + oneLine(title, 200)
	}
	return tool
}

func (r *run) addFile(f string) {
	f = r.rel(f)
	if f == "" || r.fileSeen[f] {
		return
	}
	r.fileSeen[f] = true
	r.files = append(r.files, f)
}

// rel makes a path of the sandbox workspace-relative ('/'-separated); a
// path outside the working copy stays absolute.
func (r *run) rel(p string) string {
	if p == "" {
		return ""
	}
	root := strings.TrimSuffix(r.s.sb.Root(), "/")
	if !path.IsAbs(p) {
		return path.Clean(p)
	}
	p = path.Clean(p)
	for _, root := range []string{root, r.dir} {
		if root == "" {
			continue
		}
		if p == root {
			return "."
		}
		if strings.HasPrefix(p, root+"/") {
			return p[len(root)+1:]
		}
	}
	return p
}

func (r *run) progress(msg string) { r.h.Progress(r.s.red.Replace(msg)) }

// onPermission answers a permission request of one of the run's sessions,
// by policy or through the handler (on its own goroutine: the user may take
// a while, and events keep flowing meanwhile).
func (r *run) onPermission(p permissionAsked) {
	if !r.sessions[p.SessionID] || p.ID == "" {
		return
	}
	if _, ok := r.perms[p.ID]; ok {
		return
	}
	var md permissionMetadata
	decodeLoose(p.Metadata, &md)
	req := PermissionRequest{
		ID:        p.ID,
		SessionID: p.SessionID,
		Kind:      p.Permission,
		Patterns:  redactAll(r.s.red, p.Patterns),
		Always:    redactAll(r.s.red, p.Always),
		Command:   r.s.red.Replace(md.Command),
		Diff:      r.s.red.Replace(md.Diff),
	}
	if md.Filepath != "" {
		req.Path = r.rel(md.Filepath)
	}
	req.Title = r.s.red.Replace(permissionTitle(req))
	pctx, cancel := context.WithCancel(context.Background())
	r.perms[p.ID] = cancel
	action := r.s.cfg.Permissions.forKind(p.Permission)
	r.log.Info("OpenCode asks for permission", "kind", req.Kind, "policy", string(action))
	if action == Ask {
		r.progress("Waiting for permission: " + req.Title)
	}
	r.permWG.Add(1)
	go func() {
		defer r.permWG.Done()
		defer cancel()
		reply := ReplyReject
		switch action {
		case Allow:
			reply = ReplyOnce
		case Ask:
			got, err := r.h.Permission(pctx, req)
			switch {
			case pctx.Err() != nil:
				return // answered elsewhere, or the run is over
			case err != nil:
				r.log.Info("Permission request not answered; rejecting", "error", err)
			case got == ReplyOnce || got == ReplyAlways || got == ReplyReject:
				reply = got
			}
		}
		actx, acancel := context.WithTimeout(context.Background(), r.s.cfg.RequestTimeout)
		defer acancel()
		err := r.s.do(actx, http.MethodPost, "/permission/"+url.PathEscape(p.ID)+"/reply", map[string]string{"reply": string(reply)}, nil)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			err = nil // already answered or withdrawn
		}
		select {
		case r.permReply <- permOutcome{id: p.ID, err: err}:
		default:
			if err != nil {
				r.log.Warn("Permission reply failed", "request", p.ID, "error", err)
			}
		}
	}()
}

// onQuestion rejects a question of the agent (its question tool is off,
// but a sub-agent or a plugin may still ask): the turn would otherwise wait
// for an answer forever.
func (r *run) onQuestion(q questionAsked) {
	if !r.sessions[q.SessionID] || q.ID == "" || r.questions[q.ID] {
		return
	}
	r.questions[q.ID] = true
	r.progress("The agent asked a question; answering is not supported, so it was declined")
	r.permWG.Add(1)
	go func() {
		defer r.permWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.s.cfg.RequestTimeout)
		defer cancel()
		err := r.s.do(ctx, http.MethodPost, "/question/"+url.PathEscape(q.ID)+"/reject", nil, nil)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			err = nil
		}
		if err != nil {
			r.log.Warn("Declining a question failed", "request", q.ID, "error", err)
		}
	}()
}

func permissionTitle(req PermissionRequest) string {
	switch req.Kind {
	case "edit", "write", "patch":
		if req.Path != "" {
			return "Edit " + req.Path
		}
	case "bash":
		if req.Command != "" {
			return "Run: " + oneLine(req.Command, 200)
		}
	}
	if len(req.Patterns) > 0 {
		return req.Kind + ": " + oneLine(strings.Join(req.Patterns, ", "), 200)
	}
	return req.Kind
}

// resync reads the state of the run's sessions (messages, sub-agent
// sessions, pending permissions, status) and applies whatever the stream
// did not deliver. Parts are deduplicated by id and tool state, so nothing
// is applied twice. afterGap marks the text parts as possibly missing
// deltas.
func (r *run) resync(ctx context.Context, afterGap bool) error {
	if afterGap {
		for _, ts := range r.texts {
			ts.gap = true
		}
	}
	var children []sessionInfo
	if err := r.s.do(ctx, http.MethodGet, "/session/"+url.PathEscape(r.main)+"/children", nil, &children); err != nil {
		return err
	}
	for _, c := range children {
		if c.ID != "" {
			r.sessions[c.ID] = true
		}
	}
	ids := make([]string, 0, len(r.sessions))
	for id := range r.sessions {
		if id != r.main {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = append([]string{r.main}, ids...)
	for _, id := range ids {
		var msgs []message
		if err := r.s.do(ctx, http.MethodGet, "/session/"+url.PathEscape(id)+"/message", nil, &msgs); err != nil {
			return err
		}
		for _, m := range msgs {
			r.onMessage(m.Info)
			for _, p := range m.Parts {
				if p.SessionID == "" {
					p.SessionID = m.Info.SessionID
				}
				if p.MessageID == "" {
					p.MessageID = m.Info.ID
				}
				r.onPart(p, true)
			}
		}
	}
	if !r.idle {
		var perms []permissionAsked
		if err := r.s.do(ctx, http.MethodGet, "/permission", nil, &perms); err == nil {
			for _, p := range perms {
				r.onPermission(p)
			}
		}
		var questions []questionAsked
		if err := r.s.do(ctx, http.MethodGet, "/question", nil, &questions); err == nil {
			for _, q := range questions {
				r.onQuestion(q)
			}
		}
	}
	return r.checkStatus(ctx)
}

// noTurnAfter is how long after the prompt an idle session with no answer
// counts as a turn that never ran.
const noTurnAfter = 30 * time.Second

// checkStatus asks whether the session is still busy.
func (r *run) checkStatus(ctx context.Context) error {
	var status map[string]sessionStatus
	if err := r.s.do(ctx, http.MethodGet, "/session/status", nil, &status); err != nil {
		return err
	}
	st, ok := status[r.main]
	if !ok {
		st.Type = "idle" // idle sessions may be absent
	}
	if st.Type == "idle" && !r.started {
		// Not begun, or begun and ended without a trace in the stream: the
		// messages tell.
		for _, info := range r.infos {
			if info.SessionID == r.main && info.Role == "assistant" {
				r.started = true
			}
		}
		// OpenCode marks a session busy as soon as it accepts a prompt; idle
		// long after with no answer means the turn never ran.
		if !r.started && time.Since(r.prompted) > noTurnAfter {
			r.noTurn, r.started = true, true
		}
	}
	r.onStatus(st)
	return nil
}

// result builds the RunResult from the state.
func (r *run) result() *RunResult {
	res := &RunResult{SessionID: r.main, ToolFiles: r.files}
	// OpenCode's ids ascend with time, so id order is the order of events.
	for _, id := range slices.Sorted(maps.Keys(r.commands)) {
		res.Commands = append(res.Commands, r.commands[id])
	}
	var texts []string
	for _, id := range slices.Sorted(maps.Keys(r.texts)) {
		if t := r.texts[id].full; t != "" {
			texts = append(texts, t)
		}
	}
	res.Text = r.s.red.Replace(strings.Join(texts, "\n\n"))
	for _, info := range r.infos {
		if info.Role == "assistant" {
			res.Cost += info.Cost
			res.Tokens.Input += info.Tokens.Input
			res.Tokens.Output += info.Tokens.Output
			res.Tokens.Reasoning += info.Tokens.Reasoning
			res.Tokens.CacheRead += info.Tokens.Cache.Read
			res.Tokens.CacheWrite += info.Tokens.Cache.Write
			res.Steps++
		}
	}
	return res
}

// defaultTitle is the first line of the prompt, shortened.
func defaultTitle(prompt string) string {
	return "opencode-lsp: " + oneLine(prompt, 60)
}

// oneLine returns the first line of s, at most n runes (with "…").
func oneLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " …"
	}
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}

// tail returns the last lines lines and at most maxBytes bytes of s (cut at
// a rune boundary).
func tail(s string, lines, maxBytes int) string {
	t := strings.TrimRight(s, "\n")
	for i, n := len(t)-1, 0; i >= 0; i-- {
		if t[i] == '\n' {
			n++
			if n == lines {
				t = t[i+1:]
				break
			}
		}
	}
	if len(t) > maxBytes {
		t = t[len(t)-maxBytes:]
		for len(t) > 0 && !utf8.RuneStart(t[0]) {
			t = t[1:]
		}
	}
	return t
}

func redactAll(red *strings.Replacer, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = red.Replace(s)
	}
	return out
}
