package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// WorkspaceKey names a workspace's sandbox: the root's base name (at most
// 32 characters of [A-Za-z0-9._-]) plus 12 hex digits of the SHA-256 of the
// absolute root, stable across daemon restarts.
func WorkspaceKey(root string) string {
	sum := sha256.Sum256([]byte(root))
	base := filepath.Base(root)
	if len(base) > 32 {
		base = base[:32]
	}
	b := []byte(base)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return fmt.Sprintf("%s-%s", b, hex.EncodeToString(sum[:6]))
}

// tracked is a leased sandbox as the manager hands it out: every operation
// goes to the provider's sandbox, and one that fails with
// sandbox.ErrClosed while the manager has not closed it marks the sandbox
// dead (it is replaced at the next Acquire). Close only marks it for
// replacement: the manager closes sandboxes.
type tracked struct {
	sandbox.Sandbox
	provider string
	dead     atomic.Bool
	closing  atomic.Bool
}

var _ sandbox.Sandbox = (*tracked)(nil)

// Unwrap returns the provider's sandbox.
func (t *tracked) Unwrap() sandbox.Sandbox { return t.Sandbox }

func (t *tracked) isDead() bool { return t.dead.Load() }

func (t *tracked) note(err error) error {
	if err != nil && errors.Is(err, sandbox.ErrClosed) && !t.closing.Load() {
		t.dead.Store(true)
	}
	return err
}

func (t *tracked) Sync(ctx context.Context, src sandbox.Source) (sandbox.Manifest, sandbox.SyncStats, error) {
	m, st, err := t.Sandbox.Sync(ctx, src)
	return m, st, t.note(err)
}

func (t *tracked) Manifest(ctx context.Context) (sandbox.Manifest, error) {
	m, err := t.Sandbox.Manifest(ctx)
	return m, t.note(err)
}

func (t *tracked) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.ExitStatus, error) {
	st, err := t.Sandbox.Exec(ctx, c)
	return st, t.note(err)
}

func (t *tracked) ReadFile(ctx context.Context, path string) ([]byte, error) {
	b, err := t.Sandbox.ReadFile(ctx, path)
	return b, t.note(err)
}

func (t *tracked) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	return t.note(t.Sandbox.WriteFile(ctx, path, data, mode))
}

// PreviewURL asks the provider; a failure or an empty URL is an error that
// says what is missing ("no sandbox URL returned") and what to check.
func (t *tracked) PreviewURL(ctx context.Context, port int) (sandbox.Preview, error) {
	pv, err := t.Sandbox.PreviewURL(ctx, port)
	if err == nil && pv.URL != "" {
		return pv, nil
	}
	if err == nil {
		err = errors.New("the provider answered an empty URL")
	}
	return sandbox.Preview{}, &PreviewError{Provider: t.provider, Sandbox: t.ID(), Port: port, Err: t.note(err)}
}

// Close marks the sandbox for replacement; the manager closes it when its
// lease ends.
func (t *tracked) Close(ctx context.Context) error {
	t.dead.Store(true)
	return nil
}

// PreviewError is a port of a sandbox that cannot be reached from the
// daemon's machine.
type PreviewError struct {
	Provider, Sandbox string
	Port              int
	Err               error
}

func (e *PreviewError) Error() string {
	return fmt.Sprintf("no sandbox URL returned for port %d of the %s sandbox %s: %v (%s)", e.Port, e.Provider, e.Sandbox, e.Err, PreviewFix(e.Provider))
}

func (e *PreviewError) Unwrap() error { return e.Err }

// PreviewFix says what to check when a provider gives no preview URL.
func PreviewFix(provider string) string {
	switch provider {
	case "e2b":
		return "check E2B_DOMAIN, or E2B_SANDBOX_URL for a self-hosted edge, and that the sandbox allows public traffic"
	case "daytona":
		return "check that the Daytona API answers GET /sandbox/{id}/ports/{port}/preview-url for this key (DAYTONA_API_URL) and that the sandbox is started"
	}
	return "check that the sandbox provider can expose ports"
}
