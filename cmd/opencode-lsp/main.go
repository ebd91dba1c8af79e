// Command opencode-lsp is a language server that brings an AI chat
// (OpenRouter) and a sandboxed coding agent (OpenCode) into every LSP editor.
//
// Usage:
//
//	opencode-lsp [flags]                 serve LSP on stdin/stdout
//	opencode-lsp --listen tcp:HOST:PORT  serve every connection (unix:PATH too)
//	opencode-lsp run [--json] [--sandbox local] [DIR] [-- COMMAND...]
//	                                     run the project's check (or COMMAND) in a
//	                                     sandbox and print its problems
//	opencode-lsp doctor [--json] [--providers local,e2b,daytona]
//	                                     check keys, sandboxes, bubblewrap and OpenCode;
//	                                     print a table with a fix for each failure
//	opencode-lsp version                 print the version
//
// Flags:
//
//	--log-file PATH     write the log there instead of stderr
//	--log-level LEVEL   debug, info (default), warn or error
//	--rpc-trace         log every LSP message (secrets redacted)
//	--version           print the version and exit
//
// Nothing but the protocol is ever written to stdout. In stdio mode the exit
// code is 0 after shutdown then exit and 1 after exit without shutdown (or
// when the editor goes away).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/redact"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globalFlags are the daemon's flags.
type globalFlags struct {
	listen   string
	logFile  string
	logLevel string
	rpcTrace bool
	version  bool
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("opencode-lsp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var g globalFlags
	fs.StringVar(&g.listen, "listen", "", "serve connections on `tcp:HOST:PORT` or unix:PATH instead of stdio")
	fs.StringVar(&g.logFile, "log-file", "", "write the log to `PATH` instead of stderr")
	fs.StringVar(&g.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.BoolVar(&g.rpcTrace, "rpc-trace", false, "log every LSP message (secrets redacted)")
	fs.BoolVar(&g.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  opencode-lsp [flags]            serve LSP on stdio\n"+
			"  opencode-lsp run [--json] [--sandbox local] [DIR] [-- COMMAND...]\n"+
			"                                  run the project's check in a sandbox, print its problems\n"+
			"  opencode-lsp doctor [--json] [--providers local,e2b,daytona]\n"+
			"                                  check keys, sandboxes, bubblewrap and OpenCode\n"+
			"  opencode-lsp version\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if g.version || (fs.NArg() > 0 && fs.Arg(0) == "version") {
		fmt.Fprintf(stdout, "opencode-lsp %s\n", version)
		return 0
	}
	if fs.NArg() > 0 && fs.Arg(0) == "run" {
		return runCLI(fs.Args()[1:], stdout, stderr)
	}
	if fs.NArg() > 0 && fs.Arg(0) == "doctor" {
		return doctorCLI(fs.Args()[1:], stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "opencode-lsp: unknown command %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	redactor := &redact.Redactor{}
	logger, closeLog, err := newLogger(g, stderr, redactor)
	if err != nil {
		fmt.Fprintf(stderr, "opencode-lsp: %v\n", err)
		return 2
	}
	defer closeLog()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// When the editor dies its end of our stdout/stderr pipes closes: a write
	// must fail with EPIPE, not kill the daemon by SIGPIPE halfway through
	// closing (possibly billing) sandboxes.
	signal.Ignore(syscall.SIGPIPE)

	opts := lsp.Options{
		Version:  version,
		Logger:   logger,
		Redactor: redactor,
		Trace:    g.rpcTrace,
	}
	if g.listen != "" {
		if err := listen(ctx, g.listen, opts, logger); err != nil {
			if g.logFile != "" {
				logger.Error("Listener failed", "err", err)
			}
			fmt.Fprintf(stderr, "opencode-lsp: %v\n", err)
			return 1
		}
		return 0
	}
	logger.Info("Serving on stdio", "version", version, "pid", os.Getpid())
	code, err := lsp.Serve(ctx, stdio{pollableStdin(stdin), stdout}, opts)
	if err != nil {
		logger.Info("Session ended", "err", err)
	}
	logger.Info("Exiting", "code", code)
	return code
}

// newLogger builds the redacting logger the flags ask for.
func newLogger(g globalFlags, stderr io.Writer, redactor *redact.Redactor) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", g.logLevel)
	}
	w, closer := stderr, func() {}
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		w, closer = f, func() { f.Close() }
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(redactor.Handler(h)), closer, nil
}

// listen serves every connection on addr ("tcp:HOST:PORT" or "unix:PATH")
// as its own LSP session until ctx is cancelled.
func listen(ctx context.Context, addr string, opts lsp.Options, logger *slog.Logger) error {
	network, address, ok := strings.Cut(addr, ":")
	if !ok || (network != "tcp" && network != "unix") || address == "" {
		return fmt.Errorf("--listen %q: want tcp:HOST:PORT or unix:PATH", addr)
	}
	// Whoever connects can run commands and spend the configured keys: only
	// this user (a unix socket made 0600) or this machine (loopback TCP).
	if network == "tcp" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("--listen %q: only a loopback address (127.0.0.1, ::1, localhost) is allowed, since every client may run commands; use unix:PATH to allow only your user", addr)
		}
	}
	if network == "unix" {
		// A stale socket from a crash is replaced; any other file is not ours.
		if st, err := os.Lstat(address); err == nil {
			if st.Mode()&os.ModeSocket == 0 {
				return fmt.Errorf("--listen %q: the path exists and is not a socket", addr)
			}
			_ = os.Remove(address)
		}
	}
	old := syscall.Umask(0o077)
	ln, err := net.Listen(network, address)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			ln.Close()
			return fmt.Errorf("--listen: %w", err)
		}
	}
	logger.Info("Listening", "network", network, "address", ln.Addr().String(), "version", version)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := logger.With("conn", c.RemoteAddr().String())
			log.Info("Session started")
			o := opts
			o.Logger = log
			code, err := lsp.Serve(ctx, c, o)
			log.Info("Session ended", "code", code, "err", err)
		}()
	}
}

// stdio is the LSP connection on the process's standard streams.
type stdio struct {
	in  io.Reader
	out io.Writer
}

func (s stdio) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdio) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s stdio) Close() error {
	if c, ok := s.in.(io.Closer); ok {
		c.Close()
	}
	return nil
}
