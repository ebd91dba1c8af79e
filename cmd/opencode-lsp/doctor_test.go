package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
)

const testORKey = "sk-or-v1-CMDTEST-doctor-0123456789abcdef"

// doctorRun runs the built binary's doctor with env and returns its exit
// code, its JSON checks by name, and everything it printed.
func doctorRun(t *testing.T, env map[string]string, args ...string) (int, map[string]checkResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"doctor", "--json"}, args...)...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var out struct {
		OK     bool          `json:"ok"`
		Checks []checkResult `json:"checks"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("doctor --json printed %q (%v); stderr %s", stdout.String(), err, stderr.String())
	}
	if out.OK != (code == 0) {
		t.Fatalf("ok=%v with exit code %d", out.OK, code)
	}
	byName := map[string]checkResult{}
	for _, c := range out.Checks {
		byName[c.Check] = c
		if c.Status == statusFail && c.Fix == "" {
			t.Errorf("failed check %q has no fix", c.Check)
		}
	}
	return code, byName, stdout.String() + stderr.String()
}

func opencodeForTest(t *testing.T) string {
	t.Helper()
	b, err := filepath.Abs("../../test/tools/node_modules/.bin/opencode")
	if err == nil {
		_, err = os.Stat(b)
	}
	if err != nil {
		t.Skipf("the real OpenCode is not installed (run scripts/setup.sh): %v", err)
	}
	return b
}

func noKeys(t *testing.T, out string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if k != "" && strings.Contains(out, k) {
			t.Fatalf("doctor printed a key: %s", out)
		}
	}
}

// A healthy set-up: every provider's key accepted, a sandbox created, a
// command round trip, OpenCode started in the sandbox and reached through
// its preview URL, the sandbox killed and gone; exit code 0.
func TestDoctorHealthy(t *testing.T) {
	bin := opencodeForTest(t)
	f := newFakes(t)
	or := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testORKey})
	env := f.env
	env["OPENROUTER_API_KEY"], env["OPENROUTER_BASE_URL"] = testORKey, or.URL
	code, checks, out := doctorRun(t, env, "--opencode", bin)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	for _, name := range []string{
		"openrouter: API key", "openrouter: key accepted", "opencode: binary", "local: command round trip",
		"e2b: API key", "e2b: key accepted", "e2b: create sandbox", "e2b: command round trip", "e2b: OpenCode",
		"e2b: preview URL", "e2b: OpenCode API", "e2b: kill sandbox", "e2b: cleanup verified",
		"daytona: API key", "daytona: key accepted", "daytona: create sandbox", "daytona: command round trip", "daytona: OpenCode",
		"daytona: preview URL", "daytona: OpenCode API", "daytona: kill sandbox", "daytona: cleanup verified",
	} {
		if c, ok := checks[name]; !ok || c.Status != statusOK {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := checks["local: bubblewrap"]; c.Status != statusOK && c.Status != statusWarn {
		t.Errorf("bubblewrap: %+v", c)
	}
	if n := f.live(); n != 0 {
		t.Fatalf("doctor left %d sandboxes", n)
	}
	noKeys(t, out, testORKey, testE2BKey, testDaytonaKey)
	// The keys went to their own services only.
	for _, r := range f.e2b.Requests() {
		if strings.Contains(headerText(r.Header), testDaytonaKey) || strings.Contains(headerText(r.Header), testORKey) {
			t.Fatalf("E2B saw another key in %s", r.Path)
		}
	}
	for _, r := range f.daytona.Requests() {
		if strings.Contains(headerText(r.Header), testE2BKey) || strings.Contains(headerText(r.Header), testORKey) {
			t.Fatalf("Daytona saw another key in %s", r.Path)
		}
	}
	// The table form says the same.
	cmd := exec.Command(binary, "doctor", "--providers", "local", "--opencode", bin)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	table, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(table), "CHECK") || !strings.Contains(string(table), "STATUS") ||
		!strings.Contains(string(table), "All checks passed.") || strings.Contains(string(table), "e2b:") {
		t.Fatalf("table (%v):\n%s", err, table)
	}
}

// A wrong key: the provider's "key accepted" check fails with a fix that
// names the variable, no sandbox is created, the key is never printed, and
// the exit code is 1. A wrong OpenRouter key is reported the same way.
func TestDoctorWrongKey(t *testing.T) {
	bin := opencodeForTest(t)
	f := newFakes(t)
	or := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testORKey})
	wrongE2B, wrongOR := "e2b_WRONG_0123456789abcdef0123456789", "sk-or-v1-WRONG-0123456789abcdef"
	env := f.env
	env["E2B_API_KEY"] = wrongE2B
	env["OPENROUTER_API_KEY"], env["OPENROUTER_BASE_URL"] = wrongOR, or.URL
	code, checks, out := doctorRun(t, env, "--providers", "e2b", "--opencode", bin)
	if code != 1 {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	c := checks["e2b: key accepted"]
	if c.Status != statusFail || !strings.Contains(c.Detail, "rejected") || !strings.Contains(c.Fix, "E2B_API_KEY") {
		t.Fatalf("e2b key check: %+v", c)
	}
	if _, ok := checks["e2b: create sandbox"]; ok || f.live() != 0 {
		t.Fatal("a sandbox was created with a rejected key")
	}
	c = checks["openrouter: key accepted"]
	if c.Status != statusFail || !strings.Contains(c.Fix, "OPENROUTER_API_KEY") {
		t.Fatalf("openrouter key check: %+v", c)
	}
	if _, ok := checks["local: bubblewrap"]; ok {
		t.Fatal("--providers e2b checked the local sandbox")
	}
	noKeys(t, out, wrongE2B, wrongOR, testDaytonaKey)
}

// A missing key: the provider named with --providers fails its key check
// with the error the daemon gives ("DAYTONA_API_KEY is required") and a fix;
// nothing else of that provider is tried.
func TestDoctorMissingKey(t *testing.T) {
	bin := opencodeForTest(t)
	f := newFakes(t)
	or := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testORKey})
	env := f.env
	delete(env, "DAYTONA_API_KEY")
	delete(env, "E2B_API_KEY")
	env["OPENROUTER_API_KEY"], env["OPENROUTER_BASE_URL"] = testORKey, or.URL
	code, checks, out := doctorRun(t, env, "--providers", "daytona,e2b", "--opencode", bin)
	if code != 1 {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	for p, v := range map[string]string{"daytona": "DAYTONA_API_KEY", "e2b": "E2B_API_KEY"} {
		c := checks[p+": API key"]
		if c.Status != statusFail || !strings.Contains(c.Detail, v+" is required") || !strings.Contains(c.Fix, "export "+v+"=") {
			t.Fatalf("%s key check: %+v", p, c)
		}
		if _, ok := checks[p+": key accepted"]; ok {
			t.Fatalf("%s was contacted without a key", p)
		}
	}
	if len(f.daytona.Requests())+len(f.e2b.Requests()) != 0 {
		t.Fatal("a cloud was contacted without a key")
	}
	// Without --providers, a cloud provider without a key is not checked.
	code, checks, out = doctorRun(t, env, "--opencode", bin)
	if _, ok := checks["daytona: API key"]; ok || code != 0 {
		t.Fatalf("default providers (exit %d):\n%s", code, out)
	}
	// OpenRouter's key missing.
	delete(env, "OPENROUTER_API_KEY")
	code, checks, _ = doctorRun(t, env, "--providers", "local", "--opencode", bin)
	if c := checks["openrouter: API key"]; code != 1 || c.Status != statusFail || !strings.Contains(c.Fix, "OPENROUTER_API_KEY") {
		t.Fatalf("without an OpenRouter key: %d %+v", code, c)
	}
}

func headerText(h map[string][]string) string {
	var b strings.Builder
	for k, vs := range h {
		b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	return b.String()
}
