package daytona

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
)

// The benchmarks run against the fake on loopback, so their times measure
// the provider's own work and its number of round trips (reported as
// requests/op), not Daytona's latency. Multiply requests/op by a real round
// trip (tens of ms) to estimate the cost against the cloud.

func benchSandbox(b *testing.B, files int) (*fakedaytona.Server, *Sandbox, string) {
	f := newFake(b, fakedaytona.Options{})
	p := newProvider(b, f, nil)
	ws := b.TempDir()
	for i := 0; i < files; i++ {
		d := filepath.Join(ws, "pkg"+strconv.Itoa(i%20))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(i)+".go"), []byte("package p // "+strconv.Itoa(i)+"\n"), 0o644)
	}
	sbx, err := p.Open(context.Background(), sandbox.Spec{Key: "bench", WorkspaceRoot: ws})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sbx.Close(context.Background()) })
	sb := sbx.(*Sandbox)
	if _, _, err := sb.Sync(context.Background(), sandbox.Source{Root: ws}); err != nil {
		b.Fatal(err)
	}
	return f, sb, ws
}

func reportRequests(b *testing.B, f *fakedaytona.Server, before int) {
	b.ReportMetric(float64(len(f.Requests())-before)/float64(b.N), "requests/op")
}

func BenchmarkExecEcho(b *testing.B) {
	f, sb, _ := benchSandbox(b, 0)
	ctx := context.Background()
	before := len(f.Requests())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, err := sb.Exec(ctx, sandbox.Cmd{Shell: "echo hi"}); err != nil || st.Code != 0 {
			b.Fatal(st, err)
		}
	}
	b.StopTimer()
	reportRequests(b, f, before)
}

func BenchmarkSyncUnchanged1000(b *testing.B) {
	f, sb, ws := benchSandbox(b, 1000)
	ctx := context.Background()
	before := len(f.Requests())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, st, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil || st.Written != 0 {
			b.Fatal(st, err)
		}
	}
	b.StopTimer()
	reportRequests(b, f, before)
}

func BenchmarkManifest1000(b *testing.B) {
	f, sb, _ := benchSandbox(b, 1000)
	ctx := context.Background()
	before := len(f.Requests())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m, err := sb.Manifest(ctx); err != nil || len(m) != 1000 {
			b.Fatal(len(m), err)
		}
	}
	b.StopTimer()
	reportRequests(b, f, before)
}
