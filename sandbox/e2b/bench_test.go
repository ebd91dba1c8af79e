package e2b

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
)

// BenchmarkSync measures a first sync of a 300-file workspace against
// incremental syncs of the same tree (nothing changed, one file changed),
// over real HTTP to the fake; compare the sub-benchmarks' medians.
func BenchmarkSync(b *testing.B) {
	f := fakee2b.New(b, fakee2b.Options{APIKey: key})
	p, err := NewProvider(Config{APIKey: key, APIURL: f.APIURL, SandboxURL: f.SandboxURL})
	if err != nil {
		b.Fatal(err)
	}
	ws := b.TempDir()
	content := make([]byte, 4<<10)
	for i := range 300 {
		name := filepath.Join(ws, fmt.Sprintf("pkg%02d", i%20), fmt.Sprintf("file%03d.go", i))
		os.MkdirAll(filepath.Dir(name), 0o755)
		content[0] = byte(i)
		if err := os.WriteFile(name, content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	src := sandbox.Source{Root: ws}
	ctx := context.Background()
	open := func(b *testing.B) *Sandbox {
		sb, err := p.open(ctx, sandbox.Spec{Key: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sb.Close(ctx) })
		return sb
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			sb := open(b)
			b.StartTimer()
			if _, _, err := sb.Sync(ctx, src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		sb := open(b)
		sb.Sync(ctx, src)
		for b.Loop() {
			if _, st, err := sb.Sync(ctx, src); err != nil || st.Written != 0 {
				b.Fatal(st, err)
			}
		}
	})
	b.Run("one-changed", func(b *testing.B) {
		sb := open(b)
		sb.Sync(ctx, src)
		i := 0
		for b.Loop() {
			i++
			src.Overlays = map[string][]byte{"pkg00/file000.go": []byte(fmt.Sprint(i))}
			if _, st, err := sb.Sync(ctx, src); err != nil || st.Written != 1 {
				b.Fatal(st, err)
			}
		}
	})
}
