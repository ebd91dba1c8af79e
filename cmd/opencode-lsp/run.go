package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/redact"
)

// runCLI implements `opencode-lsp run [--json] [--sandbox NAME] [DIR] [-- COMMAND...]`:
// it starts the server in-process, connects to it over a pipe like an
// editor, runs opencode.run in DIR (default: the current directory) and
// prints the diagnostics as `file:line:col: severity: message` (columns are
// 1-based UTF-8 byte columns, as compilers print them), or as LSP JSON with
// --json. The exit code is the command's.
func runCLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("opencode-lsp run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the result and diagnostics as LSP JSON")
	sbox := fs.String("sandbox", "", "sandbox: local (default), e2b or daytona")
	timeout := fs.Int("timeout", 0, "timeout in `seconds` (default 600)")
	logLevel := fs.String("log-level", "warn", "log `level` on stderr: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: opencode-lsp run [--json] [--sandbox local] [DIR] [-- COMMAND...]\n\n"+
			"Runs the project's check (or COMMAND) in a sandbox and prints its problems as\nfile:line:col: severity: message.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var cmdArgs []string
	for i, a := range args {
		if a == "--" {
			args, cmdArgs = args[:i], args[i+1:]
			break
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	dir := "."
	switch fs.NArg() {
	case 0:
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintf(stderr, "opencode-lsp run: one DIR at most, got %q (put the command after --)\n", fs.Args())
		return 2
	}
	root, err := filepath.Abs(dir)
	if err == nil {
		var st os.FileInfo
		if st, err = os.Stat(root); err == nil && !st.IsDir() {
			err = fmt.Errorf("%s is not a directory", dir)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "opencode-lsp run: %v\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "opencode-lsp run: --log-level %q is not one of debug, info, warn, error\n", *logLevel)
		return 2
	}
	redactor := &redact.Redactor{}
	logger := slog.New(redactor.Handler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, diags, err := runInProcess(ctx, root, *sbox, joinCommand(cmdArgs), *timeout, lsp.Options{Version: version, Logger: logger, Redactor: redactor}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "opencode-lsp run: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"result": res, "diagnostics": diags})
	} else {
		printDiagnostics(stdout, root, diags)
		fmt.Fprintf(stderr, "%s: exit %d, %s in %s, %d ms\n", res.Command, res.ExitCode, plural(countAll(diags), "problem"), plural(len(diags), "file"), res.DurationMs)
	}
	if res.ExitCode < 0 || res.ExitCode > 255 {
		return 1
	}
	return res.ExitCode
}

// joinCommand turns argv into a shell command line, quoting as needed.
func joinCommand(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

// runInProcess drives an in-process server like an editor: initialize with
// DIR as the workspace, executeCommand opencode.run, collect
// publishDiagnostics, shutdown, exit.
func runInProcess(ctx context.Context, root, sbox, cmdline string, timeoutSec int, opts lsp.Options, progressOut io.Writer) (command.RunResult, map[protocol.DocumentURI][]protocol.Diagnostic, error) {
	cli, srv := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_, _ = lsp.Serve(ctx, srv, opts)
	}()
	conn := jsonrpc2.NewConn(jsonrpc2.NewStream(cli))
	var mu sync.Mutex
	diags := map[protocol.DocumentURI][]protocol.Diagnostic{}
	conn.Go(ctx, func(ctx context.Context, reply jsonrpc2.Replier, req jsonrpc2.Request) error {
		switch req.Method() {
		case "textDocument/publishDiagnostics":
			var p protocol.PublishDiagnosticsParams
			if json.Unmarshal(req.Params(), &p) == nil {
				mu.Lock()
				if len(p.Diagnostics) == 0 {
					delete(diags, p.URI)
				} else {
					diags[p.URI] = p.Diagnostics
				}
				mu.Unlock()
			}
			return nil
		case "window/showMessage", "window/logMessage":
			var p protocol.ShowMessageParams
			if json.Unmarshal(req.Params(), &p) == nil && p.Type <= protocol.MessageTypeWarning {
				fmt.Fprintf(progressOut, "opencode-lsp: %s\n", p.Message)
			}
			return nil
		}
		if _, ok := req.(*jsonrpc2.Call); ok {
			return reply(ctx, nil, nil) // workDoneProgress/create, configuration, …
		}
		return nil
	})
	defer func() {
		conn.Close()
		<-served
	}()
	rootURI := (&url.URL{Scheme: "file", Path: filepath.ToSlash(root)}).String()
	init := map[string]any{
		"processId": os.Getpid(), "rootUri": rootURI,
		"workspaceFolders": []map[string]any{{"uri": rootURI, "name": filepath.Base(root)}},
		"capabilities": map[string]any{
			"general":      map[string]any{"positionEncodings": []string{"utf-8"}},
			"textDocument": map[string]any{"publishDiagnostics": map[string]any{"relatedInformation": true}},
		},
		"clientInfo": map[string]any{"name": "opencode-lsp run", "version": version},
	}
	if _, err := conn.Call(ctx, "initialize", init, nil); err != nil {
		return command.RunResult{}, nil, fmt.Errorf("initialize: %w", err)
	}
	_ = conn.Notify(ctx, "initialized", map[string]any{})
	args := command.RunArgs{Command: cmdline, Sandbox: sbox, TimeoutSec: timeoutSec}
	var res command.RunResult
	if _, err := conn.Call(ctx, "workspace/executeCommand", map[string]any{"command": command.Run, "arguments": []any{args}}, &res); err != nil {
		return res, nil, err
	}
	_, _ = conn.Call(ctx, "shutdown", nil, nil)
	_ = conn.Notify(ctx, "exit", nil)
	mu.Lock()
	defer mu.Unlock()
	out := map[protocol.DocumentURI][]protocol.Diagnostic{}
	for u, d := range diags {
		out[u] = d
	}
	return res, out, nil
}

// severityWords name LSP's diagnostic severities.
var severityWords = map[protocol.DiagnosticSeverity]string{1: "error", 2: "warning", 3: "info", 4: "hint"}

// printDiagnostics prints file:line:col: severity: message lines, files in
// order, paths relative to root when inside it.
func printDiagnostics(w io.Writer, root string, diags map[protocol.DocumentURI][]protocol.Diagnostic) {
	uris := make([]string, 0, len(diags))
	for u := range diags {
		uris = append(uris, string(u))
	}
	sort.Strings(uris)
	for _, u := range uris {
		name := u
		if parsed, err := url.Parse(u); err == nil && parsed.Scheme == "file" {
			name = parsed.Path
			if rel, err := filepath.Rel(root, filepath.FromSlash(parsed.Path)); err == nil && !strings.HasPrefix(rel, "..") {
				name = rel
			}
		}
		for _, d := range diags[protocol.DocumentURI(u)] {
			sev := severityWords[d.Severity]
			if sev == "" {
				sev = "error"
			}
			msg := strings.ReplaceAll(d.Message, "\n", "\n\t")
			fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", name, d.Range.Start.Line+1, d.Range.Start.Character+1, sev, msg)
		}
	}
}

// plural renders "1 file", "3 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func countAll(diags map[protocol.DocumentURI][]protocol.Diagnostic) int {
	n := 0
	for _, d := range diags {
		n += len(d)
	}
	return n
}
