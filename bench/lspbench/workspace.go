package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// workspace is the Go module every server is measured on: go.mod, a
// generated file of exactly bigLines lines (valid, gofmt-clean Go), and a
// test that sleeps one second (the baseline's ~1 s command).
type workspace struct {
	Root    string
	BigPath string
	BigText string
	// SelLine is a statement line in the middle of the file; SelStart and
	// SelEnd are its first non-blank column and its end (ASCII, so every
	// position encoding agrees).
	SelLine, SelStart, SelEnd int
	SleepTestPath             string
}

const bigLines = 2000

func (w *workspace) uri(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

// makeWorkspace writes the workspace under dir.
func makeWorkspace(dir string) (*workspace, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	w := &workspace{Root: root, BigPath: filepath.Join(root, "big.go"), SleepTestPath: filepath.Join(root, "sleep_test.go")}

	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	add("// Package benchws is a generated workload for lspbench: %d lines of", bigLines)
	add("// ordinary Go that every language server is measured on.")
	add("package benchws")
	add("")
	add("import (")
	add("\t\"fmt\"")
	add("\t\"strconv\"")
	add(")")
	add("")
	const fnLines = 22
	for i := 0; len(lines)+fnLines <= bigLines-2; i++ {
		add("// Func%04d folds xs into a small checksum; k weights multiples of three.", i)
		add("func Func%04d(xs []int, k int) (int, error) {", i)
		add("\tif k < 0 {")
		add("\t\treturn 0, fmt.Errorf(\"Func%04d: negative k %%d\", k)", i)
		add("\t}")
		if w.SelLine == 0 && len(lines) >= bigLines/2 {
			w.SelLine = len(lines)
			w.SelStart = 1
			w.SelEnd = 1 + len("total := k + 1")
		}
		add("\ttotal := k + 1")
		add("\tfor i, x := range xs {")
		add("\t\tswitch {")
		add("\t\tcase x%%3 == 0:")
		add("\t\t\ttotal += x * k")
		add("\t\tcase x%%5 == 0:")
		add("\t\t\ttotal -= i")
		add("\t\tdefault:")
		add("\t\t\ttotal ^= x + %d", i%97)
		add("\t\t}")
		add("\t}")
		add("\tif total > 1000 {")
		add("\t\ttotal %%= 1000")
		add("\t}")
		add("\ts := strconv.Itoa(total)")
		add("\treturn len(s) + total, nil")
		add("}")
		add("")
	}
	for len(lines) < bigLines-1 {
		add("// (padding to %d lines)", bigLines)
	}
	add("// End of the generated file.")
	w.BigText = strings.Join(lines, "\n") + "\n"

	files := map[string]string{
		"go.mod":        "module example.com/benchws\n\ngo 1.22\n",
		"big.go":        w.BigText,
		"sleep_test.go": "package benchws\n\nimport (\n\t\"testing\"\n\t\"time\"\n)\n\n// TestBenchSleep is the ~1 s command gopls runs (gopls.run_tests).\nfunc TestBenchSleep(t *testing.T) { time.Sleep(time.Second) }\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	return w, nil
}
