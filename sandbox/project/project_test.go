package project

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes files (path → content) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetect(t *testing.T) {
	pkgTest := `{"scripts": {"test": "vitest run"}}`
	for _, tc := range []struct {
		name   string
		files  map[string]string
		want   string
		reason string
	}{
		{"go", map[string]string{"go.mod": "module x\n", "Makefile": "all:\n", "package.json": pkgTest}, "go vet ./...", "go.mod"},
		{"npm test", map[string]string{"package.json": pkgTest, "tsconfig.json": "{}", "Makefile": ""}, "npm test", "package.json has a test script"},
		{"npm init placeholder", map[string]string{"package.json": `{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}`, "tsconfig.json": "{}"}, "npx -p typescript tsc --noEmit", "tsconfig.json, TypeScript not installed in node_modules"},
		{"package.json without test", map[string]string{"package.json": `{"scripts":{"build":"tsc"}}`, "Makefile": ""}, "make", "Makefile"},
		{"tsc installed", map[string]string{"tsconfig.json": "{}", "node_modules/.bin/tsc": "#!/bin/sh\n"}, "node_modules/.bin/tsc --noEmit", "tsconfig.json, TypeScript installed in node_modules"},
		{"cargo", map[string]string{"Cargo.toml": "[package]\n", "Makefile": ""}, "cargo check", "Cargo.toml"},
		{"pyproject", map[string]string{"pyproject.toml": "", "Makefile": ""}, "python3 -m pytest", "pyproject.toml"},
		{"requirements", map[string]string{"requirements.txt": ""}, "python3 -m pytest", "requirements.txt"},
		{"python files", map[string]string{"app.py": ""}, "python3 -m pytest", "Python files"},
		{"make", map[string]string{"GNUmakefile": "", "README": ""}, "make", "Makefile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Detect(tree(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if c.Command != tc.want || c.Reason != tc.reason {
				t.Errorf("got %q (%s), want %q (%s)", c.Command, c.Reason, tc.want, tc.reason)
			}
			if strings.HasPrefix(tc.want, "python3") {
				if c.Requires == "" || c.Fallback != "python3 -m compileall -q ." {
					t.Errorf("python check without probe/fallback: %+v", c)
				}
			} else if c.Requires != "" || c.Choose(false) != c.Command {
				t.Errorf("unexpected requirement: %+v", c)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	_, err := Detect(tree(t, map[string]string{"README.md": "hi", "src/main.go": "package main"}))
	if !errors.Is(err, ErrNoCheck) || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("err = %v", err)
	}
	_, err = Detect(tree(t, map[string]string{"package.json": "{not json", "Makefile": ""}))
	if err == nil || !strings.Contains(err.Error(), "package.json is not valid JSON") {
		t.Errorf("bad package.json: err = %v", err)
	}
	if _, err := Detect(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestResolve(t *testing.T) {
	root := tree(t, map[string]string{"go.mod": "module x\n"})
	for _, tc := range []struct{ perCall, configured, want string }{
		{"make lint", "cargo check", "make lint"},
		{"  ", "cargo check", "cargo check"},
		{"", "", "go vet ./..."},
	} {
		c, err := Resolve(tc.perCall, tc.configured, root)
		if err != nil || c.Command != tc.want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q", tc.perCall, tc.configured, c.Command, err, tc.want)
		}
	}
}

// TestPythonProbe runs the probe with the real interpreter: it decides
// between pytest and compileall, and the chosen command runs.
func TestPythonProbe(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	root := tree(t, map[string]string{"ok.py": "x = 1\n"})
	c, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	sh := func(cmd string) error {
		e := exec.Command("/bin/sh", "-c", cmd)
		e.Dir = root
		e.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
		return e.Run()
	}
	hasPytest := sh(c.Requires) == nil
	chosen := c.Choose(hasPytest)
	if want := map[bool]string{true: "python3 -m pytest", false: "python3 -m compileall -q ."}[hasPytest]; chosen != want {
		t.Fatalf("chose %q with pytest=%v", chosen, hasPytest)
	}
	err = sh(chosen)
	var exit *exec.ExitError
	// pytest exits with 5 when it collects no tests; compileall with 0.
	if err != nil && !(hasPytest && errors.As(err, &exit) && exit.ExitCode() == 5) {
		t.Errorf("%s: %v", chosen, err)
	}
}

// TestDetectFixtures checks the outputdiag fixture projects, whose checks
// the diagnostics tests run for real.
func TestDetectFixtures(t *testing.T) {
	for dir, want := range map[string]string{
		"gomod":    "go vet ./...",
		"cproj":    "",
		"tsproj":   "npx -p typescript tsc --noEmit",
		"rustproj": "cargo check",
		"pyproj":   "python3 -m pytest",
	} {
		c, err := Detect(filepath.Join("..", "..", "lsp", "outputdiag", "testdata", dir))
		if want == "" {
			if !errors.Is(err, ErrNoCheck) {
				t.Errorf("%s: %+v, %v; want ErrNoCheck", dir, c, err)
			}
			continue
		}
		if err != nil || c.Command != want {
			t.Errorf("%s: %q, %v; want %q", dir, c.Command, err, want)
		}
	}
}
