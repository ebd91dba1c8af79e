// Package e2e drives the built opencode-lsp binary with real LSP clients: the
// node library VS Code's client is built on (vscode-languageserver-protocol),
// Neovim 0.7 and 0.12 headless, and Emacs eglot 1.9 and 1.17 in batch mode.
//
// Each client runs a driver script from clients/ with a JSON scenario (the
// steps an editor user takes: open a file, ask for code actions at a cursor,
// run a command, wait for diagnostics…) and writes a JSON report of what it
// received; the tests assert on those reports. install.sh installs the
// clients; a client that is not installed is skipped with a message, unless
// E2E_REQUIRE names it (E2E_REQUIRE=all in CI), in which case the test fails.
//
// Environment: E2E_CACHE (where install.sh put Neovim 0.12 and Emacs 30;
// default .cache here), E2E_REQUIRE (comma-separated client names or "all"),
// E2E_KEEP=1 keeps each run's directory (workspace, report, logs) and prints it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	// serverBin is the opencode-lsp binary built once by TestMain.
	serverBin string
	// repoRoot is the module root.
	repoRoot string
	// goEnv keeps the Go caches of the parent when a client runs with its own HOME.
	goEnv []string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	dir, err := os.MkdirTemp("", "opencode-lsp-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBin = filepath.Join(dir, "opencode-lsp")
	build := exec.Command("go", "build", "-o", serverBin, "./cmd/opencode-lsp")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/opencode-lsp: %v\n%s", err, out)
		return 1
	}
	for _, k := range []string{"GOPATH", "GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", k).Output()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			goEnv = append(goEnv, k+"="+string(bytes.TrimSpace(out)))
		}
	}
	goEnv = append(goEnv, "GOTOOLCHAIN=local")
	return m.Run()
}

// client is one real LSP client and how to start its driver.
type client struct {
	name string
	// encodings the client can be made to use (natively or configured the
	// way its users do); the first is what it negotiates unconfigured.
	encodings []string
	// find returns the command line that runs script-free driver args, or
	// why the client is not available.
	find func() (argv []string, env []string, why string)
}

func cacheDir() string {
	if d := os.Getenv("E2E_CACHE"); d != "" {
		return d
	}
	return filepath.Join(repoRoot, "test", "e2e", ".cache")
}

func driver(name string) string { return filepath.Join(repoRoot, "test", "e2e", "clients", name) }

// versionOf runs bin with args and returns its first output line, or "".
func versionOf(bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

var clients = []*client{
	{name: "node", encodings: []string{"utf-16", "utf-8", "utf-32"}, find: func() ([]string, []string, string) {
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, nil, "node is not installed"
		}
		mods := filepath.Join(repoRoot, "test", "tools", "node_modules")
		if _, err := os.Stat(filepath.Join(mods, "vscode-languageserver-protocol", "package.json")); err != nil {
			return nil, nil, "vscode-languageserver-protocol is not installed in test/tools (run test/e2e/install.sh node)"
		}
		return []string{node, driver("client.js")}, []string{"NODE_PATH=" + mods}, ""
	}},
	{name: "nvim07", encodings: []string{"utf-16", "utf-8", "utf-32"}, find: func() ([]string, []string, string) {
		nvim, err := exec.LookPath("nvim")
		if err != nil {
			return nil, nil, "nvim is not installed (apt-get install neovim; test/e2e/install.sh apt)"
		}
		if v := versionOf(nvim, "--version"); !strings.HasPrefix(v, "NVIM v0.7.") {
			return nil, nil, fmt.Sprintf("nvim on PATH is %q, not Neovim 0.7", v)
		}
		return []string{nvim, "--headless", "--clean", "-c", "luafile " + driver("nvim07.lua")}, nil, ""
	}},
	{name: "nvim012", encodings: []string{"utf-8", "utf-16", "utf-32"}, find: func() ([]string, []string, string) {
		nvim := filepath.Join(cacheDir(), "nvim012", "nvim")
		v := versionOf(nvim, "--version")
		if !strings.HasPrefix(v, "NVIM v0.1") {
			return nil, nil, "Neovim 0.12 is not installed in " + filepath.Dir(nvim) + " (test/e2e/install.sh nvim)"
		}
		return []string{nvim, "--headless", "--clean", "-c", "luafile " + driver("nvim-modern.lua")}, nil, ""
	}},
	{name: "eglot19", encodings: []string{"utf-16", "utf-32"}, find: func() ([]string, []string, string) {
		emacs, err := exec.LookPath("emacs")
		if err != nil {
			return nil, nil, "emacs is not installed (test/e2e/install.sh apt)"
		}
		if m, _ := filepath.Glob("/usr/share/emacs/site-lisp/elpa/eglot-*"); len(m) == 0 {
			return nil, nil, "elpa-eglot is not installed (test/e2e/install.sh apt)"
		}
		return []string{emacs, "--batch", "-Q", "-l", driver("eglot.el")}, nil, ""
	}},
	{name: "eglot117", encodings: []string{"utf-32", "utf-8", "utf-16"}, find: func() ([]string, []string, string) {
		emacs := filepath.Join(cacheDir(), "emacs30", "emacs")
		if _, err := os.Stat(emacs); err != nil {
			return nil, nil, "Emacs 30 is not installed in " + filepath.Dir(emacs) + " (test/e2e/install.sh emacs)"
		}
		return []string{emacs, "--batch", "-Q", "-l", driver("eglot.el")}, nil, ""
	}},
}

func clientNamed(name string) *client {
	for _, c := range clients {
		if c.name == name {
			return c
		}
	}
	panic("no client " + name)
}

// required reports whether E2E_REQUIRE asks for the client.
func required(name string) bool {
	for _, r := range strings.Split(os.Getenv("E2E_REQUIRE"), ",") {
		if r = strings.TrimSpace(r); r == "all" || r == name {
			return true
		}
	}
	return false
}

// runOpts are the knobs of one client run.
type runOpts struct {
	encoding string // E2E_ENCODING: the only encoding the client offers ("" = its default)
	mode     string // E2E_MODE
	env      []string
	// prepare may change the workspace copy before the client starts.
	prepare func(t *testing.T, ws string)
}

// run is one finished client run.
type run struct {
	report *Report
	ws     string        // the workspace copy
	dir    string        // run directory: report, logs
	logs   func() string // the driver's output, the client's and the server's logs, for failure messages

	home, reportPath, clientLogPath, serverLogPath string
}

func (r *run) serverLog() string  { return readFile(r.serverLogPath) }
func (r *run) clientLog() string  { return readFile(clientLogPath(r.clientLogPath, r.home)) }
func (r *run) reportText() string { return readFile(r.reportPath) }

// runClient runs scenario (a file under scenarios/) with client c in a fresh
// copy of testdata/ws and returns the report. It skips when c is not
// installed (fails when E2E_REQUIRE names it) and fails with the client's
// and the server's logs when the driver fails or does not finish.
func runClient(t *testing.T, c *client, scenario string, o runOpts) *run {
	t.Helper()
	argv, extraEnv, why := c.find()
	if why != "" {
		if required(c.name) {
			t.Fatalf("%s is required (E2E_REQUIRE) but not available: %s", c.name, why)
		}
		t.Skipf("%s not available: %s", c.name, why)
	}
	dir := t.TempDir()
	if os.Getenv("E2E_KEEP") != "" {
		d, err := os.MkdirTemp("", "opencode-lsp-e2e-"+c.name+"-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
		t.Logf("run directory kept: %s", dir)
	}
	ws := filepath.Join(dir, "ws")
	home := filepath.Join(dir, "home")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyTree(filepath.Join(repoRoot, "test", "e2e", "testdata", "ws"), ws); err != nil {
		t.Fatal(err)
	}
	if o.prepare != nil {
		o.prepare(t, ws)
	}
	reportPath := filepath.Join(dir, "report.json")
	clientLog := filepath.Join(dir, "client.log")
	serverLog := filepath.Join(dir, "server.log")
	serverArgs, _ := json.Marshal([]string{"--log-file", serverLog, "--log-level", "debug", "--rpc-trace"})

	env := append(os.Environ(),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"TMPDIR="+tmp,
		"E2E_SERVER="+serverBin, "E2E_SERVER_ARGS="+string(serverArgs), "E2E_WORKSPACE="+ws,
		"E2E_SCENARIO="+filepath.Join(repoRoot, "test", "e2e", "scenarios", scenario),
		"E2E_REPORT="+reportPath, "E2E_LOG="+clientLog, "E2E_ENCODING="+o.encoding, "E2E_MODE="+o.mode,
		"E2E_TIMEOUT_MS=20000",
	)
	env = append(env, goEnv...)
	env = append(env, extraEnv...)
	env = append(env, o.env...)

	// The drivers bound every wait themselves (20 s, or a step's timeoutMs); this only catches a client
	// that hangs outright.
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = ws
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)

	r := &run{ws: ws, dir: dir, home: home, reportPath: reportPath, clientLogPath: clientLog, serverLogPath: serverLog}
	rep, rerr := readReport(reportPath)
	r.report = rep
	logs := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "\n--- %s output (exit: %v, %s) ---\n%s", c.name, err, elapsed.Round(time.Millisecond), tail(out.String(), 4000))
		if rep != nil && rep.Error != "" {
			fmt.Fprintf(&b, "\n--- report error ---\n%s\n", rep.Error)
		}
		fmt.Fprintf(&b, "\n--- client log (%s) ---\n%s", clientLogPath(clientLog, home), tail(readFile(clientLogPath(clientLog, home)), 6000))
		fmt.Fprintf(&b, "\n--- server log ---\n%s", tail(readFile(serverLog), 6000))
		return b.String()
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish %s within %v%s", c.name, scenario, hangTimeout, logs())
	}
	if err != nil || rerr != nil || rep.Error != "" {
		t.Fatalf("%s failed to run %s: %v %v%s", c.name, scenario, err, rerr, logs())
	}
	t.Logf("%s (%s) ran %s in %v (driver: %d ms), encoding %s", c.name, rep.Client.Version, scenario,
		elapsed.Round(time.Millisecond), rep.ElapsedMs, rep.Encoding)
	r.logs = logs
	return r
}

// clientLogPath is the driver's log, or the client's own log file when the
// driver did not get to copy it (Neovim's lsp.log lives under XDG dirs).
// hangTimeout bounds one client run from outside.
const hangTimeout = 4 * time.Minute

func clientLogPath(log, home string) string {
	if _, err := os.Stat(log); err == nil {
		return log
	}
	for _, pat := range []string{".cache/nvim/lsp.log", ".local/state/nvim/lsp.log"} {
		if m, _ := filepath.Glob(filepath.Join(home, pat)); len(m) > 0 {
			return m[0]
		}
	}
	return log
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// copyTree copies the fixture workspace src to dst, dropping the ".in" suffix
// of file names.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		// a fixture that must not parse as Go (gofmt -l walks testdata) is stored as NAME.in
		target := filepath.Join(dst, strings.TrimSuffix(rel, ".in"))
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
