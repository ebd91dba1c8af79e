package daytona

import (
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
)

const testKey = "dtn_test_key_5b1e0c9a"

// newFake starts a fake Daytona for one test.
func newFake(t testing.TB, opts fakedaytona.Options) *fakedaytona.Server {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	f, err := fakedaytona.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// newProvider returns a provider talking to f.
func newProvider(t testing.TB, f *fakedaytona.Server, mod func(*Options)) *Provider {
	t.Helper()
	o := Options{APIKey: testKey, APIURL: f.APIURL()}
	if mod != nil {
		mod(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
