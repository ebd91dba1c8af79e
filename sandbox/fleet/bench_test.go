package fleet_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/fleet"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// BenchmarkLease measures a lease on an open sandbox (the cost every run
// pays on top of its work).
func BenchmarkLease(b *testing.B) {
	lp, err := local.New(local.Options{StateDir: b.TempDir(), Isolation: local.IsolationNone})
	if err != nil {
		b.Fatal(err)
	}
	m := fleet.New(fleet.Options{Provider: func(string) (sandbox.Provider, error) { return lp, nil }, Limits: defaultLimits().get})
	defer m.CloseAll(context.Background())
	ws := fleet.Workspace{Root: b.TempDir()}
	ctx := context.Background()
	for b.Loop() {
		l, err := m.Acquire(ctx, "local", ws)
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

// BenchmarkStoreRound measures one reserve+confirm+finish of the usage file
// (three flock'd read-modify-writes), what opening and closing a cloud
// sandbox adds.
func BenchmarkStoreRound(b *testing.B) {
	st := fleet.NewStore(b.TempDir())
	i := 0
	for b.Loop() {
		i++
		if err := fleet.StoreRound(st, fmt.Sprint("sb-", i)); err != nil {
			b.Fatal(err)
		}
	}
}
