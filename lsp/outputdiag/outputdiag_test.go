package outputdiag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reviewdog/errorformat"
	"github.com/reviewdog/errorformat/fmts"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

func TestTool(t *testing.T) {
	for cmd, want := range map[string]string{
		"go vet ./...":                           "go",
		"npx tsc --noEmit":                       "tsc",
		"npx -p typescript tsc --noEmit":         "tsc",
		"npx --yes --package=typescript tsc":     "tsc",
		"npm exec -- eslint .":                   "eslint",
		"npm exec eslint -- .":                   "eslint",
		"pnpm dlx eslint .":                      "eslint",
		"env FOO=1 go vet ./...":                 "go",
		"env -u HOME -i A=b cargo check":         "cargo",
		"CGO_ENABLED=0 GOOS=linux go build ./..": "go",
		"cd sub && cargo check":                  "cargo",
		"sh -c 'gcc -c x.c'":                     "gcc",
		`bash -lc "cd a; make -j2"`:              "make",
		"timeout -s KILL 60 make":                "make",
		"nice -n 5 time python3 -m pytest":       "python3",
		"node_modules/.bin/tsc --noEmit":         "tsc",
		"/usr/bin/gcc-12 -c main.c":              "gcc-12",
		"python3 -m pytest":                      "python3",
		"uv run pytest -q":                       "pytest",
		"npm test":                               "npm",
		"go test ./... 2>&1 | tee log":           "go",
		"":                                       "",
		"   ":                                    "",
	} {
		if got := Tool(cmd); got != want {
			t.Errorf("Tool(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestFormatChoice(t *testing.T) {
	for cmd, want := range map[string]string{
		"go vet ./...":                      "go",
		"go test -run X ./...":              "go",
		"x86_64-linux-gnu-gcc -c a.c":       "gcc",
		"clang++-16 -c a.cc":                "gcc",
		"cargo clippy":                      "rustc",
		"npx tsc --noEmit":                  "tsc",
		"eslint src":                        "eslint",
		"eslint -f compact src":             "eslint-compact",
		"python3 -m pytest -q":              "pytest",
		"pytest":                            "pytest",
		"python3 -m mypy .":                 "mypy",
		"flake8 .":                          "flake8",
		"python3 -m compileall -q .":        "python",
		"python3 app.py":                    "python",
		"make -j4":                          "auto",
		"./build.sh":                        "auto",
		"golangci-lint run":                 "golangci-lint",
		"env GOFLAGS=-mod=mod go build ./.": "go",
	} {
		res, err := Parse(context.Background(), strings.NewReader(""), Spec{Command: cmd, WorkspaceRoot: wsRoot}, nil)
		if err != nil {
			t.Fatalf("%q: %v", cmd, err)
		}
		if res.Format != want {
			t.Errorf("format of %q = %q, want %q", cmd, res.Format, want)
		}
	}
}

func TestBadSpec(t *testing.T) {
	for name, spec := range map[string]Spec{
		"relative workspace": {WorkspaceRoot: "rel/dir"},
		"relative sandbox":   {WorkspaceRoot: wsRoot, SandboxRoot: "tmp/x"},
		"encoding":           {WorkspaceRoot: wsRoot, Encoding: "utf-7"},
		"format":             {WorkspaceRoot: wsRoot, Format: "nope"},
		"errorformat":        {WorkspaceRoot: wsRoot, Errorformat: []string{"%f:%l:%*[a"}},
		"dir escapes":        {WorkspaceRoot: wsRoot, Dir: "../elsewhere"},
	} {
		if _, err := Parse(context.Background(), strings.NewReader("a.go:1:1: x\n"), spec, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := Parse(context.Background(), strings.NewReader(""), Spec{WorkspaceRoot: wsRoot, Format: "nope"}, nil)
	if !errors.Is(err, errNoFormat) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown format error = %v", err)
	}
}

// memText is a TextSource over a map.
func memText(files map[string]string) TextSource {
	return func(p string) ([]byte, bool) {
		s, ok := files[p]
		return []byte(s), ok
	}
}

func parseString(t *testing.T, out string, spec Spec, files map[string]string) Result {
	t.Helper()
	if spec.WorkspaceRoot == "" {
		spec.WorkspaceRoot = wsRoot
	}
	res, err := Parse(context.Background(), strings.NewReader(out), spec, memText(files))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLineCleaning(t *testing.T) {
	files := map[string]string{"a.go": "package a\nx := \"é😀\" + y\n"}
	// CRLF output, colours, an OSC hyperlink, a charset escape, invalid UTF-8
	// in the message, a progress line overwritten with a lone CR, a 100 KiB
	// line and a last line without a newline.
	out := "\x1b]8;;file:///x\x1b\\link\x1b]8;;\x1b\\\r\n" +
		"\x1b(B\x1b[1m\x1b[31ma.go:2:15:\x1b[0m bad \xff\xfe thing\r\n" +
		"10%\r50%\r" + strings.Repeat("y", 100<<10) + "\n" +
		"a.go:2:15: again"
	res := parseString(t, out, Spec{Command: "go build"}, files)
	got := render(t, res)
	// "+" is byte 14 (1-based column 15), UTF-16 unit 11.
	want := []string{"a.go 1:11-1:12 error: again", "a.go 1:11-1:12 error: bad \uFFFD thing"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if res.Lines != 6 || res.LongLines != 1 {
		t.Errorf("Lines = %d, LongLines = %d; want 6, 1", res.Lines, res.LongLines)
	}
}

func TestLineReaderCutsAtCharacterBoundary(t *testing.T) {
	line := strings.Repeat("é", MaxLineBytes) // 2 bytes each
	lr := newLineReader(strings.NewReader(line+"\nnext\n"), MaxLineBytes)
	l, ok := lr.next()
	if !ok || len(l) > MaxLineBytes || !strings.HasPrefix(line, string(l)) || len(l)%2 != 0 {
		t.Fatalf("cut line: ok=%v len=%d", ok, len(l))
	}
	if l, ok := lr.next(); !ok || string(l) != "next" {
		t.Fatalf("line after = %q, %v", l, ok)
	}
	if _, ok := lr.next(); ok || lr.long != 1 {
		t.Fatalf("expected EOF and one long line, got long=%d", lr.long)
	}
}

func TestStripANSI(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[01;31m\x1b[Kerror:\x1b[m\x1b[K x": "error: x",
		"a\x1b]0;title\x07b":                    "ab",
		"a\x1b]8;;http://x\x1b\\b":              "ab",
		"\x1b(Bplain":                           "plain",
		"cut\x1b[":                              "cut",
		"esc at end\x1b":                        "esc at end",
	} {
		if got := string(StripANSI([]byte(in))); got != want {
			t.Errorf("StripANSI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPaths(t *testing.T) {
	files := map[string]string{"sub/x.go": "package sub\n\nfunc F() {}\n", "x.go": "package x\n"}
	out := strings.Join([]string{
		"/sandbox/work/sub/x.go:3:1: absolute in the sandbox",
		"x.go:3:6: relative to the command's dir",
		"../x.go:1:1: relative, up to the root",
		"../../outside.go:1:1: escapes the workspace",
		"/usr/local/go/src/fmt/print.go:10:2: outside",
	}, "\n")
	res := parseString(t, out, Spec{Command: "go build", Dir: "sub", SandboxRoot: "/sandbox/work/"}, files)
	got := render(t, res)
	want := []string{
		"sub/x.go 2:0-2:1 error: absolute in the sandbox",
		"sub/x.go 2:5-2:6 error: relative to the command's dir",
		"x.go 0:0-0:1 error: relative, up to the root",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	wantOut := []string{"/home/dev/outside.go", "/usr/local/go/src/fmt/print.go"}
	if !slices.Equal(res.Outside, wantOut) {
		t.Errorf("Outside = %q, want %q", res.Outside, wantOut)
	}
	if len(res.ByURI[protocol.DocumentURI("file:///home/dev/my%20proj%20%C3%A9/x.go")]) != 1 {
		t.Errorf("URI not escaped as expected: %v", res.Counts())
	}
	// A path under the host workspace root (a tool run on the host). Paths
	// with spaces are beyond errorformat's %f, so this root has none.
	res = parseString(t, "/home/dev/proj/x.go:1:1: host path\n", Spec{Command: "go build", WorkspaceRoot: "/home/dev/proj", SandboxRoot: "/sandbox/work"}, files)
	if c := res.Counts(); c["file:///home/dev/proj/x.go"] != 1 || len(c) != 1 {
		t.Errorf("host path: %v", c)
	}
}

func TestUnavailableText(t *testing.T) {
	// No text: columns as printed (one unit wide), line-only → whole line.
	res := parseString(t, "gen/x.go:4:7: a\ngen/y.go:2: b\n", Spec{Command: "go vet"}, nil)
	got := render(t, res)
	want := []string{"gen/x.go 3:6-3:7 warning: a", "gen/y.go 1:0-2:0 warning: b"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if !slices.Equal(res.Unconverted, []string{"gen/x.go", "gen/y.go"}) {
		t.Errorf("Unconverted = %q", res.Unconverted)
	}
	// A line past the end of the text the tool saw is used as printed too.
	res = parseString(t, "a.go:9:3: stale\n", Spec{Command: "go build"}, map[string]string{"a.go": "package a\n"})
	if got := render(t, res); !slices.Equal(got, []string{"a.go 8:2-8:3 error: stale"}) {
		t.Errorf("got %q", got)
	}
}

func TestCapAndDedup(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "a.go:%d:1: e%d\n", i, i)
		fmt.Fprintf(&b, "a.go:%d:1: e%d\n", i, i) // printed twice
	}
	res := parseString(t, b.String(), Spec{Command: "go build", MaxDiagnostics: 20}, nil)
	if res.Total() != 20 || res.Truncated != 30*2 {
		t.Errorf("Total = %d, Truncated = %d; want 20, 60", res.Total(), res.Truncated)
	}
	res = parseString(t, b.String(), Spec{Command: "go build"}, nil)
	if res.Total() != 50 || res.Truncated != 0 {
		t.Errorf("Total = %d, Truncated = %d; want 50, 0", res.Total(), res.Truncated)
	}
	if c := res.Counts(); len(c) != 1 || c["file:///home/dev/my%20proj%20%C3%A9/a.go"] != 50 {
		t.Errorf("Counts = %v", c)
	}
}

func TestEndColumnAndSeverity(t *testing.T) {
	files := map[string]string{"m.py": "x = \"é😀\" + yy\n"}
	// A user format with %t and an inclusive end column %k (mypy's
	// --show-error-end style): "yy" is code points 10-11.
	spec := Spec{Command: "mypy .", Errorformat: []string{"%f:%l:%c:%e:%k: %t%*[a-z]: %m", "%f:%l: %t%*[a-z]: %m"}}
	out := "m.py:1:11:1:12: error: Name \"yy\" is not defined\nm.py:1: note: see here\nm.py:1: Warning: upper-case word\n"
	for enc, want := range map[position.Encoding][]string{
		position.UTF16: {"m.py 0:0-0:14 info: see here", "m.py 0:0-0:14 warning: upper-case word", "m.py 0:11-0:13 error: Name \"yy\" is not defined"},
		position.UTF8:  {"m.py 0:0-0:17 info: see here", "m.py 0:0-0:17 warning: upper-case word", "m.py 0:14-0:16 error: Name \"yy\" is not defined"},
		position.UTF32: {"m.py 0:0-0:13 info: see here", "m.py 0:0-0:13 warning: upper-case word", "m.py 0:10-0:12 error: Name \"yy\" is not defined"},
	} {
		spec.Encoding = enc
		res := parseString(t, out, spec, files)
		if got := render(t, res); !slices.Equal(got, want) {
			t.Errorf("%s: got %q\nwant %q", enc, got, want)
		}
		if res.Format != "errorformat" || res.Tool != "mypy" {
			t.Errorf("format %q tool %q", res.Format, res.Tool)
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := strings.Repeat("a.go:1:1: x\n", 200000)
	res, err := Parse(ctx, strings.NewReader(big), Spec{Command: "go build", WorkspaceRoot: wsRoot}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if res.Lines >= 200000 {
		t.Errorf("read all %d lines after cancellation", res.Lines)
	}
	// Without a command there is no code.
	res = parseString(t, "a.go:1:1: x\n", Spec{Format: "govet"}, nil)
	if ds := res.ByURI["file:///home/dev/my%20proj%20%C3%A9/a.go"]; len(ds) != 1 || ds[0].Code != nil || res.Tool != "" {
		t.Errorf("no command: %+v", res)
	}
	// The errorformat Scanner path stops too.
	res, err = Parse(ctx, strings.NewReader(big), Spec{Errorformat: []string{"%E%f:%l:%c: %m", "%-G%.%#"}, WorkspaceRoot: wsRoot}, nil)
	if !errors.Is(err, context.Canceled) || res.Lines >= 200000 {
		t.Fatalf("scanner: err = %v after %d lines", err, res.Lines)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		r.n--
		return copy(p, "a.go:1:1: before the failure\n"), nil
	}
	return 0, errors.New("pipe broke")
}

func TestReadError(t *testing.T) {
	res, err := Parse(context.Background(), &failingReader{n: 1}, Spec{Command: "go build", WorkspaceRoot: wsRoot}, nil)
	if err == nil || !strings.Contains(err.Error(), "pipe broke") {
		t.Fatalf("err = %v", err)
	}
	if res.Total() != 1 {
		t.Errorf("kept %d diagnostics, want the one before the failure", res.Total())
	}
}

// The ESLint outputs were recorded with ESLint 9 (see testdata/eslint):
// src/app.js:1 is `const smile = "é😀"; if (smile == undefinedThing) { … }`;
// ESLint's columns are UTF-16: column 32 is byte 35, code point 31 (1-based).
func TestESLintRecorded(t *testing.T) {
	root, err := filepath.Abs("testdata/eslint")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "src/app.js"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"src/app.js": string(src)}
	pos := map[position.Encoding][]string{
		position.UTF16: {"0:31-0:32", "0:34-0:35", "0:52-0:53", "1:6-1:7"},
		position.UTF8:  {"0:34-0:35", "0:37-0:38", "0:55-0:56", "1:6-1:7"},
		position.UTF32: {"0:30-0:31", "0:33-0:34", "0:51-0:52", "1:6-1:7"},
	}
	sevs := []string{"error", "warning", "warning", "error"}
	stylish := []string{
		"Expected '===' and instead saw '==' eqeqeq",
		"'undefinedThing' is not defined no-undef",
		"'console' is not defined no-undef",
		"'unused' is assigned a value but never used no-unused-vars",
	}
	compact := []string{
		"Expected '===' and instead saw '=='. (eqeqeq)",
		"'undefinedThing' is not defined. (no-undef)",
		"'console' is not defined. (no-undef)",
		"'unused' is assigned a value but never used. (no-unused-vars)",
	}
	for _, tc := range []struct {
		file, cmd, format string
		msgs              []string
	}{
		{"stylish.out", "npx eslint src", "eslint", stylish},
		{"stylish-color.out", "npx eslint --color src", "eslint", stylish},
		{"compact.out", "npx eslint -f compact src", "eslint-compact", compact},
	} {
		out, err := os.ReadFile(filepath.Join(root, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range encodings {
			res := parseString(t, string(out), Spec{Command: tc.cmd, SandboxRoot: "/tmp/eslintrec", Encoding: enc}, files)
			var want []string
			for i, m := range tc.msgs {
				want = append(want, fmt.Sprintf("src/app.js %s %s: %s", pos[enc][i], sevs[i], m))
			}
			slices.Sort(want)
			if got := render(t, res); !slices.Equal(got, want) {
				t.Errorf("%s %s: got %q\nwant %q", tc.file, enc, got, want)
			}
			if res.Tool != "eslint" || res.Format != tc.format {
				t.Errorf("tool %q format %q", res.Tool, res.Format)
			}
		}
	}
}

// TestScannerRestart checks that restarting errorformat's Scanner at safe
// boundaries (to bound its memory) gives the same entries as one Scanner
// over the whole input, for a multi-line format.
func TestScannerRestart(t *testing.T) {
	efm := []string{`%E%f:%l:%c: error: %m`, `%W%f:%l:%c: warning: %m`, `%C  %m`, `%Z`, `%-G%.%#`}
	var b strings.Builder
	for i := 0; b.Len() < 2<<20; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "f%d.c:%d:%d: error: e%d\n  detail %d\n  more %d\n\n", i%7, i, i%80+1, i, i, i)
		case 1:
			fmt.Fprintf(&b, "noise line %d\n", i)
		case 2:
			fmt.Fprintf(&b, "f%d.c:%d:1: warning: w%d\n\n", i%7, i, i)
		case 3:
			fmt.Fprintf(&b, "f%d.c:%d:1: error: unterminated %d\n", i%7, i, i) // no %Z: ended by the next start
		}
	}
	in := b.String()

	ef, err := errorformat.NewErrorformat(efm)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	s := ef.NewScanner(strings.NewReader(in))
	for s.Scan() {
		if e := s.Entry(); e.Valid && e.Filename != "" {
			want = append(want, fmt.Sprintf("%s:%d:%d %c %s", e.Filename, e.Lnum, e.Col, e.Type, e.Text))
		}
	}

	p, f, err := newParser(Spec{Errorformat: efm, WorkspaceRoot: wsRoot, MaxDiagnostics: 1 << 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.scanner {
		t.Fatal("expected the Scanner path")
	}
	restarts := 0
	var got []string
	fd := &feeder{ctx: context.Background(), p: p, lr: newLineReader(strings.NewReader(in), MaxLineBytes), rules: f.rules, restartable: true}
	for {
		sc := ef.NewScanner(fd)
		for sc.Scan() {
			if e := sc.Entry(); e.Valid && e.Filename != "" {
				got = append(got, fmt.Sprintf("%s:%d:%d %c %s", e.Filename, e.Lnum, e.Col, e.Type, e.Text))
			}
		}
		if fd.eof {
			break
		}
		restarts++
		fd.held = true
	}
	if restarts < 10 {
		t.Errorf("only %d restarts", restarts)
	}
	if !slices.Equal(got, want) {
		t.Errorf("restarted scan differs: %d entries vs %d", len(got), len(want))
	}
	// And through Parse.
	res := parseString(t, in, Spec{Errorformat: efm, MaxDiagnostics: 1 << 30}, nil)
	if res.Total() != len(want) {
		t.Errorf("Parse kept %d diagnostics, want %d", res.Total(), len(want))
	}
}

// TestPrefilter checks that the literal prefilter never rejects a line a
// rule's expression matches, for our rules and every errorformat
// predefined format, on lines from the recorded and real outputs plus
// mutations of them.
func TestPrefilter(t *testing.T) {
	var rules []rule
	for _, b := range builtins {
		r, err := compileRules(b.rules, b.kinds)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r...)
	}
	for name, d := range fmts.DefinedFmts() {
		r, err := compileRules(d.Errorformat, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rules = append(rules, r...)
	}
	lines := prefilterCorpus(t)
	checked := 0
	for _, l := range lines {
		for i := range rules {
			r := &rules[i]
			if !r.mayMatch(l) && r.efm.Match(l) != nil {
				t.Errorf("rule %q: prefilter rejects %q, which matches", r.src, l)
			}
			checked++
		}
	}
	if len(lines) < 100 {
		t.Errorf("corpus too small: %d lines", len(lines))
	}
}

func prefilterCorpus(t *testing.T) []string {
	t.Helper()
	var lines []string
	add := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			lines = append(lines, l, " "+l, strings.TrimSpace(l), l+" ", strings.ReplaceAll(l, ":", ": "), strings.ReplaceAll(l, " ", "  "))
		}
	}
	for _, f := range []string{"eslint/stylish.out", "eslint/compact.out"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		add(string(b))
	}
	add(sampleOutputs)
	return lines
}

// FuzzPrefilter is the fuzzing form of TestPrefilter.
func FuzzPrefilter(f *testing.F) {
	var rules []rule
	for _, d := range fmts.DefinedFmts() {
		r, _ := compileRules(d.Errorformat, nil)
		rules = append(rules, r...)
	}
	for _, b := range builtins {
		r, _ := compileRules(b.rules, b.kinds)
		rules = append(rules, r...)
	}
	for _, l := range strings.Split(sampleOutputs, "\n") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for i := range rules {
			if r := &rules[i]; !r.mayMatch(line) && r.efm.Match(line) != nil {
				t.Errorf("rule %q: prefilter rejects %q, which matches", r.src, line)
			}
		}
	})
}

// sampleOutputs holds typical lines of many tools, for the prefilter tests.
const sampleOutputs = `./main.go:8:20: fmt.Printf format %d has arg name of wrong type string
vet: a/a.go:2:23: cannot use "s" (untyped string constant) as int value in return statement
    sub_test.go:12: Add(2, 3) = -1, want 5
	/usr/local/go/src/testing/testing.go:1974 +0x232
	/tmp/x/crash/crash.go:5
In file included from main.c:2:
                 from inc/a.h:1,
main.c:8:34: warning: assignment to 'int' from 'const char *' makes integer from pointer without a cast [-Wint-conversion]
main.c:12: error: no column
error[E0308]: mismatched types
 --> src/main.rs:4:40
  ::: src/util.rs:1:8
   = note: ` + "`#[warn(unused_variables)]`" + ` on by default
src/main.rs:4:40: error[E0308]: mismatched types
src/main.ts(3,28): error TS2322: Type 'string' is not assignable to type 'number'.
src/main.ts:3:28 - error TS2322: Type 'string' is not assignable to type 'number'.
  src/greet.ts:1:37
  src/greet.ts(1,37): An argument for 'times' was not provided.
  File "/abs/app.py", line 9, in <module>
  File "./broken/bad.py", line 2
test_calc.py:5: AssertionError
/abs/test_calc.py:5: assert -1 == 5
m.py:1:11: error: Name "yy" is not defined  [name-defined]
app.py:3:1: E302 expected 2 blank lines, found 1
app.rb:3:1: C: Style/Foo: message
x.php:3 message
Makefile:3: *** missing separator.  Stop.
make[1]: Entering directory '/abs/sub'
a\ b.c:1:2: error: spaced name
C:\x\y.cs(3,4): error CS1002: ; expected
%:%%:1: odd
`
