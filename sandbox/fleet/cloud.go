package fleet

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b"
)

// Listed is one sandbox of a cloud provider's listing.
type Listed struct {
	ID     string
	Labels map[string]string
	// CreatedAt is when it was created (E2B startedAt, Daytona createdAt).
	CreatedAt time.Time
	// State is the provider's own state word ("running", "started", ...).
	State string
}

// Inventory is the part of a cloud provider's control plane the manager
// and `doctor` use: list by labels, kill, and tell whether a sandbox still
// exists.
type Inventory interface {
	// List returns the sandboxes whose labels (E2B metadata, Daytona
	// labels) include every pair of labels.
	List(ctx context.Context, labels map[string]string) ([]Listed, error)
	// Kill ends a sandbox; one that is already gone is not an error.
	Kill(ctx context.Context, id string) error
	// Exists reports whether the sandbox still exists (and is not being
	// destroyed).
	Exists(ctx context.Context, id string) (bool, error)
}

// InventoryOf returns the control plane of a cloud provider (E2B or
// Daytona), or nil for a provider without one (local).
func InventoryOf(p sandbox.Provider) Inventory {
	switch p := p.(type) {
	case *e2b.Provider:
		return e2bInventory{p.Client()}
	case *daytona.Provider:
		return daytonaInventory{p.Client()}
	}
	return nil
}

// IsUnauthorized reports whether err is a cloud provider refusing its API
// key (401 or 403).
func IsUnauthorized(err error) bool {
	if errors.Is(err, e2b.ErrUnauthorized) {
		return true
	}
	var de *daytona.Error
	return errors.As(err, &de) && (de.StatusCode == http.StatusUnauthorized || de.StatusCode == http.StatusForbidden)
}

type e2bInventory struct{ c *e2b.Client }

func (i e2bInventory) List(ctx context.Context, labels map[string]string) ([]Listed, error) {
	items, err := i.c.List(ctx, e2b.ListParams{Metadata: labels})
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(items))
	for _, it := range items {
		out = append(out, Listed{ID: it.SandboxID, Labels: it.Metadata, CreatedAt: it.StartedAt, State: it.State})
	}
	return out, nil
}

func (i e2bInventory) Kill(ctx context.Context, id string) error {
	if err := i.c.Kill(ctx, id); err != nil && !errors.Is(err, e2b.ErrSandboxNotFound) {
		return err
	}
	return nil
}

func (i e2bInventory) Exists(ctx context.Context, id string) (bool, error) {
	_, err := i.c.Get(ctx, id)
	if errors.Is(err, e2b.ErrSandboxNotFound) {
		return false, nil
	}
	return err == nil, err
}

type daytonaInventory struct{ c *daytona.Client }

// gone are the Daytona states of a sandbox that no longer bills.
func daytonaGone(state string) bool { return state == "destroyed" || state == "destroying" }

func (i daytonaInventory) List(ctx context.Context, labels map[string]string) ([]Listed, error) {
	items, err := i.c.List(ctx, labels)
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(items))
	for _, it := range items {
		if daytonaGone(it.State) {
			continue
		}
		out = append(out, Listed{ID: it.ID, Labels: it.Labels, CreatedAt: it.CreatedAt, State: it.State})
	}
	return out, nil
}

func (i daytonaInventory) Kill(ctx context.Context, id string) error { return i.c.Delete(ctx, id) }

func (i daytonaInventory) Exists(ctx context.Context, id string) (bool, error) {
	info, err := i.c.Get(ctx, id)
	var de *daytona.Error
	if errors.As(err, &de) && de.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !daytonaGone(info.State), nil
}

// keepAlive pushes a cloud sandbox's end of life to ttl from now: E2B's
// timeout is set (which also shortens a longer one, so that an idle sandbox
// never outlives ttl), Daytona's idle timer is refreshed (its auto-stop
// interval is the ttl given at create).
func keepAlive(ctx context.Context, sb sandbox.Sandbox, ttl time.Duration) error {
	switch s := sb.(type) {
	case interface {
		SetTimeout(context.Context, time.Duration) error
	}:
		return s.SetTimeout(ctx, ttl)
	case interface{ KeepAlive(context.Context) error }:
		return s.KeepAlive(ctx)
	}
	return nil
}
