package outputdiag

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// wsRoot is the host workspace the tests pretend the editor has open; it has
// a space and a non-ASCII letter so URI escaping is exercised everywhere.
const wsRoot = "/home/dev/my proj é"

var encodings = []position.Encoding{position.UTF16, position.UTF8, position.UTF32}

// copyFixture copies testdata/<name> into a fresh directory that plays the
// sandbox's working copy, and returns its path. Files named crlf.* get CRLF
// line endings in the copy (they are stored with LF so that gofmt and git
// leave them alone).
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "crlf.") {
			data = []byte(strings.ReplaceAll(string(data), "\n", "\r\n"))
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// need skips the test when a program is not installed.
func need(t *testing.T, prog, what string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s not installed (%s): %v", prog, what, err)
	}
	return p
}

// run runs a real command in dir and returns its combined output (the exit
// status is irrelevant: these commands are meant to fail).
func run(t *testing.T, dir string, env []string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%v: %v", argv, err)
	}
	if len(out) == 0 {
		t.Fatalf("%v printed nothing", argv)
	}
	return string(out)
}

// dirText is the TextSource of a working copy on disk.
func dirText(root string) TextSource {
	return func(p string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		return b, err == nil
	}
}

// parseAll parses out in every encoding and returns the rendered results.
func parseAll(t *testing.T, out string, spec Spec, root string) map[position.Encoding][]string {
	t.Helper()
	got := map[position.Encoding][]string{}
	for _, enc := range encodings {
		spec := spec
		spec.Encoding = enc
		spec.SandboxRoot = root
		spec.WorkspaceRoot = wsRoot
		res, err := Parse(context.Background(), strings.NewReader(out), spec, dirText(root))
		if err != nil {
			t.Fatalf("Parse(%s): %v", enc, err)
		}
		got[enc] = render(t, res)
	}
	return got
}

// render turns a result into sorted lines
// "path l:c-l:c severity code: message" (0-based positions), each followed
// by its related information as "  -> path l:c-l:c: message"; paths are
// workspace-relative when the URI is under wsRoot.
func render(t *testing.T, res Result) []string {
	t.Helper()
	var lines []string
	for u, ds := range res.ByURI {
		for _, d := range ds {
			if d.Source != "opencode" {
				t.Errorf("source = %q", d.Source)
			}
			if res.Tool == "" && d.Code != nil || res.Tool != "" && d.Code != res.Tool {
				t.Errorf("code = %v, want %q", d.Code, res.Tool)
			}
			s := fmt.Sprintf("%s %s %s: %s", relURI(t, u), rng(d.Range), sevName(d.Severity), d.Message)
			for _, ri := range d.RelatedInformation {
				s += fmt.Sprintf("\n  -> %s %s: %s", relURI(t, ri.Location.URI), rng(ri.Location.Range), ri.Message)
			}
			lines = append(lines, s)
		}
	}
	slices.Sort(lines)
	return lines
}

func rng(r protocol.Range) string {
	return fmt.Sprintf("%d:%d-%d:%d", r.Start.Line, r.Start.Character, r.End.Line, r.End.Character)
}

func sevName(s protocol.DiagnosticSeverity) string {
	switch s {
	case protocol.DiagnosticSeverityError:
		return "error"
	case protocol.DiagnosticSeverityWarning:
		return "warning"
	case protocol.DiagnosticSeverityInformation:
		return "info"
	case protocol.DiagnosticSeverityHint:
		return "hint"
	}
	return fmt.Sprint(float64(s))
}

// relURI returns the workspace-relative path of a URI under wsRoot, or the
// URI's path with "!" in front when it is outside.
func relURI(t *testing.T, u protocol.DocumentURI) string {
	t.Helper()
	pu, err := url.Parse(string(u))
	if err != nil || pu.Scheme != "file" {
		t.Fatalf("bad URI %q: %v", u, err)
	}
	if rest, ok := strings.CutPrefix(pu.Path, wsRoot+"/"); ok {
		return rest
	}
	return "!" + pu.Path
}

// check compares rendered results with the expectation of each encoding.
func check(t *testing.T, got map[position.Encoding][]string, want map[position.Encoding][]string) {
	t.Helper()
	for _, enc := range encodings {
		w := slices.Clone(want[enc])
		slices.Sort(w)
		if !slices.Equal(got[enc], w) {
			t.Errorf("%s:\ngot:\n%s\n\nwant:\n%s", enc, strings.Join(got[enc], "\n"), strings.Join(w, "\n"))
		}
	}
}

// same returns an expectation that is the same in every encoding.
func same(lines ...string) map[position.Encoding][]string {
	return map[position.Encoding][]string{position.UTF16: lines, position.UTF8: lines, position.UTF32: lines}
}
