package fakee2b

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sandboxJSON is the control plane's Sandbox schema (spec §2.1).
type sandboxJSON struct {
	TemplateID         string  `json:"templateID"`
	SandboxID          string  `json:"sandboxID"`
	Alias              string  `json:"alias,omitempty"`
	ClientID           string  `json:"clientID"`
	EnvdVersion        string  `json:"envdVersion"`
	EnvdAccessToken    string  `json:"envdAccessToken,omitempty"`
	TrafficAccessToken *string `json:"trafficAccessToken"`
	Domain             *string `json:"domain"`
}

// detailJSON is SandboxDetail (spec §2.2); listedJSON is ListedSandbox (§2.5).
type detailJSON struct {
	TemplateID          string            `json:"templateID"`
	Alias               string            `json:"alias,omitempty"`
	SandboxID           string            `json:"sandboxID"`
	ClientID            string            `json:"clientID"`
	StartedAt           time.Time         `json:"startedAt"`
	EndAt               time.Time         `json:"endAt"`
	State               string            `json:"state"`
	CPUCount            int               `json:"cpuCount"`
	MemoryMB            int               `json:"memoryMB"`
	DiskSizeMB          int               `json:"diskSizeMB"`
	EnvdVersion         string            `json:"envdVersion"`
	EnvdAccessToken     string            `json:"envdAccessToken,omitempty"`
	Domain              *string           `json:"domain"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	AllowInternetAccess *bool             `json:"allowInternetAccess"`
	Lifecycle           map[string]any    `json:"lifecycle"`
	Network             map[string]any    `json:"network"`
	VolumeMounts        []any             `json:"volumeMounts"`
}

type listedJSON struct {
	TemplateID   string            `json:"templateID"`
	Alias        string            `json:"alias,omitempty"`
	SandboxID    string            `json:"sandboxID"`
	ClientID     string            `json:"clientID"`
	StartedAt    time.Time         `json:"startedAt"`
	EndAt        time.Time         `json:"endAt"`
	CPUCount     int               `json:"cpuCount"`
	MemoryMB     int               `json:"memoryMB"`
	DiskSizeMB   int               `json:"diskSizeMB"`
	EnvdVersion  string            `json:"envdVersion"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	State        string            `json:"state"`
	VolumeMounts []any             `json:"volumeMounts,omitempty"`
}

const fakeClientID = "6532622b"

func (s *Server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/sandboxes", func(w http.ResponseWriter, r *http.Request) { s.create(w, r, 300) })
	mux.HandleFunc("POST /sandboxes", func(w http.ResponseWriter, r *http.Request) { s.create(w, r, 15) })
	mux.HandleFunc("GET /sandboxes/{id}", s.get)
	mux.HandleFunc("DELETE /sandboxes/{id}", s.kill)
	mux.HandleFunc("POST /sandboxes/{id}/timeout", s.setTimeout)
	mux.HandleFunc("GET /v2/sandboxes", func(w http.ResponseWriter, r *http.Request) { s.list(w, r, true) })
	mux.HandleFunc("GET /sandboxes", func(w http.ResponseWriter, r *http.Request) { s.list(w, r, false) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-KEY")
		if key == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.APIKey)) != 1 {
			writeJSONError(w, http.StatusUnauthorized, "Invalid API key")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) domainPtr() *string {
	if s.opts.Domain == "" {
		return nil
	}
	d := s.opts.Domain
	return &d
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, defaultTimeout int) {
	var body struct {
		TemplateID string            `json:"templateID"`
		Timeout    *int              `json:"timeout"`
		Metadata   map[string]string `json:"metadata"`
		EnvVars    map[string]string `json:"envVars"`
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		writeJSONError(w, http.StatusBadRequest, "request body has an error: "+err.Error())
		return
	}
	if body.TemplateID == "" {
		writeJSONError(w, http.StatusBadRequest, `request body has an error: property "templateID" is missing`)
		return
	}
	if s.opts.Templates != nil && !slices.Contains(s.opts.Templates, body.TemplateID) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("template '%s' not found", body.TemplateID))
		return
	}
	timeout := defaultTimeout
	if body.Timeout != nil {
		timeout = *body.Timeout
	}
	if timeout < 0 || timeout > s.opts.MaxTimeout {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("timeout must be between 0 and %d seconds", s.opts.MaxTimeout))
		return
	}
	id := randomID(20)
	root, home, err := s.mkdirTemp(id)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "sandbox create failed")
		return
	}
	sb := &sandbox{
		id:         id,
		templateID: "tpl" + randomID(17),
		alias:      body.TemplateID,
		token:      randomToken("eat_"),
		metadata:   body.Metadata,
		envVars:    body.EnvVars,
		startedAt:  time.Now().UTC(),
		root:       root,
		home:       home,
		procs:      map[uint32]*proc{},
		dead:       make(chan struct{}),
	}
	if err := sb.startHolder(); err != nil {
		os.RemoveAll(root)
		writeJSONError(w, http.StatusInternalServerError, "sandbox create failed: "+err.Error())
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sb.kill()
		writeJSONError(w, http.StatusServiceUnavailable, "service is shutting down")
		return
	}
	s.sandboxes[id] = sb
	s.mu.Unlock()
	s.resetTimer(sb, timeout)
	writeJSON(w, http.StatusCreated, sandboxJSON{
		TemplateID:      sb.templateID,
		SandboxID:       id,
		Alias:           sb.alias,
		ClientID:        fakeClientID,
		EnvdVersion:     s.opts.EnvdVersion,
		EnvdAccessToken: sb.token,
		Domain:          s.domainPtr(),
	})
}

// resetTimer sets the sandbox's end to now+timeout; when it passes the
// sandbox is killed like the real platform does.
func (s *Server) resetTimer(sb *sandbox, timeout int) {
	d := time.Duration(timeout) * time.Second
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.endAt = time.Now().UTC().Add(d)
	if sb.timer != nil {
		sb.timer.Stop()
	}
	sb.timer = time.AfterFunc(d, func() { s.KillSandbox(sb.id) })
}

func (s *Server) notFound(w http.ResponseWriter, id string) {
	writeJSONError(w, http.StatusNotFound, fmt.Sprintf("sandbox %q not found", id))
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sb := s.lookup(id)
	if sb == nil {
		s.notFound(w, id)
		return
	}
	sb.mu.Lock()
	endAt := sb.endAt
	sb.mu.Unlock()
	writeJSON(w, http.StatusOK, detailJSON{
		TemplateID: sb.templateID, Alias: sb.alias, SandboxID: id, ClientID: fakeClientID,
		StartedAt: sb.startedAt, EndAt: endAt, State: "running",
		CPUCount: 2, MemoryMB: 512, DiskSizeMB: 1024,
		EnvdVersion: s.opts.EnvdVersion, EnvdAccessToken: sb.token, Domain: s.domainPtr(),
		Metadata:     sb.metadata,
		Lifecycle:    map[string]any{"onTimeout": "kill", "autoResume": false},
		Network:      map[string]any{"allowPublicTraffic": true},
		VolumeMounts: []any{},
	})
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.KillSandbox(id) {
		s.notFound(w, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		Timeout *int `json:"timeout"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Timeout == nil {
		writeJSONError(w, http.StatusBadRequest, `request body has an error: property "timeout" is missing`)
		return
	}
	if *body.Timeout < 0 || *body.Timeout > s.opts.MaxTimeout {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("timeout must be between 0 and %d seconds", s.opts.MaxTimeout))
		return
	}
	sb := s.lookup(id)
	if sb == nil {
		s.notFound(w, id)
		return
	}
	s.resetTimer(sb, *body.Timeout)
	w.WriteHeader(http.StatusNoContent)
}

// list serves GET /v2/sandboxes (v2: state filter and pagination) and the
// deprecated GET /sandboxes (running only, no pagination).
func (s *Server) list(w http.ResponseWriter, r *http.Request, v2 bool) {
	q := r.URL.Query()
	var want map[string]string
	if m := q.Get("metadata"); m != "" {
		vals, err := url.ParseQuery(m)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid metadata query: "+err.Error())
			return
		}
		want = map[string]string{}
		for k, v := range vals {
			want[k] = v[0]
		}
	}
	states := map[string]bool{"running": true, "paused": true}
	if v2 {
		if st := q["state"]; len(st) > 0 {
			states = map[string]bool{}
			for _, v := range st {
				for _, one := range strings.Split(v, ",") {
					if one != "running" && one != "paused" {
						writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("invalid state %q", one))
						return
					}
					states[one] = true
				}
			}
		}
	}
	limit := 100
	if l := q.Get("limit"); v2 && l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			writeJSONError(w, http.StatusBadRequest, "limit must be between 1 and 100")
			return
		}
		limit = n
	}
	s.mu.Lock()
	var all []*sandbox
	for _, sb := range s.sandboxes {
		all = append(all, sb)
	}
	s.mu.Unlock()
	asc := v2 && q.Get("order") == "asc"
	slices.SortFunc(all, func(a, b *sandbox) int {
		c := a.startedAt.Compare(b.startedAt)
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		if !asc {
			c = -c
		}
		return c
	})
	var matched []listedJSON
	for _, sb := range all {
		if !states["running"] {
			continue
		}
		ok := true
		for k, v := range want {
			if sb.metadata[k] != v {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		sb.mu.Lock()
		endAt := sb.endAt
		sb.mu.Unlock()
		matched = append(matched, listedJSON{
			TemplateID: sb.templateID, Alias: sb.alias, SandboxID: sb.id, ClientID: fakeClientID,
			StartedAt: sb.startedAt, EndAt: endAt, CPUCount: 2, MemoryMB: 512, DiskSizeMB: 1024,
			EnvdVersion: s.opts.EnvdVersion, Metadata: sb.metadata, State: "running",
		})
	}
	w.Header().Set("X-Total-Running", strconv.Itoa(len(matched)))
	if v2 {
		start := 0
		if tok := q.Get("nextToken"); tok != "" {
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n > len(matched) {
				writeJSONError(w, http.StatusBadRequest, "invalid nextToken")
				return
			}
			start = n
		}
		end := min(start+limit, len(matched))
		if end < len(matched) {
			w.Header().Set("X-Next-Token", strconv.Itoa(end))
		}
		matched = matched[start:end]
	}
	if matched == nil {
		matched = []listedJSON{}
	}
	writeJSON(w, http.StatusOK, matched)
}
