package lsp

import (
	"context"

	"github.com/opencode-lsp/opencode-lsp/lsp/command"
)

// Backends connect the commands to the domain packages. The daemon fills
// them in; tests replace parts. A nil field makes the matching feature
// report that it is unavailable.
type Backends struct {
	// Close releases every sandbox (shutdown, exit, editor gone).
	Close func(ctx context.Context) error
	// Status reports open sandboxes, sandbox-seconds per provider and how
	// the local sandbox isolates commands.
	Status func() (sandboxes []command.SandboxStatus, usage map[string]float64, isolation string)
}

// threadStore keeps chat threads (threadId → messages) for follow-ups.
type threadStore struct{}

func newThreadStore() *threadStore { return &threadStore{} }
