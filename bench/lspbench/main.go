// Command lspbench measures language servers side by side over stdio with
// one client: opencode-lsp against gopls and GitHub's Copilot language
// server as baselines, in one invocation, on one generated Go workspace
// (go.mod + a 2,000-line file). It reports medians and the ratios of
// opencode-lsp to each baseline:
//
//   - start: process start → initialize reply (fresh process each time);
//   - rss: resident memory after initialize + didOpen of the 2,000-line
//     file, once the server has settled (gopls: its diagnostics for the
//     file arrived), of the server process (and of its process tree);
//   - codeAction: round trip of textDocument/codeAction on that file, for a
//     one-line selection invoked from the menu (triggerKind 1) and for a
//     cursor the editor asks about by itself (triggerKind 2);
//   - load: how much a concurrent ~1 s workspace/executeCommand adds to the
//     codeAction median (opencode-lsp: opencode.run {"command":"sleep 1"} in
//     the local sandbox; gopls: gopls.run_tests of a test that sleeps 1 s),
//     against codeActions measured right before it in the same session.
//
// Rounds alternate the servers so that drift in machine load hits all of
// them alike. Usage (bench/run.sh passes the paths it installed):
//
//	lspbench -opencode bin/opencode-lsp -gopls .cache/bin/gopls \
//	    -copilot .cache/npm/node_modules/@github/copilot-language-server-linux-x64/copilot-language-server \
//	    -json out/core.json
//
// A server whose path is empty is skipped. `lspbench chat -opencode BIN`
// measures the chat path of the real binary instead (see runChat). Nothing
// here is a pass/fail test: the output is figures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/bench/lspclient"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "nullserver" {
		os.Exit(serveNull(os.Stdin, os.Stdout))
	}
	run := run
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "chat" {
		run, args = runChat, args[1:]
	}
	if err := run(args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lspbench:", err)
		os.Exit(1)
	}
}

type config struct {
	opencode, gopls, copilot  string
	starts, sessions, warmups int
	floor                     bool
	codeActions, loadRounds   int
	jsonOut, workDir          string
	timeout                   time.Duration
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lspbench", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.opencode, "opencode", "", "opencode-lsp binary (required)")
	fs.StringVar(&c.gopls, "gopls", "", "gopls binary (baseline; empty skips it)")
	fs.StringVar(&c.copilot, "copilot", "", "copilot-language-server binary (baseline; empty skips it)")
	fs.IntVar(&c.starts, "starts", 15, "process starts per server")
	fs.IntVar(&c.sessions, "sessions", 3, "sessions per server (RSS, codeAction, load)")
	fs.IntVar(&c.warmups, "warmup", 1, "sessions per server run first and discarded (cold caches)")
	fs.BoolVar(&c.floor, "floor", true, "also measure a null LSP server (the pipes-and-client floor)")
	fs.IntVar(&c.codeActions, "codeactions", 200, "codeAction requests of each kind per session")
	fs.IntVar(&c.loadRounds, "load-rounds", 3, "concurrent ~1 s commands per session")
	fs.StringVar(&c.jsonOut, "json", "", "write the results as JSON to `file`")
	fs.StringVar(&c.workDir, "work", "", "workspace directory (default: a new temp dir, removed at the end)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "bound on any one wait for a server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.opencode == "" {
		return errors.New("-opencode is required")
	}
	if c.workDir == "" {
		d, err := os.MkdirTemp("", "lspbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.workDir = d
	}
	ws, err := makeWorkspace(filepath.Join(c.workDir, "ws"))
	if err != nil {
		return err
	}
	profiles, err := makeProfiles(c, ws)
	if err != nil {
		return err
	}

	rep := report{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadBefore: loadAvg(), File: fmt.Sprintf("%d lines, %d bytes", bigLines, len(ws.BigText)),
		Servers: map[string]*serverResult{},
	}
	for _, p := range profiles {
		version := p.version()
		if p.Floor {
			version = "lspbench nullserver: answers at once and does nothing (the floor: process, pipes, client)"
		}
		rep.Servers[p.Name] = &serverResult{Version: version}
		rep.Order = append(rep.Order, p.Name)
		if p.Name != "opencode-lsp" && !p.Floor {
			rep.Baselines = append(rep.Baselines, p.Name)
		}
	}
	fmt.Fprintf(stdout, "lspbench: %d servers, load average %s, workspace %s\n", len(profiles), rep.LoadBefore, ws.Root)

	// Warm-up sessions fill the servers' caches (gopls's file cache, the
	// build cache, the local sandbox) and the page cache; their figures are
	// dropped.
	for i := 0; i < c.warmups; i++ {
		for _, p := range profiles {
			if err := runSession(p, ws, c, &serverResult{}); err != nil {
				return err
			}
		}
	}

	// Start → initialize, rounds alternating the servers (rotated order).
	for i := 0; i < c.starts; i++ {
		for j := range profiles {
			p := profiles[(i+j)%len(profiles)]
			d, err := measureStart(p, ws, c.timeout)
			if err != nil {
				return err
			}
			r := rep.Servers[p.Name]
			r.starts = append(r.starts, d)
		}
	}
	fmt.Fprintf(stdout, "lspbench: starts done (load %s)\n", loadAvg())

	// Sessions: RSS, codeAction, codeAction under a concurrent command.
	for i := 0; i < c.sessions; i++ {
		for j := range profiles {
			p := profiles[(i+j)%len(profiles)]
			if err := runSession(p, ws, c, rep.Servers[p.Name]); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "lspbench: session round %d/%d done (load %s)\n", i+1, c.sessions, loadAvg())
	}
	rep.LoadAfter = loadAvg()
	rep.summarize()
	rep.print(stdout)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.MkdirAll(filepath.Dir(c.jsonOut), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lspbench: wrote %s\n", c.jsonOut)
	}
	return nil
}

// profile is how one server is started and driven.
type profile struct {
	Name        string
	Argv        []string
	VersionArgv []string
	Env         []string
	InitOptions any
	// Configuration answers workspace/configuration by section.
	Configuration func(section string) any
	// AfterInitialized runs right after the initialized notification.
	AfterInitialized func(c *server) error
	// PublishesOnOpen: wait for the file's diagnostics before measuring
	// memory (the server loads and type-checks in the background).
	PublishesOnOpen bool
	// LoadCommand is the ~1 s workspace/executeCommand; nil when the
	// server has none (its load figures are reported as n/a).
	LoadCommand func(w *workspace) (string, any)
	// LoadNote describes the command in the report.
	LoadNote string
	// Floor marks the null server: shown for reference, never a baseline.
	Floor bool
}

func (p *profile) version() string {
	if len(p.VersionArgv) == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.VersionArgv[0], p.VersionArgv[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

func makeProfiles(c config, ws *workspace) ([]*profile, error) {
	abs := func(p string) (string, error) {
		if !strings.Contains(p, "/") {
			return exec.LookPath(p)
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(a); err != nil {
			return "", err
		}
		return a, nil
	}
	var out []*profile
	bin, err := abs(c.opencode)
	if err != nil {
		return nil, fmt.Errorf("-opencode: %w", err)
	}
	// The local sandbox keeps its working copies under the user cache dir:
	// point it at the bench's own directory.
	cache := filepath.Join(c.workDir, "opencode-cache")
	out = append(out, &profile{
		Name: "opencode-lsp", Argv: []string{bin, "--log-level", "warn"}, VersionArgv: []string{bin, "version"},
		Env:         []string{"XDG_CACHE_HOME=" + cache},
		InitOptions: map[string]any{"answers": "none"},
		LoadCommand: func(w *workspace) (string, any) {
			return "opencode.run", map[string]any{"command": "sleep 1", "uri": w.uri(w.BigPath)}
		},
		LoadNote: `opencode.run {"command":"sleep 1"} (local sandbox)`,
	})
	if c.gopls != "" {
		g, err := abs(c.gopls)
		if err != nil {
			return nil, fmt.Errorf("-gopls: %w", err)
		}
		out = append(out, &profile{
			Name: "gopls", Argv: []string{g, "serve"}, VersionArgv: []string{g, "version"},
			// gopls's file cache goes next to the binary, not in $HOME.
			Env:             []string{"GOPLSCACHE=" + filepath.Join(filepath.Dir(g), "..", "gopls-cache")},
			PublishesOnOpen: true,
			LoadCommand: func(w *workspace) (string, any) {
				return "gopls.run_tests", map[string]any{"URI": w.uri(w.SleepTestPath), "Tests": []string{"TestBenchSleep"}}
			},
			LoadNote: "gopls.run_tests TestBenchSleep (go test of a test sleeping 1 s)",
		})
	}
	if c.floor {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		out = append(out, &profile{Name: "null-server", Argv: []string{self, "nullserver"}, Floor: true})
	}
	if c.copilot != "" {
		cp, err := abs(c.copilot)
		if err != nil {
			return nil, fmt.Errorf("-copilot: %w", err)
		}
		settings := map[string]any{"telemetry": map[string]any{"telemetryLevel": "off"}}
		out = append(out, &profile{
			Name: "copilot", Argv: []string{cp, "--stdio"}, VersionArgv: []string{cp, "--version"},
			InitOptions: map[string]any{
				"editorInfo":       map[string]any{"name": "lspbench", "version": "1.0.0"},
				"editorPluginInfo": map[string]any{"name": "lspbench", "version": "1.0.0"},
			},
			Configuration: func(string) any { return settings },
			AfterInitialized: func(c *server) error {
				return c.Notify("workspace/didChangeConfiguration", map[string]any{"settings": settings})
			},
		})
	}
	return out, nil
}

// capabilities are what every server is told: a VS Code-like editor.
func capabilities() map[string]any {
	return map[string]any{
		"general": map[string]any{"positionEncodings": []string{"utf-16"}},
		"workspace": map[string]any{
			"applyEdit": true,
			"workspaceEdit": map[string]any{
				"documentChanges": true, "resourceOperations": []string{"create", "rename", "delete"},
				"changeAnnotationSupport": map[string]any{"groupsOnLabel": true},
			},
			"configuration": true, "workspaceFolders": true,
			"didChangeConfiguration": map[string]any{"dynamicRegistration": true},
		},
		"window": map[string]any{"workDoneProgress": true, "showDocument": map[string]any{"support": true}},
		"textDocument": map[string]any{
			"synchronization": map[string]any{"didSave": true, "dynamicRegistration": true},
			"codeAction": map[string]any{
				"codeActionLiteralSupport": map[string]any{"codeActionKind": map[string]any{
					"valueSet": []string{"", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source", "source.organizeImports"},
				}},
				"resolveSupport": map[string]any{"properties": []string{"edit"}},
				"dataSupport":    true,
			},
			"publishDiagnostics": map[string]any{"relatedInformation": true},
		},
	}
}

func initializeParams(p *profile, ws *workspace) map[string]any {
	params := map[string]any{
		"processId":        os.Getpid(),
		"clientInfo":       map[string]any{"name": "lspbench", "version": "1"},
		"rootUri":          ws.uri(ws.Root),
		"workspaceFolders": []map[string]any{{"uri": ws.uri(ws.Root), "name": "benchws"}},
		"capabilities":     capabilities(),
	}
	if p.InitOptions != nil {
		params["initializationOptions"] = p.InitOptions
	}
	return params
}

// measureStart times one fresh process from start to the initialize reply.
func measureStart(p *profile, ws *workspace, timeout time.Duration) (time.Duration, error) {
	c, t0, err := startServer(p, ws.Root, lspclient.Hooks{})
	if err != nil {
		return 0, err
	}
	defer c.close(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, _, err := c.call(ctx, "initialize", initializeParams(p, ws))
	if err != nil {
		return 0, err
	}
	return r.At.Sub(t0), nil
}

type codeActionKind struct {
	name        string
	triggerKind int
	sel         bool
}

var codeActionKinds = []codeActionKind{
	{"invoked-selection", 1, true},
	{"automatic-cursor", 2, false},
}

func codeActionParams(ws *workspace, k codeActionKind) map[string]any {
	start := map[string]any{"line": ws.SelLine, "character": ws.SelStart}
	end := start
	if k.sel {
		end = map[string]any{"line": ws.SelLine, "character": ws.SelEnd}
	}
	return map[string]any{
		"textDocument": map[string]any{"uri": ws.uri(ws.BigPath)},
		"range":        map[string]any{"start": start, "end": end},
		"context":      map[string]any{"diagnostics": []any{}, "triggerKind": k.triggerKind},
	}
}

// runSession opens one session and measures memory, codeAction latency and
// codeAction latency under a concurrent ~1 s command.
func runSession(p *profile, ws *workspace, cfg config, res *serverResult) error {
	bigURI := ws.uri(ws.BigPath)
	var (
		diagged = make(chan struct{})
		once    sync.Once
	)
	notify := func(method string, params json.RawMessage, at time.Time) {
		if method != "textDocument/publishDiagnostics" {
			return
		}
		var d struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(params, &d) == nil && sameURI(d.URI, bigURI) {
			once.Do(func() { close(diagged) })
		}
	}
	c, _, err := startServer(p, ws.Root, lspclient.Hooks{Notify: notify, Configuration: p.Configuration})
	if err != nil {
		return err
	}
	defer c.close(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wait := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, cfg.timeout) }

	ictx, icancel := wait()
	r, _, err := c.call(ictx, "initialize", initializeParams(p, ws))
	icancel()
	if err != nil {
		return err
	}
	var init struct {
		Capabilities struct {
			CodeActionProvider     json.RawMessage `json:"codeActionProvider"`
			ExecuteCommandProvider *struct {
				Commands []string `json:"commands"`
			} `json:"executeCommandProvider"`
		} `json:"capabilities"`
	}
	_ = json.Unmarshal(r.Result, &init)
	hasCodeAction := len(init.Capabilities.CodeActionProvider) > 0 && string(init.Capabilities.CodeActionProvider) != "false" && string(init.Capabilities.CodeActionProvider) != "null"
	res.CodeActionProvider = hasCodeAction
	if err := c.Notify("initialized", map[string]any{}); err != nil {
		return err
	}
	if p.AfterInitialized != nil {
		if err := p.AfterInitialized(c); err != nil {
			return err
		}
	}
	if err := c.Notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": bigURI, "languageId": "go", "version": 1, "text": ws.BigText,
	}}); err != nil {
		return err
	}
	if p.PublishesOnOpen {
		select {
		case <-diagged:
		case <-time.After(cfg.timeout):
			return fmt.Errorf("%s: no diagnostics for big.go within %s", p.Name, cfg.timeout)
		}
	}
	codeAction := func(k codeActionKind) (time.Duration, error) {
		actx, acancel := wait()
		defer acancel()
		r, sent, err := c.call(actx, "textDocument/codeAction", codeActionParams(ws, k))
		if err != nil {
			return 0, err
		}
		return r.At.Sub(sent), nil
	}
	if hasCodeAction {
		// Warm up, and make sure didOpen was processed.
		for i := 0; i < 10; i++ {
			for _, k := range codeActionKinds {
				if _, err := codeAction(k); err != nil {
					return err
				}
			}
		}
	}
	time.Sleep(time.Second) // let start-up work settle
	res.rssMain = append(res.rssMain, rssKB(c.cmd.Process.Pid))
	res.rssTree = append(res.rssTree, treeRSSKB(c.cmd.Process.Pid))
	if !hasCodeAction {
		return nil
	}
	if res.codeActions == nil {
		res.codeActions = map[string][]time.Duration{}
	}
	for i := 0; i < cfg.codeActions; i++ {
		for _, k := range codeActionKinds {
			d, err := codeAction(k)
			if err != nil {
				return err
			}
			res.codeActions[k.name] = append(res.codeActions[k.name], d)
		}
	}

	if p.LoadCommand == nil {
		return nil
	}
	res.LoadCommand = p.LoadNote
	command, arg := p.LoadCommand(ws)
	execute := func() (time.Duration, error) {
		// The command's own bound: the sandbox's first use (or a cold
		// go build) can take longer than one request should.
		xctx, xcancel := context.WithTimeout(ctx, 5*time.Minute)
		defer xcancel()
		r, sent, err := c.call(xctx, "workspace/executeCommand", map[string]any{"command": command, "arguments": []any{arg}})
		if err != nil {
			return 0, err
		}
		return r.At.Sub(sent), nil
	}
	if _, err := execute(); err != nil { // warm-up: sandbox, build cache
		return err
	}
	k := codeActionKinds[0]
	for round := 0; round < cfg.loadRounds; round++ {
		// Paced like the loop below, so that both see the same idle gaps.
		for i := 0; i < 50; i++ {
			d, err := codeAction(k)
			if err != nil {
				return err
			}
			res.idle = append(res.idle, d)
			time.Sleep(2 * time.Millisecond)
		}
		type outcome struct {
			d   time.Duration
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			d, err := execute()
			done <- outcome{d, err}
		}()
		var during []time.Duration
	loop:
		for {
			select {
			case o := <-done:
				if o.err != nil {
					return o.err
				}
				res.commandDurations = append(res.commandDurations, o.d)
				break loop
			default:
			}
			d, err := codeAction(k)
			if err != nil {
				return err
			}
			during = append(during, d)
			time.Sleep(2 * time.Millisecond)
		}
		res.loaded = append(res.loaded, during...)
	}
	return nil
}

// sameURI compares file URIs the way servers spell them (gopls may
// normalise the percent-encoding).
func sameURI(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}
