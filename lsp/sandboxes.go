package lsp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// ProviderFactory builds the sandbox provider called name ("local", "e2b",
// "daytona") from the current settings.
type ProviderFactory func(name string, st Settings) (sandbox.Provider, error)

// sandboxPool keeps one open sandbox per (provider, workspace root), reused
// across runs, and closes them all when the session ends.
type sandboxPool struct {
	s *Server

	mu        sync.Mutex
	providers map[string]sandbox.Provider
	open      map[poolKey]*pooled
	usage     map[string]time.Duration // closed sandboxes' time, per provider
}

type poolKey struct{ provider, root string }

// pooled is one open sandbox.
type pooled struct {
	provider string
	root     string
	sb       sandbox.Sandbox
	created  time.Time

	mu       sync.Mutex
	active   int
	lastUsed time.Time
	// snapshotMu serialises sync + work on one sandbox: two runs in the same
	// working copy would see each other's files.
	work sync.Mutex
}

func newSandboxPool(s *Server) *sandboxPool {
	return &sandboxPool{s: s, providers: map[string]sandbox.Provider{}, open: map[poolKey]*pooled{}, usage: map[string]time.Duration{}}
}

// workspaceKey names a workspace's sandbox: the base name plus a hash of the
// absolute root, stable across daemon restarts.
func workspaceKey(root string) string {
	sum := sha256.Sum256([]byte(root))
	base := filepath.Base(root)
	if len(base) > 32 {
		base = base[:32]
	}
	return fmt.Sprintf("%s-%s", sanitizeKey(base), hex.EncodeToString(sum[:6]))
}

func sanitizeKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// provider returns the (cached) provider for name.
func (p *sandboxPool) provider(name string) (sandbox.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.providers[name]; ok {
		return pr, nil
	}
	factory := p.s.opts.Providers
	if factory == nil {
		factory = DefaultProviders(p.s.log, p.s.getenv)
	}
	pr, err := factory(name, p.s.Settings())
	if err != nil {
		return nil, err
	}
	p.providers[name] = pr
	return pr, nil
}

// acquire returns the sandbox for (name, root), opening it on first use, and
// holds its work lock until release is called.
func (p *sandboxPool) acquire(ctx context.Context, name, root string) (*pooled, func(), error) {
	switch name {
	case "local", "e2b", "daytona":
	default:
		return nil, nil, &command.ArgError{Command: "sandbox", Field: "sandbox", Reason: fmt.Sprintf("must be \"local\", \"e2b\" or \"daytona\", got %q", name)}
	}
	pr, err := p.provider(name)
	if err != nil {
		return nil, nil, err
	}
	key := poolKey{name, root}
	p.mu.Lock()
	ps := p.open[key]
	p.mu.Unlock()
	if ps == nil {
		sb, err := pr.Open(ctx, sandbox.Spec{
			Key:           workspaceKey(root),
			WorkspaceRoot: root,
			Labels:        map[string]string{"opencode-lsp": "1"},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("opening the %s sandbox: %w", name, err)
		}
		ps = &pooled{provider: name, root: root, sb: sb, created: time.Now()}
		p.mu.Lock()
		if existing := p.open[key]; existing != nil {
			p.mu.Unlock()
			_ = sb.Close(context.WithoutCancel(ctx))
			ps = existing
		} else {
			p.open[key] = ps
			p.mu.Unlock()
		}
	}
	// Wait for the working copy, or give up with the context.
	locked := make(chan struct{})
	go func() { ps.work.Lock(); close(locked) }()
	select {
	case <-locked:
	case <-ctx.Done():
		go func() { <-locked; ps.work.Unlock() }()
		return nil, nil, ctx.Err()
	}
	ps.mu.Lock()
	ps.active++
	ps.lastUsed = time.Now()
	ps.mu.Unlock()
	release := func() {
		ps.mu.Lock()
		ps.active--
		ps.lastUsed = time.Now()
		ps.mu.Unlock()
		ps.work.Unlock()
	}
	return ps, release, nil
}

// closeAll closes every open sandbox.
func (p *sandboxPool) closeAll(ctx context.Context) error {
	p.mu.Lock()
	all := make([]*pooled, 0, len(p.open))
	for k, ps := range p.open {
		all = append(all, ps)
		delete(p.open, k)
	}
	p.mu.Unlock()
	var errs []error
	for _, ps := range all {
		if err := p.s.agents.Release(ps.sb.ID()); err != nil {
			p.s.log.Debug("Stopping OpenCode failed", "sandbox", ps.sb.ID(), "err", err)
		}
		if err := ps.sb.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s sandbox %s: %w", ps.provider, ps.sb.ID(), err))
		}
		p.mu.Lock()
		p.usage[ps.provider] += time.Since(ps.created)
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}

// status lists open sandboxes and sandbox-seconds per provider.
func (p *sandboxPool) status() ([]command.SandboxStatus, map[string]float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []command.SandboxStatus{}
	usage := map[string]float64{}
	for prov, d := range p.usage {
		usage[prov] += d.Seconds()
	}
	for _, ps := range p.open {
		ps.mu.Lock()
		state := "idle"
		if ps.active > 0 {
			state = "running"
		}
		ps.mu.Unlock()
		secs := time.Since(ps.created).Seconds()
		usage[ps.provider] += secs
		out = append(out, command.SandboxStatus{Provider: ps.provider, ID: ps.sb.ID(), State: state,
			CreatedAt: ps.created.UTC().Format(time.RFC3339), Seconds: secs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, usage
}

// isolation describes how the local sandbox isolates commands, for
// opencode.status ("" when the local provider was never used).
func (p *sandboxPool) isolation() string {
	p.mu.Lock()
	pr := p.providers["local"]
	p.mu.Unlock()
	lp, ok := pr.(interface{ Status() local.Status })
	if !ok {
		return ""
	}
	st := lp.Status()
	if st.Isolated {
		return "bubblewrap (" + st.Bwrap + ")"
	}
	return "none: " + st.Reason
}
