package outputdiag

// Tests on real input: each test copies a fixture project with real errors
// from testdata/, runs the real toolchain on the copy (which plays the
// sandbox's working copy), parses the output, and asserts exact ranges in
// UTF-16, UTF-8 and UTF-32. A test is skipped only when its toolchain is
// absent, and says which.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// goEnv keeps the go command local and quiet.
var goEnv = []string{"GOTOOLCHAIN=local", "GOFLAGS=", "GOWORK=off"}

// The fixture's vet findings. unicode.go:6 is
// "\tfmt.Printf(\"é😀 %d\\n\", \"s\")": go prints byte column 21, i.e. 20
// bytes before the '%' = 17 UTF-16 units = 16 code points. crlf.go has CRLF
// line endings in the copy.
func goVetFindings(sev string) map[position.Encoding][]string {
	common := []string{
		"crlf.go 6:13-6:14 " + sev + ": fmt.Printf format %s has arg v of wrong type float64",
		"main.go 7:19-7:20 " + sev + ": fmt.Printf format %d has arg name of wrong type string",
	}
	msg := " " + sev + ": fmt.Printf format %d has arg \"s\" of wrong type string"
	return map[position.Encoding][]string{
		position.UTF16: append(common[:2:2], "unicode.go 5:17-5:18"+msg),
		position.UTF8:  append(common[:2:2], "unicode.go 5:20-5:21"+msg),
		position.UTF32: append(common[:2:2], "unicode.go 5:16-5:17"+msg),
	}
}

func TestGoVet(t *testing.T) {
	need(t, "go", "Go toolchain")
	root := copyFixture(t, "gomod")
	out := run(t, root, goEnv, "go", "vet", "./...")
	check(t, parseAll(t, out, Spec{Command: "go vet ./..."}, root), goVetFindings("warning"))

	// From a subdirectory: go prints "../main.go:8:20: …".
	out = run(t, filepath.Join(root, "sub"), goEnv, "go", "vet", "./..")
	check(t, parseAll(t, out, Spec{Command: "go vet ./..", Dir: "sub"}, root), goVetFindings("warning"))
}

// recovered drops the "[recovered…]" note the testing package adds to a
// panic message, whose wording changes between Go versions.
var recovered = regexp.MustCompile(` \[recovered[^\]]*\]`)

func TestGoTest(t *testing.T) {
	need(t, "go", "Go toolchain")
	root := copyFixture(t, "gomod")
	// go test ./... on the module: the root package fails go test's vet
	// checks (errors), crash's test panics (the innermost workspace frame is
	// the inlined crash.go:5), and sub's test fails after printing a 100 KiB
	// line; its message "sub_test.go:12" is relative to the package dir.
	want := goVetFindings("error")
	for _, enc := range encodings {
		want[enc] = append(want[enc],
			"crash/crash.go 4:0-4:46 error: panic: runtime error: index out of range [3] with length 1\n"+
				"  -> crash/crash_test.go 5:1-5:29: called from example.com/fixture/crash.TestIndex",
			"sub/sub_test.go 11:2-11:41 error: Add(2, 3) = -1, want 5",
		)
	}
	for _, args := range [][]string{{"go", "test", "./..."}, {"go", "test", "-v", "./..."}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := run(t, root, goEnv, args...)
			got := parseAll(t, out, Spec{Args: args}, root)
			for enc, lines := range got {
				for i, l := range lines {
					lines[i] = recovered.ReplaceAllString(l, "")
				}
				got[enc] = lines
			}
			check(t, got, want)
			res, err := Parse(context.Background(), strings.NewReader(out), Spec{Args: args, SandboxRoot: root, WorkspaceRoot: wsRoot}, dirText(root))
			if err != nil {
				t.Fatal(err)
			}
			if res.LongLines != 1 {
				t.Errorf("LongLines = %d, want 1 (the 100 KiB line)", res.LongLines)
			}
		})
	}

	// go test in the package directory, written with a cd.
	out := run(t, filepath.Join(root, "sub"), goEnv, "go", "test")
	check(t, parseAll(t, out, Spec{Command: "cd sub && go test"}, root), same("sub/sub_test.go 11:2-11:41 error: Add(2, 3) = -1, want 5"))
}

func TestGoBuild(t *testing.T) {
	need(t, "go", "Go toolchain")
	root := copyFixture(t, "gomod")
	// A type error with a multi-line message ("have …/want …" lines).
	bad := "package sub\n\nfunc use() int { return Add(\"é😀\", 1, 2) }\n"
	if err := os.WriteFile(filepath.Join(root, "sub", "bad.go"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, root, goEnv, "go", "build", "./...")
	msg := "too many arguments in call to Add\nhave (string, number, number)\nwant (int, int)"
	// Go points at the first extra argument, the `2` of `Add("é😀", 1, 2)`:
	// byte column 42, i.e. byte 41 = UTF-16 unit 38 = code point 37.
	check(t, parseAll(t, out, Spec{Command: "go build ./..."}, root), map[position.Encoding][]string{
		position.UTF16: {"sub/bad.go 2:38-2:39 error: " + msg},
		position.UTF8:  {"sub/bad.go 2:41-2:42 error: " + msg},
		position.UTF32: {"sub/bad.go 2:37-2:38 error: " + msg},
	})
}

// gccEnv makes gcc's quotes ASCII so messages do not depend on the locale.
var gccEnv = []string{"LC_ALL=C"}

// The C fixture's diagnostics. main.c:8 is "\tconst char *s = \"é😀\"; n = s;":
// gcc prints display column 34 (the tab takes 8 cells, 😀 two) for '=',
// which is byte 29, UTF-16 unit 26, code point 25. main.c:9 starts with two
// tabs: display column 42 is byte 27. The first error is inside
// inc/util.h, included from main.c:2.
func cFindings() map[position.Encoding][]string {
	header := "inc/util.h 3:44-3:45 error: 'undefined_factor' undeclared (first use in this function)\n" +
		"  -> inc/util.h 3:44-3:45: each undeclared identifier is reported only once for each function it appears in\n" +
		"  -> main.c 1:0-1:21: included from here"
	common := []string{
		header,
		"main.c 3:11-3:12 warning: 'unused_helper' defined but not used [-Wunused-function]",
		"main.c 8:27-8:28 error: 'missing' undeclared (first use in this function)",
	}
	msg := " warning: assignment to 'int' from 'const char *' makes integer from pointer without a cast [-Wint-conversion]"
	return map[position.Encoding][]string{
		position.UTF16: append(common[:3:3], "main.c 7:26-7:27"+msg),
		position.UTF8:  append(common[:3:3], "main.c 7:29-7:30"+msg),
		position.UTF32: append(common[:3:3], "main.c 7:25-7:26"+msg),
	}
}

func TestGCC(t *testing.T) {
	need(t, "gcc", "C compiler")
	root := copyFixture(t, "cproj")
	for _, args := range [][]string{
		{"gcc", "-Wall", "-c", "main.c", "-o", "/dev/null"},                                                    // display columns
		{"gcc", "-Wall", "-fdiagnostics-column-unit=byte", "-c", "main.c", "-o", "/dev/null"},                  // byte columns
		{"gcc", "-Wall", "-fdiagnostics-color=always", "-c", "main.c", "-o", "/dev/null"},                      // ANSI colours
		{"gcc", "-Wall", "-fdiagnostics-color=always", "-c", filepath.Join(root, "main.c"), "-o", "/dev/null"}, // absolute paths
	} {
		t.Run(strings.Join(args[1:len(args)-4], " "), func(t *testing.T) {
			out := run(t, root, gccEnv, args...)
			if strings.Contains(strings.Join(args, " "), "color") && !strings.Contains(out, "\x1b[") {
				t.Fatalf("expected coloured output, got %q", out)
			}
			cmd := strings.Join(args, " ")
			check(t, parseAll(t, out, Spec{Command: cmd}, root), cFindings())
		})
	}
	// The same output with CRLF line endings and after a 100 KiB line.
	out := run(t, root, gccEnv, "gcc", "-Wall", "-c", "main.c", "-o", "/dev/null")
	out = strings.Repeat("x", 100<<10) + "\n" + strings.ReplaceAll(out, "\n", "\r\n")
	check(t, parseAll(t, out, Spec{Command: "gcc -Wall -c main.c"}, root), cFindings())
}

func TestGCCHeaderOutsideWorkspace(t *testing.T) {
	need(t, "gcc", "C compiler")
	root := copyFixture(t, "cproj")
	// A header outside the workspace (think /usr/include) with an error:
	// the diagnostic moves to the include site in the workspace.
	sys := t.TempDir()
	if err := os.WriteFile(filepath.Join(sys, "sys.h"), []byte("int broken = nope;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "use.c"), []byte("#include <stdio.h>\n#include <sys.h>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, root, gccEnv, "gcc", "-I"+sys, "-c", "use.c", "-o", "/dev/null")
	res, err := Parse(context.Background(), strings.NewReader(out), Spec{Command: "gcc -c use.c", SandboxRoot: root, WorkspaceRoot: wsRoot}, dirText(root))
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, res)
	want := "use.c 1:0-1:16 error: 'nope' undeclared here (not in a function) (in included file " + filepath.Join(sys, "sys.h") + ":1)\n" +
		"  -> !" + filepath.Join(sys, "sys.h") + " 0:13-0:14: 'nope' undeclared here (not in a function)"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestTSC(t *testing.T) {
	need(t, "node", "node for TypeScript")
	tsc, err := filepath.Abs("../../test/tools/node_modules/.bin/tsc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tsc); err != nil {
		t.Skipf("TypeScript not installed in test/tools (npm ci there): %v", err)
	}
	root := copyFixture(t, "tsproj")
	// src/main.ts:3 is `const smile = "é😀"; const count: number = smile;`:
	// tsc prints UTF-16 column 28 for `count`: byte 30, code point 26.
	first := " error: Type 'string' is not assignable to type 'number'. [TS2322]"
	second := "src/main.ts 3:0-3:1 error: Expected 2 arguments, but got 1. [TS2554]"
	related := "\n  -> src/greet.ts 0:36-0:37: An argument for 'times' was not provided."
	for _, pretty := range []bool{false, true} {
		args := []string{tsc, "--noEmit", "-p", "."}
		s2 := second
		if pretty {
			args = append(args, "--pretty")
			s2 += related // only --pretty prints related information
		}
		out := run(t, root, nil, args...)
		check(t, parseAll(t, out, Spec{Command: "node_modules/.bin/tsc " + strings.Join(args[1:], " ")}, root), map[position.Encoding][]string{
			position.UTF16: {"src/main.ts 2:27-2:28" + first, s2},
			position.UTF8:  {"src/main.ts 2:30-2:31" + first, s2},
			position.UTF32: {"src/main.ts 2:26-2:27" + first, s2},
		})
	}
}

func TestCargo(t *testing.T) {
	need(t, "cargo", "Rust toolchain")
	root := copyFixture(t, "rustproj")
	env := []string{"CARGO_TARGET_DIR=" + t.TempDir(), "CARGO_TERM_COLOR=never"}
	// src/main.rs:4 is `    let smile = "é😀"; let count: i32 = smile;`:
	// rustc prints code point column 40: byte 43, UTF-16 unit 40.
	out := run(t, root, env, "cargo", "check", "--offline")
	second := "src/main.rs 5:4-5:5 error: this function takes 1 argument but 2 arguments were supplied [E0061]\nhelp: remove the extra argument\n" +
		"  -> src/util.rs 0:7-0:8: note: function defined here"
	check(t, parseAll(t, out, Spec{Command: "cargo check --offline"}, root), map[position.Encoding][]string{
		position.UTF16: {"src/main.rs 3:40-3:41 error: mismatched types [E0308]", second},
		position.UTF8:  {"src/main.rs 3:43-3:44 error: mismatched types [E0308]", second},
		position.UTF32: {"src/main.rs 3:39-3:40 error: mismatched types [E0308]", second},
	})

	// A warning with an "= note:" line; coloured output.
	root = copyFixture(t, "rustwarn")
	env = []string{"CARGO_TARGET_DIR=" + t.TempDir(), "CARGO_TERM_COLOR=always"}
	out = run(t, root, env, "cargo", "check", "--offline")
	got := parseAll(t, out, Spec{Command: "cargo check --offline"}, root)
	want := map[position.Encoding]string{
		position.UTF16: "src/main.rs 1:27-1:28 warning: unused variable: `unused`\nnote: `#[warn(unused_variables)]`",
		position.UTF8:  "src/main.rs 1:30-1:31 warning: unused variable: `unused`\nnote: `#[warn(unused_variables)]`",
		position.UTF32: "src/main.rs 1:26-1:27 warning: unused variable: `unused`\nnote: `#[warn(unused_variables)]`",
	}
	for _, enc := range encodings {
		if len(got[enc]) != 1 || !strings.HasPrefix(got[enc][0], want[enc]) {
			t.Errorf("%s: got %q, want one starting with %q", enc, got[enc], want[enc])
		}
	}
}

// stdlibFrame normalizes related frames outside the workspace (the Python
// standard library, whose path and line numbers depend on the installation)
// to their base name.
var stdlibFrame = regexp.MustCompile(`-> !/\S*/([^/\s]+) \d+:\d+-\d+:\d+`)

func TestPython(t *testing.T) {
	py := need(t, "python3", "Python")
	root := copyFixture(t, "pyproj")

	t.Run("traceback", func(t *testing.T) {
		// The innermost frame in the workspace is pkg/config.py:5 (below it
		// are json's frames); Python 3.11 prints absolute paths.
		out := run(t, root, nil, py, "app.py")
		got := parseAll(t, out, Spec{Command: "python3 app.py"}, root)
		for enc, lines := range got {
			for i, l := range lines {
				lines[i] = stdlibFrame.ReplaceAllString(l, "-> !$1")
			}
			got[enc] = lines
		}
		msg := " error: json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n" +
			"  -> !decoder.py: in raw_decode\n  -> !decoder.py: in decode\n  -> !__init__.py: in loads\n" +
			"  -> app.py 4:4-4:33: in main\n  -> app.py 8:4-8:10: in <module>"
		// `    smile = "é😀"; return json.loads(text)["name"]`: the whole line.
		check(t, got, map[position.Encoding][]string{
			position.UTF16: {"pkg/config.py 4:4-4:50" + msg},
			position.UTF8:  {"pkg/config.py 4:4-4:53" + msg},
			position.UTF32: {"pkg/config.py 4:4-4:49" + msg},
		})
	})

	t.Run("syntax error", func(t *testing.T) {
		// broken/bad.py:2 is `    smile = "é😀"; return (1,`; the caret is
		// under '(' (byte 29, UTF-16 unit 26, code point 25).
		out := run(t, root, nil, py, "broken/bad.py")
		msg := " error: SyntaxError: '(' was never closed"
		check(t, parseAll(t, out, Spec{Command: "python3 broken/bad.py"}, root), map[position.Encoding][]string{
			position.UTF16: {"broken/bad.py 1:26-1:27" + msg},
			position.UTF8:  {"broken/bad.py 1:29-1:30" + msg},
			position.UTF32: {"broken/bad.py 1:25-1:26" + msg},
		})
	})

	t.Run("compileall", func(t *testing.T) {
		// compileall reports a byte offset that the traceback module uses as
		// a character index, so on this non-ASCII line the caret is clamped
		// to the end of the line: the diagnostic covers the line.
		out := run(t, root, nil, py, "-m", "compileall", "-q", ".")
		msg := " error: SyntaxError: '(' was never closed"
		check(t, parseAll(t, out, Spec{Command: "python3 -m compileall -q ."}, root), map[position.Encoding][]string{
			position.UTF16: {"broken/bad.py 1:4-1:29" + msg},
			position.UTF8:  {"broken/bad.py 1:4-1:32" + msg},
			position.UTF32: {"broken/bad.py 1:4-1:28" + msg},
		})
	})
}

// pytestPython returns a python3 that has pytest, or skips.
func pytestPython(t *testing.T) string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-m", "pytest", "--version").Run() == nil {
			return p
		}
	}
	t.Skip("pytest not installed (Debian package python3-pytest)")
	return ""
}

func TestPytest(t *testing.T) {
	py := pytestPython(t)
	root := copyFixture(t, "pyproj")
	// test_calc.py:5 is `    assert add(2, 3) == 5`.
	for tb, msg := range map[string]string{
		"long":   "assert -1 == 5\n +  where -1 = add(2, 3)",
		"short":  "assert -1 == 5\n +  where -1 = add(2, 3)",
		"line":   "assert -1 == 5",
		"native": "AssertionError: assert -1 == 5",
	} {
		t.Run(tb, func(t *testing.T) {
			out := run(t, root, []string{"PYTHONDONTWRITEBYTECODE=1"}, py, "-m", "pytest", "-p", "no:cacheprovider", "--tb="+tb, "test_calc.py")
			check(t, parseAll(t, out, Spec{Command: "python3 -m pytest --tb=" + tb}, root), same("test_calc.py 4:4-4:25 error: "+msg))
		})
	}
}

func TestMakeAuto(t *testing.T) {
	need(t, "make", "GNU make")
	need(t, "gcc", "C compiler")
	root := copyFixture(t, "cproj")
	// make recurses into lib/ ("make[1]: Entering directory '…/lib'"), where
	// gcc prints paths relative to lib/; the format is "auto".
	files := map[string]string{
		"Makefile":     "all:\n\t$(MAKE) -C lib\n",
		"lib/Makefile": "all:\n\tgcc -c -Wall bad.c -o /dev/null\n",
		"lib/bad.c":    "int f(void) {\n\treturn \"é😀\" + nope;\n}\n",
	}
	for name, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, root, gccEnv, "make")
	if !strings.Contains(out, "Entering directory") {
		t.Fatalf("make did not announce its directory:\n%s", out)
	}
	// `\treturn "é😀" + nope;`: gcc's display column 24 is `nope`
	// (tab = 8 cells, 😀 = 2): byte 19, UTF-16 unit 16, code point 15.
	got := parseAll(t, out, Spec{Command: "make"}, root)
	msg := " error: 'nope' undeclared (first use in this function)\n  -> lib/bad.c "
	note := ": each undeclared identifier is reported only once for each function it appears in"
	warn := "lib/bad.c 2:0-2:1 warning: control reaches end of non-void function [-Wreturn-type]"
	check(t, got, map[position.Encoding][]string{
		position.UTF16: {"lib/bad.c 1:16-1:17" + msg + "1:16-1:17" + note, warn},
		position.UTF8:  {"lib/bad.c 1:19-1:20" + msg + "1:19-1:20" + note, warn},
		position.UTF32: {"lib/bad.c 1:15-1:16" + msg + "1:15-1:16" + note, warn},
	})
}

func TestNpmTestScript(t *testing.T) {
	need(t, "npm", "npm")
	tools, err := filepath.Abs("../../test/tools/node_modules/.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tools, "tsc")); err != nil {
		t.Skipf("TypeScript not installed in test/tools (npm ci there): %v", err)
	}
	root := copyFixture(t, "tsproj")
	pkg := `{"name": "fixture", "version": "1.0.0", "private": true, "scripts": {"test": "tsc --noEmit -p ."}}`
	if err := os.WriteFile(filepath.Join(root, "package.json"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	// `npm test` runs the script with tsc from PATH; the diagnostics are
	// tsc's (format and code), read through package.json.
	out := run(t, root, []string{"PATH=" + tools + string(os.PathListSeparator) + os.Getenv("PATH"), "npm_config_update_notifier=false"}, "npm", "test")
	res, err := Parse(context.Background(), strings.NewReader(out), Spec{Command: "npm test", SandboxRoot: root, WorkspaceRoot: wsRoot}, dirText(root))
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "tsc" || res.Tool != "tsc" {
		t.Errorf("format %q tool %q, want tsc", res.Format, res.Tool)
	}
	want := []string{
		"src/main.ts 2:27-2:28 error: Type 'string' is not assignable to type 'number'. [TS2322]",
		"src/main.ts 3:0-3:1 error: Expected 2 arguments, but got 1. [TS2554]",
	}
	if got := render(t, res); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q\noutput:\n%s", got, want, out)
	}
}
