package opencode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Server is one `opencode serve` running in a sandbox's working copy. Its
// methods are safe for concurrent use; several runs may share it.
type Server struct {
	sb       sandbox.Sandbox
	cfg      Config
	log      *slog.Logger
	base     string // http://host:port, no trailing slash
	headers  map[string]string
	password string
	version  string
	client   *http.Client // requests (each bounded by RequestTimeout)
	stream   *http.Client // the event stream (no timeout)
	red      *strings.Replacer

	cancel context.CancelFunc // stops the server command
	done   chan struct{}      // closed when the command ended
	out    *outputWatcher
	hub    hub // the event stream, shared by the runs

	mu      sync.Mutex
	home    string // OpenCode's private HOME in the sandbox
	exitErr error  // why the command ended
	closed  bool
}

// Start launches `opencode serve` in sb's working copy (with network, a free
// port, a private HOME, the offline switches and the provider config of
// cfg), waits until it really answers (the "listening" line, then a health
// check, then the project's first load, each bounded by cfg.StartTimeout),
// and returns it. The server runs until [Server.Close], ctx's end does not
// stop it.
func Start(ctx context.Context, sb sandbox.Sandbox, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	candidates := binaryCandidates(cfg.Binary)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, sb, cfg, candidates)
		if err == nil {
			return s, nil
		}
		lastErr = err
		// A port taken between our probe and OpenCode's bind is worth
		// another try; nothing else is.
		if !errors.Is(err, errPortInUse) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port in use")

// binaryCandidates lists what the launcher tries, in order: the setting, or
// the daemon's PATH lookup and then the sandbox's own PATH.
func binaryCandidates(setting string) []string {
	if setting != "" {
		return []string{setting}
	}
	var c []string
	if p, err := exec.LookPath("opencode"); err == nil {
		c = append(c, p)
	}
	return append(c, "opencode")
}

func start(ctx context.Context, sb sandbox.Sandbox, cfg Config, candidates []string) (*Server, error) {
	port, err := pickPort()
	if err != nil {
		return nil, fmt.Errorf("opencode: pick a port: %w", err)
	}
	password := randomHex(24)
	transport := cfg.Transport
	if transport == nil {
		transport = &http.Transport{
			Proxy:               nil, // loopback or the sandbox's preview host: never a proxy from the environment
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	s := &Server{
		sb:       sb,
		cfg:      cfg,
		log:      cfg.Logger.With("sandbox", sb.ID()),
		password: password,
		client:   &http.Client{Transport: transport},
		stream:   &http.Client{Transport: transport},
		red:      strings.NewReplacer(cfg.APIKey, "[REDACTED]", password, "[REDACTED]"),
		done:     make(chan struct{}),
	}
	s.out = newOutputWatcher(s.red)

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = stop
	cmd := sandbox.Cmd{
		Shell:       launchScript(candidates, "opencode-lsp-"+randomHex(8), cfg.Hostname, port),
		Env:         launchEnv(cfg, sb.Root(), password),
		Network:     true,
		Timeout:     cfg.ServerLifetime,
		OutputLimit: 4 << 20,
		Stdout:      s.out.stdout(),
		Stderr:      s.out.stderr(),
	}
	go func() {
		st, err := sb.Exec(runCtx, cmd)
		s.mu.Lock()
		switch {
		case s.closed:
			s.exitErr = ErrClosed
		case err != nil:
			s.exitErr = fmt.Errorf("%w: %s", ErrServerExited, s.red.Replace(err.Error()))
		default:
			s.exitErr = fmt.Errorf("%w (%s)%s", ErrServerExited, describeExit(st), s.out.tailSuffix())
		}
		s.mu.Unlock()
		close(s.done)
	}()

	fail := func(err error) (*Server, error) {
		s.Close()
		return nil, err
	}
	select {
	case <-s.out.ready:
	case <-s.done:
		return fail(s.startError(port))
	case <-ctx.Done():
		return fail(fmt.Errorf("opencode: start: no \"listening\" line within the start timeout%s", s.out.tailSuffix()))
	}
	s.mu.Lock()
	s.home = s.out.home()
	s.mu.Unlock()

	pv, err := sb.PreviewURL(ctx, port)
	if err != nil {
		return fail(fmt.Errorf("opencode: reach port %d: %w", port, err))
	}
	s.base = strings.TrimSuffix(pv.URL, "/")
	s.headers = pv.Headers

	// The "listening" line can come before the server answers; a request
	// in that window may never get a reply, hence short attempts.
	var health struct {
		Healthy bool   `json:"healthy"`
		Version string `json:"version"`
	}
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		err = s.do(actx, http.MethodGet, "/global/health", nil, &health)
		acancel()
		if err == nil && health.Healthy {
			break
		}
		select {
		case <-s.done:
			return fail(s.exitError())
		case <-ctx.Done():
			return fail(fmt.Errorf("opencode: start: server not healthy within the start timeout: %v", err))
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.version = health.Version
	if s.version != TestedVersion {
		s.log.Warn("OpenCode version differs from the tested one", "version", s.version, "tested", TestedVersion)
	}
	// Load the project now rather than in the first run: the instance
	// (config, git), then, in parallel, what OpenCode otherwise builds at the
	// first prompt (the file index, the provider, the tools). Together they
	// take seconds on a cold start; only the first is required.
	var status map[string]json.RawMessage
	if err := s.do(ctx, http.MethodGet, "/session/status", nil, &status); err != nil {
		return fail(fmt.Errorf("opencode: start: load the project: %w", err))
	}
	s.warmUp(ctx)

	// One event stream serves every run of the server; it lives as long as
	// the server command (runCtx).
	connected := make(chan struct{})
	go s.subscribe(runCtx, connected)
	select {
	case <-connected:
	case <-s.done:
		return fail(s.exitError())
	case <-ctx.Done():
		return fail(errors.New("opencode: start: the event stream did not connect within the start timeout"))
	}
	s.log.Info("OpenCode server started", "version", s.version, "url", s.base, "home", s.home)
	return s, nil
}

// warmUp asks, in parallel, for what OpenCode builds lazily at the first
// prompt; failures are only logged.
func (s *Server) warmUp(ctx context.Context) {
	paths := []string{
		"/find/file?query=" + url.QueryEscape("opencode-lsp-warm-up"),
		"/config/providers",
		"/experimental/tool?provider=" + url.QueryEscape(ProviderID) + "&model=" + url.QueryEscape(s.cfg.Model),
		"/agent",
	}
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Go(func() {
			if err := s.do(ctx, http.MethodGet, p, nil, nil); err != nil {
				s.log.Debug("Warm-up request failed", "path", p, "error", err)
			}
		})
	}
	wg.Wait()
}

// startError explains an exit before the "listening" line.
func (s *Server) startError(port int) error {
	<-s.done
	tail := s.out.tail()
	switch {
	case strings.Contains(tail, "opencode binary not found"):
		return fmt.Errorf("%w in the sandbox (tried %s): %s", ErrNotInstalled, strings.Join(binaryCandidates(s.cfg.Binary), ", "), InstallHint)
	case strings.Contains(tail, "EADDRINUSE") || strings.Contains(tail, "in use") ||
		// OpenCode 1.18 (Bun) reports a taken port only as
		// "Error: Unexpected error … ServeError".
		strings.Contains(tail, "ServeError"):
		return fmt.Errorf("opencode: port %d: %w", port, errPortInUse)
	}
	return fmt.Errorf("opencode: start: %w", s.exitError())
}

// Version is the OpenCode version the server reported.
func (s *Server) Version() string { return s.version }

// URL is the server's base URL as the daemon reaches it.
func (s *Server) URL() string { return s.base }

// Done is closed when the server process has ended.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the server ended, or nil while it runs.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.exitError()
	default:
		return nil
	}
}

func (s *Server) exitError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
}

// Close stops the server (its whole process tree) and removes its private
// HOME. It is idempotent and waits at most a few seconds.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	home := s.home
	s.mu.Unlock()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return errors.New("opencode: server did not stop within 10s")
	}
	if home != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The HOME is gone with the sandbox's tmpfs under bubblewrap; elsewhere
		// it must be removed.
		if _, err := s.sb.Exec(ctx, sandbox.Cmd{Args: []string{"rm", "-rf", "--", home}, Timeout: 10 * time.Second}); err != nil && !errors.Is(err, sandbox.ErrClosed) {
			s.log.Debug("Could not remove the OpenCode home", "error", err)
		}
	}
	return nil
}

// do sends one JSON request (body nil for none) and decodes a 2xx answer
// into out (nil to discard). The request is bounded by RequestTimeout.
func (s *Server) do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("opencode: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := s.newRequest(ctx, method, path, rd)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("opencode: %s %s: %w", method, path, cerr)
		}
		return fmt.Errorf("opencode: %s %s: %s", method, path, s.red.Replace(unwrapURLError(err).Error()))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("opencode: %s %s: read the answer: %s", method, path, s.red.Replace(err.Error()))
	}
	if resp.StatusCode/100 != 2 {
		return s.apiError(method, path, resp.StatusCode, b)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("opencode: %s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

func (s *Server) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("opencode: %s %s: %w", method, path, err)
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	req.SetBasicAuth("opencode", s.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// apiError decodes OpenCode's error shapes: {"name","data":{"message"}}
// (legacy) and {"_tag","message"} (newer).
func (s *Server) apiError(method, path string, status int, b []byte) error {
	var e struct {
		Name string `json:"name"`
		Tag  string `json:"_tag"`
		Msg  string `json:"message"`
		Data struct {
			Message string `json:"message"`
		} `json:"data"`
	}
	ae := &APIError{Method: method, Path: path, Status: status}
	if json.Unmarshal(b, &e) == nil {
		ae.Name = e.Name
		if ae.Name == "" {
			ae.Name = e.Tag
		}
		ae.Message = e.Data.Message
		if ae.Message == "" {
			ae.Message = e.Msg
		}
	}
	if ae.Name == "" && ae.Message == "" {
		ae.Message = strings.TrimSpace(string(b))
		if len(ae.Message) > 300 {
			ae.Message = ae.Message[:300] + "…"
		}
	}
	ae.Message = s.red.Replace(ae.Message)
	return ae
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// pickPort is freePort; tests replace it to hand out a taken port.
var pickPort = freePort

// freePort asks the kernel for a free loopback port. OpenCode's --port 0
// does not pick one (it means 4096).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func describeExit(st sandbox.ExitStatus) string {
	switch {
	case st.TimedOut:
		return "lifetime over"
	case st.Canceled:
		return "stopped"
	case st.Signal != "":
		return "killed by signal " + st.Signal
	}
	return fmt.Sprintf("exit code %d", st.Code)
}
