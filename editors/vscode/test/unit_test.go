package vscodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestExtensionUnit compiles the extension and runs its unit tests (src/test/*.test.ts: argument building, binary
// discovery, markdown sanitising, the chat panel's CSP, status bar and transcript state, settings and secrets
// plumbing) with node's test runner, outside VS Code.
func TestExtensionUnit(t *testing.T) {
	here, _ := os.Getwd()
	extDir := filepath.Dir(here)
	if _, err := os.Stat(filepath.Join(extDir, "node_modules", "typescript", "package.json")); err != nil {
		skipOrFail(t, "the extension's npm dependencies are not installed (%s/node_modules)", extDir)
	}
	cmd := exec.Command("npm", "test", "--silent")
	cmd.Dir = extDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm test: %v\n%s", err, out)
	}
	pass := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out)
	fail := regexp.MustCompile(`(?m)^# fail (\d+)$`).FindSubmatch(out)
	if pass == nil || fail == nil || string(fail[1]) != "0" || string(pass[1]) == "0" {
		t.Fatalf("node --test summary not found or failing:\n%s", out)
	}
	t.Logf("extension unit tests: %s passed", pass[1])
}
