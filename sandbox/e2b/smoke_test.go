package e2b

import (
	"bytes"
	"context"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
)

func TestSmoke(t *testing.T) {
	f := fakee2b.New(t, fakee2b.Options{APIKey: "e2b_test"})
	p, err := NewProvider(Config{APIKey: "e2b_test", APIURL: f.APIURL, SandboxURL: f.SandboxURL, Domain: f.Domain})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb, err := p.Open(ctx, sandbox.Spec{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(sb.ID(), sb.Root())
	var out, errb bytes.Buffer
	st, err := sb.Exec(ctx, sandbox.Cmd{Shell: "echo hi; echo err >&2; pwd; env; exit 3", Stdout: &out, Stderr: &errb})
	t.Logf("%+v %v\n%s\n%s", st, err, out.String(), errb.String())
}
