package daytona

import (
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/sandboxtest"
)

// TestConformance runs the sandbox conformance suite against the provider
// and a fake Daytona that runs the commands for real on this machine.
func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		return newProvider(t, newFake(t, fakedaytona.Options{}), nil)
	})
}

// TestConformanceSplitFrames runs it again with follow-logs frames of 5
// bytes sent as text, so every stdout/stderr marker spans frames, and a
// sandbox that takes a few polls to start.
func TestConformanceSplitFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		return newProvider(t, newFake(t, fakedaytona.Options{LogFrameSize: 5, TextLogFrames: true, StartAfterPolls: 3}), nil)
	})
}
