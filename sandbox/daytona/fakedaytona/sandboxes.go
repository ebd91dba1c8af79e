package fakedaytona

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sandbox is one fake sandbox. Fields above mu are guarded by Server.mu.
type sandbox struct {
	srv *Server

	id, name, snapshot, user, target  string
	labels, env                       map[string]string
	public                            bool
	state, desired, errorReason       string
	autoStop, autoArchive, autoDelete int
	createdAt, updatedAt              time.Time
	readyAt                           time.Time
	pendingPolls                      int
	token                             string
	dir, home, daemonDir              string

	mu       sync.Mutex // guards the fields below
	sessions map[string]*session
	procs    map[int]struct{} // pids of process/execute commands and session shells
	previews map[int]*previewProxy
	goneCh   chan struct{}
}

func isStarting(state string) bool {
	return state == "creating" || state == "starting" || state == "restoring" || state == "pending_build" ||
		state == "pulling_snapshot"
}

// refreshLocked advances time-driven transitions; poll counts a GET by a
// client. s.mu is held.
func (s *Server) refreshLocked(sb *sandbox, poll bool) {
	if isStarting(sb.state) {
		if poll && sb.pendingPolls > 0 {
			sb.pendingPolls--
		}
		if !time.Now().Before(sb.readyAt) && sb.pendingPolls == 0 {
			sb.state, sb.updatedAt = "started", time.Now()
			sb.token = newToken() // the preview token resets when a sandbox (re)starts
		}
	}
	if sb.state == "stopping" {
		sb.state, sb.updatedAt = "stopped", time.Now()
	}
}

// dto is the Sandbox DTO of spec §3.1.
func (s *Server) dto(sb *sandbox) map[string]any {
	d := map[string]any{
		"id":                  sb.id,
		"organizationId":      "fake-organization",
		"name":                sb.name,
		"snapshot":            sb.snapshot,
		"user":                sb.user,
		"env":                 orEmpty(sb.env),
		"labels":              orEmpty(sb.labels),
		"public":              sb.public,
		"networkBlockAll":     false,
		"target":              sb.target,
		"cpu":                 1,
		"gpu":                 0,
		"memory":              1,
		"disk":                3,
		"state":               sb.state,
		"desiredState":        sb.desired,
		"errorReason":         nil,
		"autoStopInterval":    sb.autoStop,
		"autoArchiveInterval": sb.autoArchive,
		"autoDeleteInterval":  sb.autoDelete,
		"createdAt":           sb.createdAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		"updatedAt":           sb.updatedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		"daemonVersion":       "v0.118.0",
		"runnerId":            "fake-runner",
	}
	if sb.errorReason != "" {
		d["errorReason"] = sb.errorReason
		d["recoverable"] = false
	}
	if !s.opts.OmitToolboxProxyURL {
		d["toolboxProxyUrl"] = s.advertisedToolboxURL()
	}
	return d
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/api")
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case r.Method == http.MethodGet && rest == "/config":
		writeJSON(w, 200, map[string]any{"proxyToolboxUrl": s.advertisedToolboxURL()})
		return
	case parts[0] != "sandbox":
		writeNest(w, r, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
		return
	case len(parts) == 1 && r.Method == http.MethodPost:
		s.createSandbox(w, r)
		return
	case len(parts) == 1 && r.Method == http.MethodGet:
		s.listSandboxes(w, r)
		return
	case len(parts) == 1:
		writeNest(w, r, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
		return
	}
	id := parts[1]
	s.mu.Lock()
	sb := s.lookupLocked(id)
	if sb == nil {
		s.mu.Unlock()
		writeNest(w, r, http.StatusNotFound, fmt.Sprintf("Sandbox with ID or name %s not found", id))
		return
	}
	s.refreshLocked(sb, r.Method == http.MethodGet && len(parts) == 2)
	op := strings.Join(parts[2:], "/")
	switch {
	case len(parts) == 2 && r.Method == http.MethodGet:
		d := s.dto(sb)
		s.mu.Unlock()
		writeJSON(w, 200, d)
	case len(parts) == 2 && r.Method == http.MethodDelete:
		sb.state, sb.desired, sb.updatedAt = "destroying", "destroyed", time.Now()
		d := s.dto(sb)
		delete(s.sandboxes, sb.id)
		s.mu.Unlock()
		sb.shutdown()
		os.RemoveAll(sb.dir)
		writeJSON(w, 200, d)
	case op == "start" && r.Method == http.MethodPost:
		switch sb.state {
		case "started":
		case "stopped", "archived", "paused", "error":
			if sb.state == "error" && sb.errorReason != "" {
				s.mu.Unlock()
				writeNest(w, r, http.StatusBadRequest, "Sandbox is in an errored state: "+sb.errorReason)
				return
			}
			next := "starting"
			if sb.state == "archived" {
				next = "restoring"
			}
			sb.state, sb.desired, sb.updatedAt = next, "started", time.Now()
			sb.readyAt = time.Now().Add(s.opts.StartDelay)
			sb.pendingPolls = s.opts.StartAfterPolls
			s.refreshLocked(sb, false)
		case "starting", "restoring", "creating":
		default:
			st := sb.state
			s.mu.Unlock()
			writeNest(w, r, http.StatusBadRequest, "Sandbox cannot be started in state "+st)
			return
		}
		d := s.dto(sb)
		s.mu.Unlock()
		writeJSON(w, 200, d)
	case op == "stop" && r.Method == http.MethodPost:
		if sb.state == "started" || isStarting(sb.state) {
			sb.state, sb.desired, sb.updatedAt = "stopping", "stopped", time.Now()
		}
		d := s.dto(sb)
		s.mu.Unlock()
		sb.killAll()
		writeJSON(w, 200, d)
	case op == "toolbox-proxy-url" && r.Method == http.MethodGet:
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"url": s.advertisedToolboxURL()})
	case len(parts) == 5 && parts[2] == "ports" && parts[4] == "preview-url" && r.Method == http.MethodGet:
		port, err := strconv.Atoi(parts[3])
		if err != nil || port < 1 || port > 65535 {
			s.mu.Unlock()
			writeNest(w, r, http.StatusBadRequest, "Invalid port")
			return
		}
		s.mu.Unlock()
		p, err := sb.preview(port)
		if err != nil {
			writeNest(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		s.mu.Lock()
		tok := sb.token
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"sandboxId": sb.id, "url": p.url, "token": tok})
	case op == "labels" && r.Method == http.MethodPut:
		var body struct {
			Labels map[string]string `json:"labels"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.mu.Unlock()
			writeNest(w, r, http.StatusBadRequest, "Invalid request body")
			return
		}
		sb.labels = body.Labels
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"labels": orEmpty(body.Labels)})
	case (op == "last-activity" || strings.HasPrefix(op, "autostop/")) && r.Method == http.MethodPost:
		if v, ok := strings.CutPrefix(op, "autostop/"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				s.mu.Unlock()
				writeNest(w, r, http.StatusBadRequest, "Invalid interval")
				return
			}
			sb.autoStop = n
		}
		sb.updatedAt = time.Now()
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		s.mu.Unlock()
		writeNest(w, r, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) lookupLocked(idOrName string) *sandbox {
	if sb, ok := s.sandboxes[idOrName]; ok {
		return sb
	}
	for _, sb := range s.sandboxes {
		if sb.name == idOrName {
			return sb
		}
	}
	return nil
}

// createSandbox serves POST /sandbox (spec §3.1).
func (s *Server) createSandbox(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name                string            `json:"name"`
		Snapshot            string            `json:"snapshot"`
		User                string            `json:"user"`
		Env                 map[string]string `json:"env"`
		Labels              map[string]string `json:"labels"`
		Public              bool              `json:"public"`
		Target              string            `json:"target"`
		AutoStopInterval    *int              `json:"autoStopInterval"`
		AutoArchiveInterval *int              `json:"autoArchiveInterval"`
		AutoDeleteInterval  *int              `json:"autoDeleteInterval"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeNest(w, r, http.StatusBadRequest, "Invalid request body: "+err.Error())
		return
	}
	for k := range body.Labels {
		if k == "" {
			writeNest(w, r, http.StatusBadRequest, "labels must not have empty keys")
			return
		}
	}
	id := newID()
	now := time.Now()
	sb := &sandbox{
		srv: s, id: id, name: id, snapshot: "daytonaio/sandbox:0.4.3", user: "daytona", target: "us",
		labels: body.Labels, env: body.Env, public: body.Public,
		state: "creating", desired: "started",
		autoStop: 15, autoArchive: 10080, autoDelete: -1,
		createdAt: now, updatedAt: now, readyAt: now.Add(s.opts.StartDelay),
		pendingPolls: s.opts.StartAfterPolls, token: newToken(),
		sessions: map[string]*session{}, procs: map[int]struct{}{}, previews: map[int]*previewProxy{},
	}
	if body.Name != "" {
		sb.name = body.Name
	}
	if body.Snapshot != "" {
		sb.snapshot = body.Snapshot
	}
	if body.User != "" {
		sb.user = body.User
	}
	if body.Target != "" {
		sb.target = body.Target
	}
	if body.AutoStopInterval != nil {
		sb.autoStop = *body.AutoStopInterval
	}
	if body.AutoArchiveInterval != nil {
		sb.autoArchive = *body.AutoArchiveInterval
	}
	if body.AutoDeleteInterval != nil {
		sb.autoDelete = *body.AutoDeleteInterval
	}
	sb.dir = filepath.Join(s.root, id)
	sb.home = filepath.Join(sb.dir, "home", "daytona")
	sb.daemonDir = filepath.Join(sb.dir, "daemon")
	for _, d := range []string{sb.home, sb.daemonDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			writeNest(w, r, http.StatusInternalServerError, err.Error())
			return
		}
	}
	s.mu.Lock()
	if s.lookupLocked(sb.name) != nil {
		s.mu.Unlock()
		os.RemoveAll(sb.dir)
		writeNest(w, r, http.StatusConflict, fmt.Sprintf("Sandbox with name %s already exists", sb.name))
		return
	}
	s.sandboxes[id] = sb
	s.order = append(s.order, id)
	d := s.dto(sb)
	s.mu.Unlock()
	writeJSON(w, 200, d)
}

// listSandboxes serves GET /sandbox with cursor paging and the labels and
// states filters (spec §3.3, corrections §3).
func (s *Server) listSandboxes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			writeNest(w, r, http.StatusBadRequest, "limit must be a number between 1 and 200")
			return
		}
		limit = n
	}
	var labels map[string]string
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &labels); err != nil {
			writeNest(w, r, http.StatusBadRequest, "labels must be a JSON object of strings")
			return
		}
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			writeNest(w, r, http.StatusBadRequest, "Invalid cursor")
			return
		}
		start = n
	}
	states := q["states"]
	s.mu.Lock()
	var match []*sandbox
	for _, id := range s.order {
		sb, ok := s.sandboxes[id]
		if !ok {
			continue
		}
		s.refreshLocked(sb, false)
		if !labelsMatch(sb.labels, labels) {
			continue
		}
		if len(states) > 0 && !contains(states, sb.state) {
			continue
		}
		match = append(match, sb)
	}
	sort.SliceStable(match, func(i, j int) bool { return match[i].createdAt.Before(match[j].createdAt) })
	items := []map[string]any{}
	var next any
	for i := start; i < len(match) && len(items) < limit; i++ {
		items = append(items, s.dto(match[i]))
		if len(items) == limit && i+1 < len(match) {
			next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(i + 1)))
		}
	}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"items": items, "nextCursor": next})
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// baseEnv is the environment commands of the sandbox start with: a small
// fixed set plus the sandbox's env, never the host process's environment.
func (sb *sandbox) baseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := map[string]string{
		"PATH": path, "HOME": sb.home, "USER": sb.user, "LOGNAME": sb.user, "LANG": "C.UTF-8",
		"SHELL": "/bin/sh",
	}
	sb.srv.mu.Lock()
	for k, v := range sb.env {
		env[k] = v
	}
	sb.srv.mu.Unlock()
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// started reports whether the sandbox exists and is started, refreshing
// time-driven transitions.
func (s *Server) sandboxForToolbox(id string) (*sandbox, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sandboxes[id]
	if !ok {
		return nil, ""
	}
	s.refreshLocked(sb, false)
	return sb, sb.state
}
