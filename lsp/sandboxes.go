package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/opencode"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/fleet"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// ProviderFactory builds the sandbox provider called name ("local", "e2b",
// "daytona") from the current settings.
type ProviderFactory func(name string, st Settings) (sandbox.Provider, error)

// sandboxPool is the server's side of package fleet: one sandbox per
// (provider, workspace root), reused across runs, closed after
// opencode.budget.idleTimeoutSec, at shutdown/exit and when the connection
// ends; cloud sandboxes within the budget (opencode.budget.*), with usage in
// the user's state directory, and the orphans of crashed daemons swept at
// start-up.
type sandboxPool struct {
	s *Server
	m *fleet.Manager

	mu        sync.Mutex
	providers map[string]cachedProvider
	// agentBins caches, per cloud sandbox id, the OpenCode binary found (or
	// installed) in it.
	agentBins map[string]string
}

// cachedProvider is a provider built from the settings it was built with
// (fp): changed settings build a new one for the sandboxes opened next.
type cachedProvider struct {
	fp string
	p  sandbox.Provider
}

// pooled is one leased sandbox.
type pooled struct {
	provider string
	root     string
	sb       sandbox.Sandbox
	lease    *fleet.Lease
}

func newSandboxPool(s *Server) *sandboxPool {
	p := &sandboxPool{s: s, providers: map[string]cachedProvider{}, agentBins: map[string]string{}}
	p.m = fleet.New(fleet.Options{
		Provider: p.provider,
		Limits:   p.limits,
		Store:    fleet.NewStore(fleet.StateDir(s.getenv)),
		BeforeClose: func(sb sandbox.Sandbox) {
			if err := s.agents.Release(sb.ID()); err != nil {
				s.log.Debug("Stopping OpenCode failed", "sandbox", sb.ID(), "err", err)
			}
			p.mu.Lock()
			delete(p.agentBins, sb.ID())
			p.mu.Unlock()
		},
		Logger: s.log.With("component", "sandboxes"),
	})
	return p
}

// limits reads the budget settings.
func (p *sandboxPool) limits() fleet.Limits {
	b := p.s.Settings().Budget
	return fleet.Limits{
		Budget:      fleet.Budget{MaxConcurrent: b.MaxConcurrent, MaxHoursPerMonth: b.MaxHoursPerMonth},
		IdleTimeout: time.Duration(b.IdleTimeoutSec) * time.Second,
	}
}

func validProvider(name string) error {
	switch name {
	case "local", "e2b", "daytona":
		return nil
	}
	return &command.ArgError{Command: "sandbox", Field: "sandbox", Reason: fmt.Sprintf("must be \"local\", \"e2b\" or \"daytona\", got %q", name)}
}

// provider returns the provider for name built from the current settings,
// reusing the one built last time when its settings did not change.
func (p *sandboxPool) provider(name string) (sandbox.Provider, error) {
	if err := validProvider(name); err != nil {
		return nil, err
	}
	st := p.s.Settings()
	fp := providerFingerprint(name, st)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.providers[name]; ok && c.fp == fp {
		return c.p, nil
	}
	factory := p.s.opts.Providers
	if factory == nil {
		factory = DefaultProviders(p.s.log, p.s.getenv)
	}
	pr, err := factory(name, st)
	if err != nil {
		return nil, err
	}
	p.providers[name] = cachedProvider{fp: fp, p: pr}
	return pr, nil
}

// providerFingerprint is the part of the settings a provider is built from.
func providerFingerprint(name string, st Settings) string {
	var v any
	switch name {
	case "local":
		// The OpenCode binary's directories are bound into the sandbox.
		v = []any{st.Local, st.Generate.OpenCodePath}
	case "e2b":
		v = st.E2B
	case "daytona":
		v = st.Daytona
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// keyConfigured reports whether a cloud provider has a key (setting or
// environment).
func (p *sandboxPool) keyConfigured(name string) bool {
	st := p.s.Settings()
	switch name {
	case "e2b":
		return st.E2B.APIKey != "" || p.s.getenv("E2B_API_KEY") != ""
	case "daytona":
		return st.Daytona.APIKey != "" || p.s.getenv("DAYTONA_API_KEY") != ""
	}
	return false
}

// startup looks, in the background, for sandboxes that crashed daemons of
// this user left running on every cloud provider that has a key, and kills
// them. It never delays the caller.
func (p *sandboxPool) startup(ctx context.Context) {
	for _, name := range []string{"e2b", "daytona"} {
		if p.keyConfigured(name) {
			go p.m.SweepOnce(ctx, name)
		}
	}
}

// acquire returns the sandbox for (name, root), opening it on first use
// (a cloud one within the budget), and holds it for the caller's run until
// release is called.
func (p *sandboxPool) acquire(ctx context.Context, name, root string) (*pooled, func(), error) {
	if err := validProvider(name); err != nil {
		return nil, nil, err
	}
	if fleet.IsCloud(name) && p.s.ctx != nil {
		go p.m.SweepOnce(p.s.ctx, name)
	}
	lease, err := p.m.Acquire(ctx, name, fleet.Workspace{Root: root})
	if err != nil {
		var be *fleet.BudgetError
		switch {
		case errors.As(err, &be):
			return nil, nil, fmt.Errorf("%w; %s", err, budgetFix(be, p.s.Settings().Budget))
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return nil, nil, err
		}
		var ae *command.ArgError
		if errors.As(err, &ae) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("opening the %s sandbox: %w", name, err)
	}
	return &pooled{provider: name, root: root, sb: lease.Sandbox(), lease: lease}, lease.Release, nil
}

// budgetFix says which setting to change.
func budgetFix(be *fleet.BudgetError, b BudgetSettings) string {
	if be.Limit == fleet.LimitConcurrent {
		return fmt.Sprintf("close a workspace's sandbox or wait until an idle one stops (after %ds), raise opencode.budget.maxConcurrent, or use the local sandbox", b.IdleTimeoutSec)
	}
	return "raise opencode.budget.maxHoursPerMonth, or use the local sandbox until next month"
}

// closeAll closes every open sandbox; sandboxes are not opened any more.
func (p *sandboxPool) closeAll(ctx context.Context) error {
	return p.m.CloseAll(ctx)
}

// status lists open sandboxes and sandbox-seconds per provider (cloud:
// this month, every daemon of the user; local: this session).
func (p *sandboxPool) status() ([]command.SandboxStatus, map[string]float64) {
	list, usage := p.m.Status()
	out := make([]command.SandboxStatus, 0, len(list))
	for _, st := range list {
		cs := command.SandboxStatus{Provider: st.Provider, ID: st.ID, State: st.State, Seconds: st.Seconds}
		if !st.CreatedAt.IsZero() {
			cs.CreatedAt = st.CreatedAt.UTC().Format(time.RFC3339)
		}
		out = append(out, cs)
	}
	return out, usage
}

// isolation describes how the local sandbox isolates commands, for
// opencode.status ("" when the local provider was never used).
func (p *sandboxPool) isolation() string {
	p.mu.Lock()
	pr := p.providers["local"].p
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

// startAgent returns the OpenCode server of ps's sandbox, starting it when
// needed. In a cloud sandbox OpenCode is found (or installed, pinned to
// opencode.TestedVersion) first, and listens on 0.0.0.0 so that the
// provider's preview proxy reaches it; the driver then talks to it through
// the sandbox's preview URL (with Daytona's preview token header). Failures
// say what failed and how to fix it.
func (p *sandboxPool) startAgent(ctx context.Context, ps *pooled, cfg opencode.Config, report func(string)) (*opencode.Server, error) {
	if fleet.IsCloud(ps.provider) {
		cfg.Hostname = "0.0.0.0"
		bin, err := p.cloudOpenCode(ctx, ps, cfg.Binary, report)
		if err != nil {
			return nil, err
		}
		cfg.Binary = bin
	}
	srv, err := p.s.agents.Server(ctx, ps.sb, cfg)
	if err == nil {
		return srv, nil
	}
	var pe *fleet.PreviewError
	switch {
	case ctx.Err() != nil, errors.Is(err, context.Canceled):
		return nil, err
	case errors.As(err, &pe), errors.Is(err, opencode.ErrNotInstalled), errors.Is(err, opencode.ErrNoAPIKey):
		return nil, err // these say what to do
	}
	return nil, fmt.Errorf("OpenCode API failed in the %s sandbox: %w (run `opencode-lsp doctor --providers %s` to check the sandbox, its preview URL and OpenCode)", ps.provider, err, ps.provider)
}

// cloudOpenCode finds or installs OpenCode in a cloud sandbox, once per
// sandbox.
func (p *sandboxPool) cloudOpenCode(ctx context.Context, ps *pooled, setting string, report func(string)) (string, error) {
	id := ps.sb.ID()
	p.mu.Lock()
	bin, ok := p.agentBins[id]
	p.mu.Unlock()
	if ok {
		return bin, nil
	}
	report("looking for OpenCode in the " + ps.provider + " sandbox")
	found, err := fleet.FindOrInstallOpenCode(ctx, ps.sb, fleet.OpenCodeInstall{
		Candidates: []string{setting, "opencode"},
		Version:    opencode.TestedVersion,
		Progress:   report,
	})
	if err != nil {
		return "", fmt.Errorf("OpenCode in the %s sandbox: %w", ps.provider, err)
	}
	if found.Version != opencode.TestedVersion {
		p.s.log.Warn("OpenCode in the sandbox differs from the tested version", "provider", ps.provider, "version", found.Version, "tested", opencode.TestedVersion)
	}
	p.s.log.Info("OpenCode in the sandbox", "provider", ps.provider, "sandbox", id, "path", found.Path, "version", found.Version, "installed", found.Installed)
	p.mu.Lock()
	p.agentBins[id] = found.Path
	p.mu.Unlock()
	return found.Path, nil
}

// sanitizeKey replaces every character outside [A-Za-z0-9._-] with "_".
func sanitizeKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}
