package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExcluder(t *testing.T) {
	ex, err := NewExcluder([]string{"# comment", "*.log", "!keep.log", "node_modules/", "/build", "docs/**/*.tmp", "a/b", `\#hash`}, false)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"x.log": true, "sub/x.log": true, "keep.log": false, "sub/keep.log": false,
		"node_modules/x/y.js": true, "src/node_modules/z.js": true,
		"build/out": true, "keep/build/out": false,
		"docs/x.tmp": true, "docs/a/b/x.tmp": true, "x.tmp": false,
		"a/b": true, "a/b/c": true, "x/a/b": false,
		"#hash": true, ".git/HEAD": true, ".gitignore": false, "main.go": false,
	} {
		if got := ex.Excluded(path); got != want {
			t.Errorf("Excluded(%q) = %v; want %v", path, got, want)
		}
	}
	if ex.Match("node_modules", false) {
		t.Error("a file named node_modules matched a directory-only pattern")
	}
	if !ex.DirExcluded("src/node_modules/pkg") || ex.DirExcluded("src") {
		t.Error("DirExcluded")
	}
	if got := strings.Join(ex.FindPrune(nil), " "); got != "( -path ./.git ) -prune -o" {
		t.Errorf("with a negation only .git is pruned remotely: %q", got)
	}
	ex, _ = NewExcluder([]string{"*.log", "node_modules/", "/build", "a/*/c"}, true)
	if got := strings.Join(ex.FindPrune(nil), " "); got != "( -name *.log -o -type d -name node_modules -o -path ./build ) -prune -o" {
		t.Errorf("FindPrune = %q", got)
	}
	quote := func(s string) string { return "'" + s + "'" }
	if got := strings.Join(ex.FindPrune(quote), " "); got != `\( -name '*.log' -o -type d -name 'node_modules' -o -path './build' \) -prune -o` {
		t.Errorf("FindPrune(quote) = %q", got)
	}
	if ex, _ := NewExcluder(nil, true); ex.FindPrune(nil) != nil {
		t.Error("nothing to prune gave predicates")
	}
	if _, err := NewExcluder([]string{"a\x00b"}, false); err == nil {
		t.Error("a NUL in a pattern was accepted")
	}
}

func TestGitIgnores(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".gitignore", "node_modules/\n/dist\n*.log\n")
	write("web/.gitignore", "cache/\n!keep.log\n")
	ex, err := GitIgnores(root, []string{"secrets.txt"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"node_modules/x/index.js": true, "web/node_modules/y.js": true, "dist/app.js": true, "web/dist/app.js": false,
		"a.log": true, "web/keep.log": false, "web/cache/c": true, "cache/c": false,
		"secrets.txt": true, ".git/HEAD": true, "main.go": false,
	} {
		if got := ex.Excluded(path); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", path, got, want)
		}
	}
}
