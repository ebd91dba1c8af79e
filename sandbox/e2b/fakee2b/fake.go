// Package fakee2b is a test double of E2B: the control-plane REST API and
// the in-sandbox daemon envd (Connect services process.Process and
// filesystem.Filesystem with the JSON and binary codecs, plus the plain HTTP
// endpoints /health and /files), written from shared/specs/e2b.md with
// shared/specs/corrections.md winning where they differ.
//
// It follows the wire behaviour of the real services, error shapes included:
// control-plane errors are {"code":<int>,"message":...}; envd handler errors
// travel inside HTTP 200 streams; a sandbox that is gone answers 502 at the
// edge; 429/503 carry Retry-After when a fault says so.
//
// Commands run for real on the host, inside a per-sandbox temporary root
// whose home/user directory plays the sandbox user's home (relative paths
// resolve against it, and an absolute path outside the root is taken as
// relative to the root). Like envd, SendSignal and the Connect-Timeout-Ms
// deadline signal only the process itself, and dropping a Start stream leaves
// the process running. As under envd, a command is not the leader of a
// process group: all of a sandbox's commands join one group, led by a holder
// process the fake starts with the sandbox, so that killing the sandbox (or
// closing the server) can end everything it started; commands that made a
// group of their own (setsid) are killed by their pid's group too.
//
// Public ports are served like E2B's edge serves <port>-<id>.<domain>: a
// request to the envd listener whose E2b-Sandbox-Port header names another
// port than envd's is forwarded to that port on the host, where the
// sandbox's commands listen (recorded as [ServicePreview]).
//
// Every request is recorded ([Server.Requests]) so tests can check which
// headers went where, and faults can be injected ([Server.InjectFault],
// [Server.KillSandbox]).
package fakee2b

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a fake.
type Options struct {
	// APIKey is the only key the control plane accepts in X-API-KEY.
	APIKey string
	// Domain is returned as the sandboxes' domain; "" returns null, so that
	// clients fall back to their own domain.
	Domain string
	// Dir is where the per-sandbox roots are created ("" = os.TempDir()).
	Dir string
	// Templates lists the template IDs or aliases Create accepts; nil accepts
	// any name.
	Templates []string
	// EnvdVersion is reported in Sandbox.envdVersion (default "0.5.8").
	EnvdVersion string
	// KeepaliveInterval, when set, replaces the interval a stream's
	// Keepalive-Ping-Interval header asks for (in seconds) so tests see
	// keep-alive events quickly.
	KeepaliveInterval time.Duration
	// MaxTimeout is the largest create/set timeout accepted, in seconds
	// (default 3600, the Hobby tier's limit).
	MaxTimeout int
}

// Service names used in [Request.Service] and [Fault.Service].
// ServicePreview is a request for another port of a sandbox through the
// shared sandbox host (E2b-Sandbox-Port other than envd's 49983), which the
// fake forwards to that port on the host.
const (
	ServiceAPI     = "api"
	ServiceEnvd    = "envd"
	ServicePreview = "preview"
)

// envdPort is envd's port inside a sandbox.
const envdPort = 49983

// Request is one recorded request.
type Request struct {
	Service  string // ServiceAPI or ServiceEnvd
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	// Body holds the first 64 KiB of the request body that the handler read.
	Body []byte
}

// Fault makes requests that match answer with an error status instead of
// being served.
type Fault struct {
	Service string // ServiceAPI or ServiceEnvd; "" matches both
	Method  string // "" matches any method
	Path    string // exact URL path; "" matches any path
	// Sandbox limits an envd fault to one sandbox ID ("" = any).
	Sandbox string
	// Status is the HTTP status to answer (429, 503, 502, 507, ...).
	Status int
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// Times is how many matching requests fail (0 = 1).
	Times int
}

// Server is a running fake. APIURL is the control-plane base (E2B_API_URL),
// SandboxURL the envd base every sandbox is reached at (E2B_SANDBOX_URL, with
// the E2b-Sandbox-Id header naming the sandbox), Domain the E2B domain.
type Server struct {
	APIURL     string
	SandboxURL string
	Domain     string

	opts Options
	api  *httptest.Server
	envd *httptest.Server

	mu        sync.Mutex
	requests  []*recorded
	faults    []*Fault
	sandboxes map[string]*sandbox
	closed    bool
}

type recorded struct {
	req  Request
	body capBuffer
}

// Start starts a fake on two loopback listeners.
func Start(opts Options) (*Server, error) {
	if opts.APIKey == "" {
		return nil, fmt.Errorf("fakee2b: Options.APIKey is required")
	}
	if opts.EnvdVersion == "" {
		opts.EnvdVersion = "0.5.8"
	}
	if opts.MaxTimeout == 0 {
		opts.MaxTimeout = 3600
	}
	s := &Server{opts: opts, sandboxes: map[string]*sandbox{}}
	s.api = httptest.NewServer(s.record(ServiceAPI, s.apiHandler()))
	s.envd = httptest.NewServer(s.record(ServiceEnvd, s.envdHandler()))
	s.APIURL = s.api.URL
	s.SandboxURL = s.envd.URL
	s.Domain = opts.Domain
	if s.Domain == "" {
		s.Domain = "e2b.test"
	}
	return s, nil
}

// New starts a fake for a test and closes it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close kills every sandbox (ending their processes and removing their
// roots) and stops both listeners.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	sbs := make([]*sandbox, 0, len(s.sandboxes))
	for id, sb := range s.sandboxes {
		sbs = append(sbs, sb)
		delete(s.sandboxes, id)
	}
	s.mu.Unlock()
	for _, sb := range sbs {
		sb.kill()
	}
	s.api.CloseClientConnections()
	s.envd.CloseClientConnections()
	s.api.Close()
	s.envd.Close()
}

// Requests returns a copy of every request received so far, in arrival
// order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.req
		out[i].Header = r.req.Header.Clone()
		out[i].Body = r.body.bytes()
	}
	return out
}

// InjectFault adds a fault; faults are consumed in the order added.
func (s *Server) InjectFault(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// KillSandbox makes a sandbox die as if the platform had ended it: its
// processes are killed, open streams are cut without an end-of-stream frame,
// and from then on envd answers 502 and the control plane 404. It reports
// whether the sandbox existed.
func (s *Server) KillSandbox(id string) bool {
	s.mu.Lock()
	sb := s.sandboxes[id]
	delete(s.sandboxes, id)
	s.mu.Unlock()
	if sb == nil {
		return false
	}
	sb.kill()
	return true
}

// SandboxIDs lists the live sandboxes.
func (s *Server) SandboxIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.sandboxes))
	for id := range s.sandboxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// SandboxRoot returns the host directory that holds a live sandbox's
// filesystem ("" if unknown); its home/user directory is the sandbox user's
// home.
func (s *Server) SandboxRoot(id string) string {
	sb := s.lookup(id)
	if sb == nil {
		return ""
	}
	return sb.root
}

// SandboxEnvVars returns the envVars a live sandbox was created with.
func (s *Server) SandboxEnvVars(id string) map[string]string {
	sb := s.lookup(id)
	if sb == nil {
		return nil
	}
	return sb.envVars
}

// LiveProcesses returns the pids of processes still tracked (not yet waited
// for) in a sandbox.
func (s *Server) LiveProcesses(id string) []int {
	sb := s.lookup(id)
	if sb == nil {
		return nil
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var pids []int
	for pid := range sb.procs {
		pids = append(pids, int(pid))
	}
	slices.Sort(pids)
	return pids
}

func (s *Server) lookup(id string) *sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sandboxes[id]
}

// record logs the request and applies injected faults before serving it.
func (s *Server) record(service string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if service == ServiceEnvd && previewPort(r) != 0 {
			service = ServicePreview
		}
		rec := &recorded{req: Request{
			Service:  service,
			Method:   r.Method,
			Path:     r.URL.Path,
			RawQuery: r.URL.RawQuery,
			Header:   r.Header.Clone(),
		}}
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		f := s.takeFault(service, r)
		s.mu.Unlock()
		r.Body = &teeBody{r: r.Body, buf: &rec.body, mu: &s.mu}
		if f != nil {
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			msg := http.StatusText(f.Status)
			if f.Status == http.StatusBadGateway && service == ServiceEnvd {
				writeEdge502(w, sandboxIDOf(r, s.Domain))
				return
			}
			writeJSONError(w, f.Status, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// takeFault returns the first matching fault and consumes one use of it;
// s.mu must be held.
func (s *Server) takeFault(service string, r *http.Request) *Fault {
	for i, f := range s.faults {
		if f.Service != "" && f.Service != service ||
			f.Method != "" && f.Method != r.Method ||
			f.Path != "" && f.Path != r.URL.Path ||
			f.Sandbox != "" && f.Sandbox != sandboxIDOf(r, s.Domain) {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return f
	}
	return nil
}

// writeJSONError writes the control plane's Error schema (also used by envd's
// plain HTTP endpoints): {"code": <status>, "message": ...}.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"code": status, "message": msg})
}

// writeEdge502 writes the edge proxy's answer for a sandbox that is gone
// (corrections §7: body shape chosen by the fakes).
func writeEdge502(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusBadGateway, map[string]any{
		"code": http.StatusBadGateway, "message": "The sandbox was not found", "sandboxId": id,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func randomID(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomToken(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// sandboxIDOf names the sandbox an envd request is for: the E2b-Sandbox-Id
// header, else the host form 49983-<id>.<domain>.
func sandboxIDOf(r *http.Request, domain string) string {
	if id := r.Header.Get("E2b-Sandbox-Id"); id != "" {
		return id
	}
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	label, rest, ok := strings.Cut(host, ".")
	if !ok || rest != domain {
		return ""
	}
	port, id, ok := strings.Cut(label, "-")
	if !ok || port != "49983" {
		return ""
	}
	return id
}

// capBuffer keeps the first 64 KiB written to it.
type capBuffer struct{ b []byte }

const recordLimit = 64 << 10

func (c *capBuffer) write(p []byte) {
	if room := recordLimit - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
}

func (c *capBuffer) bytes() []byte { return bytes.Clone(c.b) }

type teeBody struct {
	r   interface{ Read([]byte) (int, error) }
	buf *capBuffer
	mu  *sync.Mutex
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.mu.Lock()
		t.buf.write(p[:n])
		t.mu.Unlock()
	}
	return n, err
}

func (t *teeBody) Close() error {
	if c, ok := t.r.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// mkdirTemp creates a sandbox root with home/user inside.
func (s *Server) mkdirTemp(id string) (root, home string, err error) {
	root, err = os.MkdirTemp(s.opts.Dir, "fakee2b-"+id+"-")
	if err != nil {
		return "", "", err
	}
	home = root + "/home/user"
	if err := os.MkdirAll(home, 0o755); err != nil {
		os.RemoveAll(root)
		return "", "", err
	}
	return root, home, nil
}
