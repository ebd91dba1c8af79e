package local

import (
	"log/slog"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/sandboxtest"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestProvider(t testing.TB, iso Isolation) *Provider {
	t.Helper()
	p, err := New(Options{StateDir: t.TempDir(), Isolation: iso, Logger: quietLogger()})
	if err != nil {
		if iso == IsolationBwrap {
			t.Skipf("bubblewrap unusable here: %v", err)
		}
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider { return newTestProvider(t, IsolationNone) })
}

func TestConformanceBwrap(t *testing.T) {
	newTestProvider(t, IsolationBwrap) // skips when bubblewrap is unusable
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider { return newTestProvider(t, IsolationBwrap) })
}
