package e2b_test

import (
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
	"github.com/opencode-lsp/opencode-lsp/sandbox/sandboxtest"
)

// TestConformance runs the provider conformance suite against the fake E2B.
func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		f := fakee2b.New(t, fakee2b.Options{APIKey: testKey})
		p, err := e2b.NewProvider(e2b.Config{APIKey: testKey, APIURL: f.APIURL, SandboxURL: f.SandboxURL, Domain: f.Domain})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

const testKey = "e2b_0123456789abcdef0123456789abcdef"
