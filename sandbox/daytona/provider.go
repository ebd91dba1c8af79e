// Package daytona is the Daytona sandbox provider: a client of Daytona's
// management API and of the toolbox API of its sandboxes, written from
// shared/specs/daytona.md with shared/specs/corrections.md winning where they
// differ, and a [sandbox.Provider] built on it.
//
// Lifecycle. [Provider.Open] creates a sandbox labelled
// {"opencode-lsp":"1","workspace":<Spec.Key>} plus Spec.Labels (ours win),
// with autoStopInterval from Spec.Timeout and autoDeleteInterval 0, so a
// sandbox nobody keeps alive stops and is deleted instead of billing. It waits
// for "started" by polling (corrections §2). [Client] exposes List, Get,
// Start, Stop and Delete for lifecycle management and diagnostics.
//
// Toolbox. Calls go to <toolbox proxy>/<sandboxId>, the proxy base taken from
// the API's answer (toolboxProxyUrl, else GET /sandbox/{id}/toolbox-proxy-url)
// unless Options.ToolboxURL (DAYTONA_TOOLBOX_URL) overrides it. The working
// copy is <home>/workspace; provider state (run files, the Spec.Env file)
// lives in <home>/.opencode-lsp.
//
// Exec runs every command in a session of its own, started asynchronously,
// and follows its output over the follow-logs WebSocket, so output arrives
// as it is produced, stdout and stderr apart. The command runs under
// `setsid` as the leader of a new process group, with an `env -i` minimal
// environment plus Spec.Env (uploaded once as a file, never put in a command
// line) and Cmd.Env. Timeout and cancel kill that whole group (and any
// descendant that left it) with a second call, process/execute running
// `kill -s KILL -- -<pgid>`; the output produced until then is still
// delivered. Daytona reports only an exit code, so a command killed by a
// signal it did not get from us reports 128+signal, as under bubblewrap.
// Cmd.Network cannot be enforced per command (Daytona filters egress per
// sandbox); OnListen is called for ports announced in the output.
//
// Sync uploads only files whose content differs between the source and the
// working copy, with the bulk-upload endpoint (corrections §1), removes files
// an earlier sync wrote that the source no longer has, recreates symlinks
// that stay inside the workspace, and sets permission bits. The state of the
// working copy is read with one command that stats every file, plus one that
// hashes (SHA-256) those whose stat changed since they were last seen.
//
// Every request carries the API key as a bearer token to Daytona's API or
// toolbox proxy only; preview URLs carry the preview token instead. Errors
// name the operation and the sandbox (see [Error]) and never the key. 429 and
// 503 answers are retried as Retry-After says.
package daytona

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Labels every sandbox of opencode-lsp carries.
const (
	LabelApp       = "opencode-lsp"
	LabelWorkspace = "workspace"
)

// Provider opens Daytona sandboxes; it implements [sandbox.Provider].
type Provider struct {
	c *Client
}

var _ sandbox.Provider = (*Provider)(nil)

// New returns a provider; it fails when o has no API key or a bad URL.
func New(o Options) (*Provider, error) {
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	return &Provider{c: c}, nil
}

// Name is "daytona".
func (p *Provider) Name() string { return "daytona" }

// Client is the provider's API client (for listing and deleting orphans).
func (p *Provider) Client() *Client { return p.c }

// Labels returns the labels a sandbox for spec gets: ours win over
// spec.Labels.
func Labels(spec sandbox.Spec) map[string]string {
	l := make(map[string]string, len(spec.Labels)+2)
	for k, v := range spec.Labels {
		l[k] = v
	}
	l[LabelApp] = "1"
	l[LabelWorkspace] = spec.Key
	return l
}

// Open creates a sandbox for spec, waits until it is started and prepares
// the working copy (empty until Sync). On any failure after the create, the
// sandbox is deleted again.
func (p *Provider) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if strings.TrimSpace(spec.Key) == "" {
		return nil, errors.New("daytona: open sandbox: Spec.Key is empty")
	}
	for k := range spec.Env {
		if !validEnvName(k) {
			return nil, fmt.Errorf("daytona: open sandbox: Spec.Env: %q is not a valid variable name", k)
		}
	}
	autoStop := 15
	if spec.Timeout > 0 {
		autoStop = max(int((spec.Timeout+time.Minute-1)/time.Minute), 1)
	}
	autoDelete := 0
	info, err := p.c.Create(ctx, CreateParams{
		Labels:             Labels(spec),
		AutoStopInterval:   &autoStop,
		AutoDeleteInterval: &autoDelete,
	})
	if err != nil {
		return nil, err
	}
	s, err := p.prepare(ctx, info, spec)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := p.c.Delete(dctx, info.ID); derr != nil {
			p.c.log.Warn("daytona: could not delete a sandbox that failed to open", "sandbox", info.ID, "err", derr)
		}
		return nil, err
	}
	return s, nil
}

func (p *Provider) prepare(ctx context.Context, info *SandboxInfo, spec sandbox.Spec) (*Sandbox, error) {
	if info.State != "started" {
		var err error
		if info, err = p.c.WaitStarted(ctx, info.ID); err != nil {
			return nil, err
		}
	}
	base, err := p.c.ToolboxBase(ctx, info)
	if err != nil {
		return nil, err
	}
	tb := &toolbox{c: p.c, id: info.ID, base: base}
	home, err := tb.homeDir(ctx)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{
		c: p.c, tb: tb, id: info.ID, info: info, autoStop: info.AutoStopInterval,
		home: home, root: home + "/workspace", state: home + "/.opencode-lsp",
		closed: make(chan struct{}), cache: map[string]remoteFile{},
	}
	if len(spec.Env) > 0 {
		s.envFile = s.state + "/env"
		if err := tb.bulkUpload(ctx, []uploadFile{bytesFile(s.envFile, envFileContent(spec.Env))}); err != nil {
			return nil, err
		}
	}
	// The tools the provider's scripts need, checked once.
	script := `for t in find sha256sum realpath base64 env dirname; do
	command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t"; exit 1; }
done
find / -maxdepth 0 -printf '' 2>/dev/null || { echo "find does not support -printf (GNU findutils needed)"; exit 1; }
printf x | sha256sum -z >/dev/null 2>&1 || { echo "sha256sum does not support -z (GNU coreutils needed)"; exit 1; }
`
	script += "umask 077\nmkdir -p " + shq(s.root) + " " + shq(s.state+"/run") + " " + shq(s.state+"/tmp") + " || exit 1\n"
	if s.envFile != "" {
		script += "chmod 600 " + shq(s.envFile) + "\n"
	}
	script += "chmod 755 " + shq(s.root) + "\n"
	if _, err := s.script(ctx, "prepare sandbox", script, time.Minute); err != nil {
		return nil, err
	}
	return s, nil
}

// envFileContent renders variables as `NAME='value'` lines for `. file`
// under `set -a`.
func envFileContent(env map[string]string) []byte {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(shq(env[k]))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// shq quotes s for POSIX sh.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Sandbox is one open Daytona sandbox; it implements [sandbox.Sandbox].
type Sandbox struct {
	c        *Client
	tb       *toolbox
	id       string
	info     *SandboxInfo
	autoStop int    // minutes
	home     string // the sandbox user's home
	root     string // the working copy
	state    string // provider state dir
	envFile  string // Spec.Env file, "" when there is none

	closeMu   sync.Mutex
	closeDone bool // the sandbox was deleted
	closed    chan struct{}
	running   sync.WaitGroup // operations in progress
	bg        sync.WaitGroup // background session deletions

	syncMu     sync.Mutex
	mu         sync.Mutex            // guards the fields below
	synced     map[string]syncRec    // what the last sync put in the working copy
	cache      map[string]remoteFile // working-copy hashes by path, keyed by stat
	excludes   []string
	includeGit bool
	srcRoot    string             // source root of the hashes below
	srcHashes  map[string]srcHash // source hashes by path, keyed by stat
	idle       []*session         // sessions ready for a command
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

// ID is the Daytona sandbox id.
func (s *Sandbox) ID() string { return s.id }

// Root is the working copy's absolute path inside the sandbox.
func (s *Sandbox) Root() string { return s.root }

// Info is the Sandbox DTO as of the open.
func (s *Sandbox) Info() SandboxInfo { return *s.info }

// enter registers a running operation, or fails when the sandbox is closed.
func (s *Sandbox) enter() error {
	select {
	case <-s.closed:
		return sandbox.ErrClosed
	default:
	}
	s.running.Add(1)
	select {
	case <-s.closed:
		s.running.Done()
		return sandbox.ErrClosed
	default:
		return nil
	}
}

func (s *Sandbox) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// opErr wraps err with op and the sandbox id, adding ErrClosed when the
// sandbox was closed meanwhile.
func (s *Sandbox) opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if s.isClosed() && !errors.Is(err, sandbox.ErrClosed) {
			return fmt.Errorf("%w (%w)", err, sandbox.ErrClosed)
		}
		return err
	}
	if s.isClosed() && !errors.Is(err, sandbox.ErrClosed) {
		return fmt.Errorf("daytona: %s in sandbox %s: %w (%w)", op, s.id, err, sandbox.ErrClosed)
	}
	return fmt.Errorf("daytona: %s in sandbox %s: %w", op, s.id, err)
}

// PreviewURL returns the preview URL of port with the preview token header
// (spec §5).
func (s *Sandbox) PreviewURL(ctx context.Context, port int) (sandbox.Preview, error) {
	if err := s.enter(); err != nil {
		return sandbox.Preview{}, s.opErr("get preview URL", err)
	}
	defer s.running.Done()
	l, err := s.c.Preview(ctx, s.id, port)
	if err != nil {
		return sandbox.Preview{}, s.opErr("get preview URL", err)
	}
	pv := sandbox.Preview{URL: l.URL}
	if l.Token != "" {
		pv.Headers = map[string]string{PreviewHeader: l.Token}
	}
	return pv, nil
}

// KeepAlive refreshes the sandbox's idle timer (its auto-stop interval is
// Spec.Timeout); Exec does so by itself while a command runs.
func (s *Sandbox) KeepAlive(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return s.opErr("keep alive", err)
	}
	defer s.running.Done()
	return s.c.KeepAlive(ctx, s.id)
}

// Close deletes the sandbox, which stops everything running in it; running
// calls fail with an error wrapping [sandbox.ErrClosed]. Close is idempotent;
// when the delete failed, a later Close tries again.
func (s *Sandbox) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.isClosed() && s.closeDone {
		return nil
	}
	if !s.isClosed() {
		close(s.closed)
	}
	// A sandbox left behind keeps billing: the delete gets its own time even
	// when ctx is already done (shutdown).
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.c.Delete(dctx, s.id); err != nil {
		return err
	}
	s.closeDone = true
	s.bg.Wait()
	return nil
}
