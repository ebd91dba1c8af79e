// Package e2b is the E2B cloud sandbox provider: a client of E2B's
// control-plane REST API and of envd, the daemon inside every sandbox
// (Connect-RPC with the JSON codec, plus plain HTTP for files), written from
// shared/specs/e2b.md with shared/specs/corrections.md winning where they
// differ. Package fakee2b holds a spec-faithful fake of both services.
//
// [Client] is the control plane (create, get, list, kill, set timeout);
// [Provider] implements [sandbox.Provider] on top of it. Each Open creates a
// sandbox tagged with metadata {"opencode-lsp": "1", "workspace": Spec.Key}
// plus Spec.Labels, so that orphans can be found with [Client.List].
//
// How commands run: every command is started through envd's
// process.Process/Start as `/bin/sh -c <wrapper> prog args...`, where the
// wrapper makes the command the leader of a process group of its own (by
// exec'ing setsid(1) when it is not one already) and then execs it, so the
// pid envd reports is also the group id. envd's SendSignal and its
// Connect-Timeout-Ms deadline signal that pid only, and dropping the stream
// does not stop anything (corrections §1–§3), so cancellation and timeouts
// kill the whole group with a second process (`kill -9 -<pgid>`), then send
// SIGKILL to the pid through SendSignal as well. The stream's
// Connect-Timeout-Ms is the command's timeout plus a grace period: a
// backstop that still ends the command if this client disappears.
//
// How sync works: the source is scanned locally (SHA-256 per file, cached by
// size, mtime and mode), the working copy is listed remotely by one helper
// process (find + sha256sum; no file is downloaded), and every file whose
// content differs is uploaded in multipart POST /files batches; files an
// earlier sync put there and the source no longer has are removed, and
// permission bits fixed, by one more helper process. Files commands created
// are left alone. Symlinks and special files in the source are skipped
// (SyncStats.Skipped).
//
// Endpoints: E2B_API_URL (control plane), E2B_DOMAIN and E2B_SANDBOX_URL
// (envd base for every sandbox, with the E2b-Sandbox-Id/E2b-Sandbox-Port
// headers; preview URLs then use it too, see [Sandbox.PreviewURL]) override
// the defaults; plain http:// works. The API key goes in
// X-API-KEY to the control plane only; envd requests carry the sandbox's
// X-Access-Token instead. 429 and 503 answers are retried with bounded
// backoff honouring Retry-After; every other failure is an error naming the
// operation and the sandbox.
package e2b

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	fspb "github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/filesystem"
)

// Metadata keys every sandbox opened by [Provider] carries.
const (
	MetadataTag       = "opencode-lsp" // value "1"
	MetadataWorkspace = "workspace"    // value Spec.Key
)

// DefaultSandboxTimeout is how long a sandbox lives without activity when
// Spec.Timeout is 0; every operation pushes the expiry forward.
const DefaultSandboxTimeout = 15 * time.Minute

// DefaultCmdTimeout is Cmd.Timeout's default.
const DefaultCmdTimeout = 10 * time.Minute

// DefaultOutputLimit is Cmd.OutputLimit's default.
const DefaultOutputLimit = 16 << 20

// workdir is the working copy's directory, relative to the sandbox user's
// home; its absolute path is learnt from envd when the sandbox opens.
const workdir = "workspace"

// Provider opens E2B sandboxes.
type Provider struct {
	client *Client
}

// NewProvider returns a provider using a new [Client] for cfg.
func NewProvider(cfg Config) (*Provider, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{client: c}, nil
}

// Client returns the provider's control-plane client (for orphan clean-up
// and `doctor`).
func (p *Provider) Client() *Client { return p.client }

// Name returns "e2b".
func (p *Provider) Name() string { return "e2b" }

// defaultEnv is the minimal environment added to envd's own (PATH, HOME,
// USER, LOGNAME); Spec.Env and Cmd.Env override it.
var defaultEnv = map[string]string{"LANG": "C.UTF-8", "TERM": "dumb"}

// Open creates a sandbox for spec and prepares its working copy (empty until
// Sync). A sandbox whose preparation fails is killed.
func (p *Provider) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	return p.open(ctx, spec)
}

func (p *Provider) open(ctx context.Context, spec sandbox.Spec) (*Sandbox, error) {
	meta := maps.Clone(spec.Labels)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[MetadataTag] = "1"
	meta[MetadataWorkspace] = spec.Key
	env := maps.Clone(defaultEnv)
	maps.Copy(env, spec.Env)
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultSandboxTimeout
	}
	info, err := p.client.Create(ctx, CreateParams{Timeout: timeout, Metadata: meta, EnvVars: env})
	if err != nil {
		return nil, err
	}
	s := &Sandbox{
		client:    p.client,
		id:        info.SandboxID,
		envd:      p.client.envdFor(info.SandboxID, info.EnvdAccessToken, info.Domain),
		domain:    p.client.cfg.Domain,
		timeout:   timeout,
		expiresAt: time.Now().Add(timeout),
	}
	if info.Domain != nil && *info.Domain != "" {
		s.domain = *info.Domain
	}
	if info.TrafficAccessToken != nil {
		s.trafficToken = *info.TrafficAccessToken
	}
	if err := s.prepare(ctx); err != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if kerr := p.client.Kill(kctx, s.id); kerr != nil && !errors.Is(kerr, ErrSandboxNotFound) {
			err = errors.Join(err, kerr)
		}
		return nil, err
	}
	return s, nil
}

// prepare creates the working copy directory and learns its absolute path
// (relative paths resolve against the sandbox user's home, spec §3.1).
func (s *Sandbox) prepare(ctx context.Context) error {
	res, err := s.envd.fs.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: workdir}))
	var entry *fspb.EntryInfo
	switch {
	case err == nil:
		entry = res.Msg.GetEntry()
	case connect.CodeOf(err) == connect.CodeAlreadyExists:
		st, serr := s.envd.fs.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: workdir}))
		if serr != nil {
			return s.errorf("open working copy", serr)
		}
		entry = st.Msg.GetEntry()
	default:
		return s.errorf("open working copy", err)
	}
	if entry.GetPath() == "" || entry.GetPath()[0] != '/' {
		return s.errorf("open working copy", fmt.Errorf("envd answered path %q, want an absolute path", entry.GetPath()))
	}
	s.root = entry.GetPath()
	return nil
}

// Sandbox is one open E2B sandbox. Its methods are safe for concurrent use.
type Sandbox struct {
	client       *Client
	id           string
	envd         *envd
	root         string
	domain       string
	trafficToken string
	timeout      time.Duration

	mu        sync.Mutex
	expiresAt time.Time
	closed    bool // no more operations
	killed    bool // the kill succeeded (or the sandbox was gone)

	syncMu sync.Mutex // one Sync at a time
	state  syncState  // guarded by syncMu (read under mu by Manifest)
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

// ID returns the E2B sandbox ID.
func (s *Sandbox) ID() string { return s.id }

// Root returns the absolute path of the working copy inside the sandbox.
func (s *Sandbox) Root() string { return s.root }

// Client returns the control-plane client the sandbox was opened with.
func (s *Sandbox) Client() *Client { return s.client }

// PreviewURL returns https://<port>-<sandboxID>.<domain> (spec §4), with the
// e2b-traffic-access-token header when the sandbox restricts public traffic.
// When Config.SandboxURL (E2B_SANDBOX_URL) is set, every port is reached
// through that shared host instead, named by the same routing headers the
// envd traffic carries (E2b-Sandbox-Id, and E2b-Sandbox-Port = port), so
// that a self-hosted edge or a loopback fake serves previews too.
func (s *Sandbox) PreviewURL(ctx context.Context, port int) (sandbox.Preview, error) {
	if port <= 0 || port > 65535 {
		return sandbox.Preview{}, fmt.Errorf("e2b: preview URL of sandbox %s: invalid port %d", s.id, port)
	}
	if err := s.checkOpen("preview URL"); err != nil {
		return sandbox.Preview{}, err
	}
	pv := sandbox.Preview{URL: fmt.Sprintf("https://%d-%s.%s", port, s.id, s.domain)}
	if s.client.sbURL != nil {
		pv = sandbox.Preview{URL: s.client.sbURL.String(), Headers: map[string]string{
			"E2b-Sandbox-Id": s.id, "E2b-Sandbox-Port": strconv.Itoa(port),
		}}
	}
	if s.trafficToken != "" {
		if pv.Headers == nil {
			pv.Headers = map[string]string{}
		}
		pv.Headers["e2b-traffic-access-token"] = s.trafficToken
	}
	return pv, nil
}

// SetTimeout makes the sandbox expire d from now (POST
// /sandboxes/{id}/timeout), which may shorten its life as well as extend
// it; operations push the expiry forward again as usual. A sandbox that is
// gone gives an error matching sandbox.ErrClosed.
func (s *Sandbox) SetTimeout(ctx context.Context, d time.Duration) error {
	if err := s.checkOpen("set timeout"); err != nil {
		return err
	}
	if err := s.client.SetTimeout(ctx, s.id, d); err != nil {
		if errors.Is(err, ErrSandboxNotFound) {
			return fmt.Errorf("%w: %w", sandbox.ErrClosed, err)
		}
		return err
	}
	s.mu.Lock()
	s.expiresAt = time.Now().Add(d)
	s.mu.Unlock()
	return nil
}

// Close kills the sandbox, even when ctx is already cancelled (a cloud
// sandbox must not be left running). It is idempotent; a sandbox that is
// already gone is not an error, and a Close whose kill failed can be
// repeated.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.killed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.client.Kill(kctx, s.id)
	if err != nil && !errors.Is(err, ErrSandboxNotFound) {
		return err
	}
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
	return nil
}

func (s *Sandbox) checkOpen(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("e2b: %s in sandbox %s: %w", op, s.id, sandbox.ErrClosed)
	}
	return nil
}

// touch pushes the sandbox's expiry so that it outlives an operation that
// may take need: when less than max(timeout/2, need) remains, the expiry is
// set to max(timeout, need) from now.
func (s *Sandbox) touch(ctx context.Context, need time.Duration) error {
	s.mu.Lock()
	left := time.Until(s.expiresAt)
	s.mu.Unlock()
	if left >= max(s.timeout/2, need) {
		return nil
	}
	d := max(s.timeout, need)
	err := s.client.SetTimeout(ctx, s.id, d)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest && d > time.Hour {
		// Longer than the account's tier allows: settle for the Hobby
		// tier's maximum.
		d = time.Hour
		err = s.client.SetTimeout(ctx, s.id, d)
	}
	if err != nil {
		if errors.Is(err, ErrSandboxNotFound) {
			return fmt.Errorf("%w: %w", sandbox.ErrClosed, err)
		}
		return err
	}
	s.mu.Lock()
	s.expiresAt = time.Now().Add(d)
	s.mu.Unlock()
	return nil
}

// errorf wraps an envd error with the operation and the sandbox. Errors
// that may mean the sandbox is gone (transport errors, a stream cut short,
// Connect "unavailable", which is also what the edge's 502 maps to) are
// checked against /health: a sandbox that is gone gives an error matching
// sandbox.ErrClosed.
func (s *Sandbox) errorf(op string, err error) error {
	if errors.Is(err, errSandboxGone) {
		return fmt.Errorf("e2b: %s in sandbox %s: %w: %w", op, s.id, sandbox.ErrClosed, err)
	}
	var he *httpError
	probe := !errors.As(err, &he) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	var ce *connect.Error
	if errors.As(err, &ce) {
		switch ce.Code() {
		case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeInternal:
		default:
			probe = false
		}
	}
	if probe {
		hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		herr := s.envd.health(hctx)
		cancel()
		if errors.Is(herr, errSandboxGone) {
			return fmt.Errorf("e2b: %s in sandbox %s: %w: %w", op, s.id, sandbox.ErrClosed, errSandboxGone)
		}
	}
	return fmt.Errorf("e2b: %s in sandbox %s: %w", op, s.id, err)
}
