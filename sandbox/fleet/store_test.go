package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/fleet"
)

// TestMain lets the test binary play a second daemon (see
// TestStoreSharedByProcesses).
func TestMain(m *testing.M) {
	if dir := os.Getenv("FLEET_TEST_DAEMON_DIR"); dir != "" {
		os.Exit(daemonHelper(dir))
	}
	os.Exit(m.Run())
}

// daemonHelper reserves, confirms and finishes sandboxes in a loop, as a
// daemon of its own would.
func daemonHelper(dir string) int {
	n, _ := strconv.Atoi(os.Getenv("FLEET_TEST_ROUNDS"))
	st := fleet.NewStore(dir)
	for i := 0; i < n; i++ {
		if err := fleet.StoreRound(st, fmt.Sprintf("sb-%d-%d", os.Getpid(), i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// Several processes updating one usage file lose nothing: every round adds
// exactly one second, so the month's total is the number of rounds.
func TestStoreSharedByProcesses(t *testing.T) {
	dir := t.TempDir()
	const procs, rounds = 4, 25
	var cmds []*exec.Cmd
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FLEET_TEST_DAEMON_DIR="+dir, "FLEET_TEST_ROUNDS="+strconv.Itoa(rounds))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	usage, err := fleet.NewStore(dir).Usage(time.Now(), fleet.Alive)
	if err != nil {
		t.Fatal(err)
	}
	if got := usage["e2b"]; got != procs*rounds {
		t.Fatalf("total %v s, want %d", got, procs*rounds)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".usage-") {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}

// Alive tells a running daemon from one that is gone, and from a recycled
// pid (another start time).
func TestAlive(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start := fleet.ProcessStart(pid)
	id := fmt.Sprintf("%d-%d-x", pid, start)
	if !fleet.Alive(id) {
		t.Fatal("a running process is not alive")
	}
	if start != 0 && fleet.Alive(fmt.Sprintf("%d-%d-x", pid, start+1)) {
		t.Fatal("another start time counts as alive")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if fleet.Alive(id) {
		t.Fatal("a killed process is alive")
	}
	if !fleet.Alive("not-an-id") || !fleet.Alive("") {
		t.Fatal("an id that cannot be parsed must count as alive")
	}
	inst := fleet.NewInstance()
	if !fleet.Alive(inst.ID) || !strings.Contains(inst.Owner, "@") {
		t.Fatalf("this process: %+v", inst)
	}
}

// OpenCode is found on the sandbox's PATH, or installed with npm (a stand-in
// npm that writes a binary: tests never download the real package), and an
// npm that is missing or fails gives a clear error.
func TestFindOrInstallOpenCode(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	p, _ := c.provider("e2b")
	sb, err := p.Open(ctx, sandbox.Spec{Key: "opencode", WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())

	bin := t.TempDir()
	npmLog := filepath.Join(bin, "npm.log")
	writeScript(t, filepath.Join(bin, "npm"), `#!/bin/sh
echo "$@" >> `+npmLog+`
prefix=
while [ $# -gt 0 ]; do
  case "$1" in --prefix) prefix=$2; shift;; opencode-ai@*) version=${1#opencode-ai@};; esac
  shift
done
mkdir -p "$prefix/bin"
printf '#!/bin/sh\necho %s\n' "$version" > "$prefix/bin/opencode"
chmod +x "$prefix/bin/opencode"
`)
	env := map[string]string{"PATH": bin + ":/usr/bin:/bin"}
	in := fleet.OpenCodeInstall{Candidates: []string{"/no/such/opencode", "opencode"}, Version: "1.18.33", Env: env}
	var progress []string
	in.Progress = func(m string) { progress = append(progress, m) }
	found, err := fleet.FindOrInstallOpenCode(ctx, sb, in)
	if err != nil {
		t.Fatal(err)
	}
	if !found.Installed || found.Version != "1.18.33" || !strings.HasSuffix(found.Path, "/.opencode-lsp/npm/bin/opencode") || len(progress) != 1 {
		t.Fatalf("install: %+v %v", found, progress)
	}
	log, _ := os.ReadFile(npmLog)
	if !strings.Contains(string(log), "install -g") || !strings.Contains(string(log), "opencode-ai@1.18.33") {
		t.Fatalf("npm was run as %q", log)
	}
	// Found the second time, without npm.
	os.Remove(npmLog)
	found, err = fleet.FindOrInstallOpenCode(ctx, sb, in)
	if err != nil || found.Installed || found.Version != "1.18.33" {
		t.Fatalf("second call: %+v %v", found, err)
	}
	if _, err := os.Stat(npmLog); err == nil {
		t.Fatal("npm ran although OpenCode was there")
	}
	// A candidate on the PATH wins over the install prefix.
	writeScript(t, filepath.Join(bin, "opencode"), "#!/bin/sh\necho 9.9.9\n")
	if found, err = fleet.FindOrInstallOpenCode(ctx, sb, in); err != nil || found.Path != filepath.Join(bin, "opencode") || found.Version != "9.9.9" {
		t.Fatalf("PATH candidate: %+v %v", found, err)
	}

	// A fresh sandbox without npm.
	sb2, err := p.Open(ctx, sandbox.Spec{Key: "opencode2", WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sb2.Close(context.Background())
	// A PATH without npm (but with setsid, which the E2B provider's command
	// wrapper needs).
	empty := t.TempDir()
	if setsid, err := exec.LookPath("setsid"); err == nil {
		os.Symlink(setsid, filepath.Join(empty, "setsid"))
	}
	_, err = fleet.FindOrInstallOpenCode(ctx, sb2, fleet.OpenCodeInstall{Candidates: []string{"opencode"}, Version: "1.18.33", Env: map[string]string{"PATH": empty}})
	if !errors.Is(err, fleet.ErrOpenCodeMissing) || !strings.Contains(err.Error(), "npm is not there") {
		t.Fatalf("without npm: %v", err)
	}
	// An npm that fails: its last lines are in the error.
	writeScript(t, filepath.Join(empty, "npm"), "#!/bin/sh\necho 'npm ERR! code E404' >&2\nexit 1\n")
	_, err = fleet.FindOrInstallOpenCode(ctx, sb2, fleet.OpenCodeInstall{Candidates: []string{"opencode"}, Version: "0.0.0-nope", Env: map[string]string{"PATH": empty}})
	if !errors.Is(err, fleet.ErrOpenCodeMissing) || !strings.Contains(err.Error(), "npm ERR! code E404") {
		t.Fatalf("failing npm: %v", err)
	}
	// Without a version to install, a missing OpenCode is an error at once.
	if _, err := fleet.FindOrInstallOpenCode(ctx, sb2, fleet.OpenCodeInstall{Candidates: []string{"opencode"}, Env: map[string]string{"PATH": empty}}); !errors.Is(err, fleet.ErrOpenCodeMissing) {
		t.Fatalf("no install: %v", err)
	}
}

func writeScript(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}
