package local

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// The benchmarks compare the local sandbox with a bare fork/exec, and time
// syncs of a 10,000-file / 100 MB tree. They run only with -bench; the tree
// is generated once per run (skipped with -short):
//
//	go test ./sandbox/local -run '^$' -bench . -benchtime 20x -count 5

func BenchmarkExecTrueBare(b *testing.B) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		cmd := exec.Command(truePath)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchExecTrue(b *testing.B, iso Isolation) {
	p := newTestProvider(b, iso)
	ws := b.TempDir()
	sb, err := p.Open(context.Background(), sandbox.Spec{Key: "bench", WorkspaceRoot: ws})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close(context.Background())
	ctx := context.Background()
	for b.Loop() {
		st, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"true"}})
		if err != nil || st.Code != 0 {
			b.Fatal(st, err)
		}
	}
}

func BenchmarkExecTrueLocal(b *testing.B) { benchExecTrue(b, IsolationNone) }

func BenchmarkExecTrueLocalBwrap(b *testing.B) { benchExecTrue(b, IsolationBwrap) }

const (
	benchFiles = 10_000
	benchBytes = 100_000_000
)

var (
	benchTreeOnce sync.Once
	benchTreeDir  string
	benchTreeErr  error
)

// benchTree returns a generated workspace of benchFiles files totalling
// benchBytes bytes (100 directories of 100 files, sizes 2–18 kB).
func benchTree(b *testing.B) string {
	if testing.Short() {
		b.Skip("the sync benchmarks generate 100 MB; skipped with -short")
	}
	benchTreeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sandbox-bench-tree-")
		if err != nil {
			benchTreeErr = err
			return
		}
		benchTreeDir = dir
		rng := rand.New(rand.NewChaCha8([32]byte{1}))
		buf := make([]byte, 18_000)
		total := 0
		for i := 0; i < benchFiles; i++ {
			// Pairs of files average 10 kB: 10,000 files make 100 MB.
			d := (i / 2 * 7919) % 8_000
			size := benchBytes/benchFiles + d
			if i%2 == 1 {
				size = benchBytes/benchFiles - d
			}
			for j := 0; j < size; j += 8 {
				v := rng.Uint64()
				for k := 0; k < 8 && j+k < size; k++ {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
			name := filepath.Join(dir, fmt.Sprintf("d%02d", i/1000), fmt.Sprintf("s%d", i/100%10), fmt.Sprintf("f%05d.dat", i))
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				benchTreeErr = err
				return
			}
			if err := os.WriteFile(name, buf[:size], 0o644); err != nil {
				benchTreeErr = err
				return
			}
			total += size
		}
		if total != benchBytes {
			benchTreeErr = fmt.Errorf("generated %d bytes", total)
		}
	})
	if benchTreeErr != nil {
		b.Fatal(benchTreeErr)
	}
	return benchTreeDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTreeDir != "" {
		os.RemoveAll(benchTreeDir)
	}
	os.Exit(code)
}

// BenchmarkSyncFirst syncs the tree into a fresh sandbox.
func BenchmarkSyncFirst(b *testing.B) {
	ws := benchTree(b)
	p := newTestProvider(b, IsolationNone)
	ctx := context.Background()
	b.SetBytes(benchBytes)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		sb, err := p.Open(ctx, sandbox.Spec{Key: fmt.Sprintf("first-%d", i), WorkspaceRoot: ws})
		if err != nil {
			b.Fatal(err)
		}
		// Start from a quiet disk: with ext4's ordered data mode, file
		// creation otherwise waits on the writeback of earlier iterations.
		syscall.Sync()
		b.StartTimer()
		_, st, err := sb.Sync(ctx, sandbox.Source{Root: ws})
		b.StopTimer()
		if err != nil || st.Written != benchFiles {
			b.Fatal(st, err)
		}
		sb.Close(ctx)
		p.Remove(fmt.Sprintf("first-%d", i))
		b.StartTimer()
	}
}

// BenchmarkSyncOneChanged syncs the tree after one file changed.
func BenchmarkSyncOneChanged(b *testing.B) {
	ws := benchTree(b)
	p := newTestProvider(b, IsolationNone)
	ctx := context.Background()
	sb, err := p.Open(ctx, sandbox.Spec{Key: "one", WorkspaceRoot: ws})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close(ctx)
	if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
		b.Fatal(err)
	}
	syscall.Sync()
	changed := filepath.Join(ws, "d05", "s0", "f05000.dat")
	orig, err := os.ReadFile(changed)
	if err != nil {
		b.Fatal(err)
	}
	defer os.WriteFile(changed, orig, 0o644)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if err := os.WriteFile(changed, fmt.Appendf(nil, "%s%d", orig, i), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, st, err := sb.Sync(ctx, sandbox.Source{Root: ws})
		if err != nil || st.Written != 1 {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkManifest lists an unchanged 10,000-file working copy (hashes
// cached by stat).
func BenchmarkManifest(b *testing.B) {
	ws := benchTree(b)
	p := newTestProvider(b, IsolationNone)
	ctx := context.Background()
	sb, err := p.Open(ctx, sandbox.Spec{Key: "manifest", WorkspaceRoot: ws})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close(ctx)
	if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m, err := sb.Manifest(ctx)
		if err != nil || len(m) != benchFiles {
			b.Fatal(len(m), err)
		}
	}
}
