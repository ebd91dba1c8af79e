// Package project finds the command that checks a project the way its
// developers usually do: the default of the editor contract's `opencode.run`
// when no command is given (and none is configured).
//
// Detection looks at the files at the top of one directory, in this order,
// and the first rule that applies wins:
//
//	go.mod                              go vet ./...
//	package.json with a "test" script   npm test     (not npm init's placeholder that only fails)
//	tsconfig.json                       node_modules/.bin/tsc --noEmit   when TypeScript is installed
//	                                    npx -p typescript tsc --noEmit   otherwise (plain `npx tsc`
//	                                    would fetch an unrelated package named "tsc")
//	Cargo.toml                          cargo check
//	pyproject.toml, setup.py, setup.cfg,
//	requirements.txt or a *.py file     python3 -m pytest when pytest is importable,
//	                                    else python3 -m compileall -q .
//	Makefile, makefile, GNUmakefile     make
//
// Whether pytest is available is only known inside the sandbox, so the
// Python rule returns both commands and a probe (Check.Requires) for the
// caller to run there; Check.Choose picks one from the probe's outcome.
//
// This package never imports the LSP layer.
package project

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Check is a project's usual check command.
type Check struct {
	// Command is a shell command line to run in the project's directory.
	Command string
	// Reason says why Command was chosen, for logs and messages
	// ("go.mod", "given with the request", …).
	Reason string
	// Requires, when not empty, is a shell command that exits with status 0
	// when Command can run (`python3 -c "import pytest"`). The caller runs
	// it in the sandbox, in the same directory, and runs Fallback instead
	// of Command when it fails.
	Requires string
	// Fallback is the command to run when Requires fails.
	Fallback string
}

// Choose returns the command to run given the outcome of c.Requires
// (ignored when there is nothing to require).
func (c Check) Choose(requirementMet bool) string {
	if c.Requires == "" || requirementMet || c.Fallback == "" {
		return c.Command
	}
	return c.Fallback
}

// ErrNoCheck is returned (wrapped) when nothing in the directory says how
// to check it.
var ErrNoCheck = errors.New("no check command detected")

// npmPlaceholder is the "test" script `npm init` writes: it only fails.
const npmPlaceholder = `echo "Error: no test specified" && exit 1`

// Detect finds the check command of the project in the directory root (an
// absolute host path or a path relative to the current directory).
// Errors: ErrNoCheck (wrapped, naming the files looked for) when no rule
// applies; an error naming package.json when it exists but is not valid
// JSON; a read error of root itself.
func Detect(root string) (Check, error) {
	c, err := DetectFS(os.DirFS(root))
	if err != nil {
		return Check{}, fmt.Errorf("project %s: %w", root, err)
	}
	return c, nil
}

// DetectFS is Detect on the root of fsys.
func DetectFS(fsys fs.FS) (Check, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return Check{}, err
	}
	has := map[string]bool{}
	pyFile := false
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		has[e.Name()] = true
		if path.Ext(e.Name()) == ".py" {
			pyFile = true
		}
	}
	switch {
	case has["go.mod"]:
		return Check{Command: "go vet ./...", Reason: "go.mod"}, nil
	}
	if has["package.json"] {
		script, err := testScript(fsys)
		if err != nil {
			return Check{}, err
		}
		if script != "" {
			return Check{Command: "npm test", Reason: "package.json has a test script"}, nil
		}
	}
	switch {
	case has["tsconfig.json"]:
		if st, err := fs.Stat(fsys, "node_modules/.bin/tsc"); err == nil && !st.IsDir() {
			return Check{Command: "node_modules/.bin/tsc --noEmit", Reason: "tsconfig.json, TypeScript installed in node_modules"}, nil
		}
		return Check{Command: "npx -p typescript tsc --noEmit", Reason: "tsconfig.json, TypeScript not installed in node_modules"}, nil
	case has["Cargo.toml"]:
		return Check{Command: "cargo check", Reason: "Cargo.toml"}, nil
	case has["pyproject.toml"] || has["setup.py"] || has["setup.cfg"] || has["requirements.txt"] || pyFile:
		reason := "Python files"
		for _, f := range []string{"pyproject.toml", "setup.py", "setup.cfg", "requirements.txt"} {
			if has[f] {
				reason = f
				break
			}
		}
		return Check{
			Command:  "python3 -m pytest",
			Reason:   reason,
			Requires: `python3 -c "import pytest"`,
			Fallback: "python3 -m compileall -q .",
		}, nil
	case has["Makefile"] || has["makefile"] || has["GNUmakefile"]:
		return Check{Command: "make", Reason: "Makefile"}, nil
	}
	return Check{}, fmt.Errorf("%w: none of go.mod, package.json with a test script, tsconfig.json, Cargo.toml, Python files (pyproject.toml, setup.py, setup.cfg, requirements.txt, *.py) or a Makefile is there", ErrNoCheck)
}

// testScript returns package.json's "test" script, "" when there is none or
// it is npm init's placeholder.
func testScript(fsys fs.FS) (string, error) {
	data, err := fs.ReadFile(fsys, "package.json")
	if err != nil {
		return "", err
	}
	var pkg struct {
		Scripts map[string]any `json:"scripts"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return "", fmt.Errorf("package.json is not valid JSON: %w", err)
	}
	s, _ := pkg.Scripts["test"].(string)
	s = strings.TrimSpace(s)
	if s == npmPlaceholder {
		return "", nil
	}
	return s, nil
}

// Resolve returns the check to run: the command given with the request
// when there is one, else the configured one (the `opencode` settings),
// else the detected one.
func Resolve(perCall, configured, root string) (Check, error) {
	if c := strings.TrimSpace(perCall); c != "" {
		return Check{Command: c, Reason: "given with the request"}, nil
	}
	if c := strings.TrimSpace(configured); c != "" {
		return Check{Command: c, Reason: "configured in the settings"}, nil
	}
	return Detect(root)
}
