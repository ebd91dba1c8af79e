package outputdiag

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reviewdog/errorformat"
	"github.com/reviewdog/errorformat/fmts"
)

// benchOutput builds about size bytes of compiler output in the given
// style, with unique findings spread over many files.
func benchOutput(style string, size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		file := fmt.Sprintf("internal/pkg%d/file_%d", i%50, i%10)
		line, col := i%300+1, i%70+1
		switch style {
		case "govet":
			if i%5 == 0 {
				fmt.Fprintf(&b, "# example.com/project/internal/pkg%d\n", i%50)
			}
			fmt.Fprintf(&b, "./%s.go:%d:%d: fmt.Sprintf format %%d has arg name%d of wrong type string\n", file, line, col, i)
		case "gcc":
			if i%5 == 0 {
				fmt.Fprintf(&b, "%s.c: In function ‘handler_%d’:\n", file, i)
			}
			fmt.Fprintf(&b, "%s.c:%d:%d: warning: unused variable ‘tmp%d’ [-Wunused-variable]\n", file, line, col, i)
			fmt.Fprintf(&b, "  %3d |     int tmp%d = compute(%d);\n", line, i, i)
			fmt.Fprintf(&b, "      |         ^~~~~~\n")
		}
	}
	return b.String()
}

// benchText is a TextSource whose 500 files have 300 lines of 100 bytes.
func benchText(string) ([]byte, bool) {
	return benchFile, true
}

var benchFile = []byte(strings.Repeat("\t"+strings.Repeat("x", 98)+"\n", 300))

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds "MB/cpu-s": megabytes per second of CPU time used by the
// process, which stays meaningful on a loaded machine where wall-clock MB/s
// does not (it does not show the gain from matching on several cores).
func reportCPU(b *testing.B, bytes int, start time.Duration) {
	if used := cpuTime() - start; used > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/1e6/used.Seconds(), "MB/cpu-s")
	}
}

// BenchmarkParse10MB measures output → diagnostics throughput on 10 MB of
// go vet and gcc output (goal: ≥ 50 MB/s). The errorformat sub-benchmarks
// are the baseline measured in the same run: errorformat's own Scanner with
// the closest predefined format (govet; gcc's three severity lines), which
// only matches lines and builds no diagnostics.
func BenchmarkParse10MB(b *testing.B) {
	gccEfm := []string{`%f:%l:%c: %trror: %m`, `%f:%l:%c: %tarning: %m`, `%f:%l:%c: %tote: %m`, `%-G%.%#`}
	for _, tc := range []struct {
		style, command string
		efm            []string
	}{
		{"govet", "go vet ./...", fmts.DefinedFmts()["govet"].Errorformat},
		{"gcc", "gcc -Wall -c x.c", gccEfm},
	} {
		in := benchOutput(tc.style, 10<<20)
		b.Run(tc.style, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			var res Result
			start := cpuTime()
			for b.Loop() {
				var err error
				res, err = Parse(context.Background(), strings.NewReader(in), Spec{Command: tc.command, WorkspaceRoot: wsRoot}, benchText)
				if err != nil {
					b.Fatal(err)
				}
			}
			if res.Total() != MaxDiagnostics || res.Truncated == 0 {
				b.Fatalf("kept %d, truncated %d", res.Total(), res.Truncated)
			}
			reportCPU(b, len(in), start)
			b.ReportMetric(float64(res.Total()+res.Truncated), "diags/op")
		})
		b.Run(tc.style+"/errorformat", func(b *testing.B) {
			efm, err := errorformat.NewErrorformat(tc.efm)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(in)))
			start := cpuTime()
			for b.Loop() {
				s := efm.NewScanner(strings.NewReader(in))
				n := 0
				for s.Scan() {
					n++
				}
			}
			reportCPU(b, len(in), start)
		})
	}
}
