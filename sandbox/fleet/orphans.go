package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SweepResult is what [Manager.SweepOrphans] did.
type SweepResult struct {
	// Killed are the orphans killed.
	Killed []string
	// Kept counts sandboxes of this owner whose daemon still runs.
	Kept int
}

// SweepOrphans lists provider's sandboxes labelled with this manager's
// owner and kills those whose daemon ([LabelDaemon]) no longer runs on this
// host, accounting their time in the store. Sandboxes without a daemon label
// are left alone. A provider without an [Inventory] (local) has no orphans.
func (m *Manager) SweepOrphans(ctx context.Context, provider string) (SweepResult, error) {
	var res SweepResult
	pr, err := m.opts.Provider(provider)
	if err != nil {
		return res, err
	}
	inv := InventoryOf(pr)
	if inv == nil {
		return res, nil
	}
	items, err := inv.List(ctx, map[string]string{LabelApp: "1", LabelOwner: m.inst.Owner})
	if err != nil {
		return res, fmt.Errorf("listing %s sandboxes: %w", provider, err)
	}
	var errs []error
	for _, it := range items {
		d := it.Labels[LabelDaemon]
		if d == "" || d == m.inst.ID || it.Labels[LabelOwner] != m.inst.Owner || Alive(d) {
			res.Kept++
			continue
		}
		if err := inv.Kill(ctx, it.ID); err != nil {
			errs = append(errs, fmt.Errorf("killing orphan %s sandbox %s: %w", provider, it.ID, err))
			continue
		}
		if err := m.store.finish(m.now(), provider, it.ID); err != nil {
			m.log.Warn("Could not record a killed orphan in the usage file", "sandbox", it.ID, "err", err)
		}
		m.log.Info("Killed an orphan sandbox", "provider", provider, "sandbox", it.ID, "daemon", d,
			"age", time.Since(it.CreatedAt).Round(time.Second))
		res.Killed = append(res.Killed, it.ID)
	}
	return res, errors.Join(errs...)
}

// SweepOnce runs [Manager.SweepOrphans] for provider the first time it is
// called for it in this manager (later calls return at once), and logs the
// outcome. It is meant to run in the background at start-up and at the
// first use of a cloud provider.
func (m *Manager) SweepOnce(ctx context.Context, provider string) {
	m.mu.Lock()
	if m.swept[provider] {
		m.mu.Unlock()
		return
	}
	m.swept[provider] = true
	m.mu.Unlock()
	res, err := m.SweepOrphans(ctx, provider)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("Looking for orphan sandboxes failed", "provider", provider, "err", err)
		}
		// Try again at the next call.
		m.mu.Lock()
		delete(m.swept, provider)
		m.mu.Unlock()
		return
	}
	if len(res.Killed) > 0 {
		m.log.Info("Killed orphan sandboxes of daemons that are gone", "provider", provider, "count", len(res.Killed))
	}
}
