// Package fakedaytona is a local stand-in for Daytona written from the wire
// specs (shared/specs/daytona.md, with shared/specs/corrections.md winning):
// the management API under /api, the toolbox API under /toolbox/{sandboxId}
// (and the legacy /api/toolbox/{sandboxId}/toolbox route), and preview URLs.
//
// It follows the specs down to status codes and error shapes: NestJS-style
// bodies ({statusCode, timestamp, path, error, message}) on the management API,
// daemon ErrorResponse bodies ({statusCode, message, code, source, timestamp,
// path, method}) on the toolbox, 401 without the bearer key, 502
// SANDBOX_NOT_STARTED for a toolbox call to a sandbox that is not started, 408
// when process/execute times out, and injected 429/503 faults with a
// Retry-After header.
//
// Sandboxes are real: each one is a directory under a temporary root on the
// host, its home is <root>/<id>/home/daytona, and commands run for real on the
// host (process/execute in a process group of its own, sessions in a
// persistent shell as the daemon does). Commands get a small environment
// (PATH, HOME, USER, LANG plus the sandbox's env), never the host process's.
// Every request is recorded (method, path, query, headers) so tests can check
// where a key went.
//
// The fake is for tests: it runs whatever commands it is sent.
package fakedaytona

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure a fake.
type Options struct {
	// APIKey is the bearer key the fake accepts on the management API and the
	// toolbox. Required.
	APIKey string
	// StartDelay is how long a sandbox stays in "creating" / "starting" /
	// "restoring" before it reports "started".
	StartDelay time.Duration
	// StartAfterPolls, when > 0, additionally keeps a starting sandbox from
	// reporting "started" until it has been read with GET /sandbox/{id} this
	// many times (a deterministic way to make clients poll).
	StartAfterPolls int
	// LegacyExitCode makes process/execute answer with the older daemon's
	// "code" field instead of "exitCode".
	LegacyExitCode bool
	// OmitToolboxProxyURL leaves toolboxProxyUrl out of Sandbox DTOs, so a
	// client has to call GET /sandbox/{id}/toolbox-proxy-url.
	OmitToolboxProxyURL bool
	// AdvertisedToolboxURL, when set, is returned as toolboxProxyUrl (and by
	// /toolbox-proxy-url and /config) instead of the fake's own toolbox URL,
	// to test an override such as DAYTONA_TOOLBOX_URL.
	AdvertisedToolboxURL string
	// LogFrameSize is the largest payload of one follow-logs WebSocket frame
	// (the daemon reads its log in 1024-byte chunks). Small values make the
	// stdout/stderr markers span frames. Default 1024.
	LogFrameSize int
	// TextLogFrames sends follow-logs frames as text messages (as the daemon
	// version read does) instead of binary ones (corrections §6).
	TextLogFrames bool
	// FollowDropAfter, when > 0, makes every follow-logs WebSocket go away
	// (close status 1001) after sending that many bytes, as a proxy that
	// drops long connections would.
	FollowDropAfter int
	// TerminationGrace is how long a timed-out process/execute command gets
	// between SIGTERM and SIGKILL. Default 1s.
	TerminationGrace time.Duration
	// Root is the directory that holds the sandboxes' file systems; a new
	// temporary directory (removed by Close) when empty.
	Root string
}

// Request is one request the fake received.
type Request struct {
	// Target is "api", "toolbox" or "preview".
	Target string
	Method string
	// Path is the URL path as received (for example /api/sandbox or
	// /toolbox/<id>/process/execute).
	Path   string
	Query  url.Values
	Header http.Header
	// Status is the status code the fake answered with (101 for a WebSocket
	// upgrade).
	Status int
}

// Fault makes the fake answer matching requests with an error instead of
// serving them.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string
	// Path is a prefix of the request path (for example "/api/sandbox" or
	// "/toolbox/"); "" matches any path.
	Path string
	// Status is the status to answer with (429, 503, 500, ...).
	Status int
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// WebSocket restricts the fault to WebSocket upgrade requests (the
	// follow-logs socket).
	WebSocket bool
	// Count is how many matching requests fail; 0 means 1.
	Count int
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	ln       net.Listener
	srv      *http.Server
	url      string
	root     string
	ownsRoot bool

	mu        sync.Mutex
	sandboxes map[string]*sandbox
	order     []string // creation order, for listing
	requests  []Request
	faults    []*Fault
	closed    bool
}

// New starts a fake on a loopback port.
func New(opts Options) (*Server, error) {
	if opts.APIKey == "" {
		return nil, errors.New("fakedaytona: Options.APIKey is required")
	}
	if opts.LogFrameSize <= 0 {
		opts.LogFrameSize = 1024
	}
	if opts.TerminationGrace <= 0 {
		opts.TerminationGrace = time.Second
	}
	s := &Server{opts: opts, sandboxes: map[string]*sandbox{}}
	if opts.Root == "" {
		dir, err := os.MkdirTemp("", "fakedaytona-")
		if err != nil {
			return nil, fmt.Errorf("fakedaytona: %w", err)
		}
		s.root, s.ownsRoot = dir, true
	} else {
		abs, err := filepath.Abs(opts.Root)
		if err != nil {
			return nil, fmt.Errorf("fakedaytona: %w", err)
		}
		s.root = abs
	}
	// Resolve symlinks (a /tmp symlink would make paths the fake hands out
	// differ from what commands print with pwd).
	if real, err := filepath.EvalSymlinks(s.root); err == nil {
		s.root = real
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakedaytona: %w", err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the fake's base URL (http://127.0.0.1:port).
func (s *Server) URL() string { return s.url }

// APIURL is the management API base, to be used as DAYTONA_API_URL.
func (s *Server) APIURL() string { return s.url + "/api" }

// ToolboxURL is the toolbox proxy base (DTO field toolboxProxyUrl); the
// toolbox of sandbox id is ToolboxURL()+"/"+id.
func (s *Server) ToolboxURL() string { return s.url + "/toolbox" }

func (s *Server) advertisedToolboxURL() string {
	if s.opts.AdvertisedToolboxURL != "" {
		return s.opts.AdvertisedToolboxURL
	}
	return s.ToolboxURL()
}

// Close stops the server, kills every process of every sandbox and removes
// the temporary root it created.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sbs := make([]*sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		sbs = append(sbs, sb)
	}
	s.mu.Unlock()
	for _, sb := range sbs {
		sb.shutdown()
	}
	err := s.srv.Close()
	if s.ownsRoot {
		os.RemoveAll(s.root)
	}
	return err
}

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// InjectFault adds a fault; faults are matched in the order they were added.
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// SandboxState is what a test can read about one fake sandbox.
type SandboxState struct {
	ID     string
	State  string
	Labels map[string]string
	Env    map[string]string
	// Home is the absolute host path of the sandbox user's home directory.
	Home string
	// AutoStopInterval is the create request's value, in minutes.
	AutoStopInterval int
}

// Sandbox reports one sandbox, or false when it does not exist (deleted
// sandboxes do not).
func (s *Server) Sandbox(id string) (SandboxState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sandboxes[id]
	if !ok {
		return SandboxState{}, false
	}
	s.refreshLocked(sb, false)
	return SandboxState{ID: sb.id, State: sb.state, Labels: cloneMap(sb.labels), Env: cloneMap(sb.env),
		Home: sb.home, AutoStopInterval: sb.autoStop}, true
}

// SandboxIDs lists the sandboxes that exist, oldest first.
func (s *Server) SandboxIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range s.order {
		if _, ok := s.sandboxes[id]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// SetState forces a sandbox into state (for example "stopped", "archived" or
// "error" with reason as errorReason). Stopping states kill the sandbox's
// processes as a real stop would.
func (s *Server) SetState(id, state, reason string) error {
	s.mu.Lock()
	sb, ok := s.sandboxes[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("fakedaytona: no sandbox %s", id)
	}
	sb.state, sb.errorReason, sb.updatedAt = state, reason, time.Now()
	sb.pendingPolls = 0
	s.mu.Unlock()
	if state != "started" && !isStarting(state) {
		sb.killAll()
	}
	return nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	target := "api"
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/toolbox/"), strings.HasPrefix(p, "/api/toolbox/"):
		target = "toolbox"
	case strings.HasPrefix(p, "/api/") || p == "/api":
	default:
		target = ""
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Target: target, Method: r.Method, Path: p,
			Query: cloneValues(r.URL.Query()), Header: r.Header.Clone(), Status: rec.status})
		s.mu.Unlock()
	}()
	if target == "" {
		writeNest(rec, r, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, p))
		return
	}
	if f := s.takeFault(r); f != nil {
		if f.RetryAfter != "" {
			rec.Header().Set("Retry-After", f.RetryAfter)
		}
		msg := http.StatusText(f.Status)
		if f.Status == http.StatusTooManyRequests {
			msg = "ThrottlerException: Too Many Requests"
		}
		if target == "toolbox" {
			writeDaemon(rec, r, f.Status, statusCode(f.Status), msg)
		} else {
			writeNest(rec, r, f.Status, msg)
		}
		return
	}
	if !s.authorized(r) {
		if target == "toolbox" {
			writeDaemon(rec, r, http.StatusUnauthorized, "UNAUTHORIZED", "invalid API key")
		} else {
			writeNest(rec, r, http.StatusUnauthorized, "invalid API key")
		}
		return
	}
	if target == "toolbox" {
		s.serveToolbox(rec, r)
		return
	}
	s.serveAPI(rec, r)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && tok == s.opts.APIKey
}

func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if f.Path != "" && !strings.HasPrefix(r.URL.Path, f.Path) {
			continue
		}
		if f.WebSocket && !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		cp := *f
		return &cp
	}
	return nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and WebSocket hijacking reach the
// underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeNest writes a management API error the way the API's NestJS
// all-exceptions filter does (spec §3.4).
func writeNest(w http.ResponseWriter, r *http.Request, status int, message string) {
	writeJSON(w, status, map[string]any{
		"statusCode": status,
		"timestamp":  time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"path":       r.URL.Path,
		"error":      http.StatusText(status),
		"message":    message,
	})
}

// writeDaemon writes a toolbox error in the daemon's ErrorResponse shape
// (spec §4.4); path is the toolbox-relative path as the daemon sees it.
func writeDaemon(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	writeJSON(w, status, map[string]any{
		"statusCode": status,
		"message":    message,
		"code":       code,
		"source":     "DAYTONA_DAEMON",
		"timestamp":  time.Now().UTC().Format(time.RFC3339),
		"path":       daemonPath(r.URL.Path),
		"method":     r.Method,
	})
}

// daemonPath strips the proxy prefix (/toolbox/<id> or
// /api/toolbox/<id>/toolbox) from a toolbox request path.
func daemonPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/api/toolbox/"); ok {
		if _, after, ok := strings.Cut(rest, "/toolbox"); ok {
			return after
		}
		return "/"
	}
	rest := strings.TrimPrefix(p, "/toolbox/")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}

func statusCode(status int) string {
	switch status {
	case 400:
		return "BAD_REQUEST"
	case 401:
		return "UNAUTHORIZED"
	case 403:
		return "FORBIDDEN"
	case 404:
		return "NOT_FOUND"
	case 408:
		return "REQUEST_TIMEOUT"
	case 409:
		return "CONFLICT"
	case 410:
		return "GONE"
	case 422:
		return "UNPROCESSABLE_ENTITY"
	case 429:
		return "TOO_MANY_REQUESTS"
	case 503:
		return "SERVICE_UNAVAILABLE"
	}
	return strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
