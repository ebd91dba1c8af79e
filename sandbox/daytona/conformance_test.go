package daytona

import (
	"os"
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

// TestConformanceLive runs the suite against the real Daytona when
// DAYTONA_LIVE_TEST=1 and DAYTONA_API_KEY are set (DAYTONA_API_URL and
// DAYTONA_TOOLBOX_URL are honoured). Every subtest creates a sandbox and
// deletes it at its end.
func TestConformanceLive(t *testing.T) {
	if os.Getenv("DAYTONA_LIVE_TEST") != "1" || os.Getenv("DAYTONA_API_KEY") == "" {
		t.Skip("set DAYTONA_LIVE_TEST=1 and DAYTONA_API_KEY to run against the real Daytona")
	}
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := New(OptionsFromEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
