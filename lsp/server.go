// Package lsp is opencode-lsp's language server: the JSON-RPC handler chain,
// the LSP lifecycle, text synchronisation, code actions, the editor
// contract's commands (workspace/executeCommand), progress, diagnostics and
// the server→client requests (workspace/applyEdit, window/showDocument,
// window/showMessageRequest).
//
// The package is thin: it translates between the protocol and the domain
// packages (agent, sandbox), which never import it. Call [Serve] with a
// connection (stdio, a socket, or a pipe in tests).
package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/agent/opencode"
	"github.com/opencode-lsp/opencode-lsp/lsp/position"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
	"github.com/opencode-lsp/opencode-lsp/lsp/redact"
)

// Options configure a server.
type Options struct {
	// Version is reported in serverInfo.
	Version string
	// Logger receives the server's log; it must not write to the protocol
	// stream. It is wrapped with Redactor. Nil discards logs.
	Logger *slog.Logger
	// Redactor masks secrets in logs and traces; nil creates one.
	Redactor *redact.Redactor
	// Trace logs every message read and written (--rpc-trace), redacted.
	Trace bool
	// MaxMessageSize bounds one incoming message (default 128 MiB).
	MaxMessageSize int64
	// Getenv looks up environment variables (secrets' fallback, endpoint
	// overrides); nil means os.Getenv.
	Getenv func(string) string
	// Settings are applied before initializationOptions (tests, the CLI).
	Settings json.RawMessage
	// Providers builds sandbox providers; nil means [DefaultProviders].
	Providers ProviderFactory
}

// serverState is the LSP lifecycle state.
type serverState int32

const (
	stateUninitialized serverState = iota
	stateInitializing              // initialize answered, initialized not yet received
	stateInitialized
	stateShutdown
)

func (s serverState) String() string {
	return [...]string{"uninitialized", "initializing", "initialized", "shutdown"}[s]
}

// Server is one client/server session (one connection). Create it with
// [Serve]; its exported methods are for tests and the in-process CLI.
type Server struct {
	opts     Options
	log      *slog.Logger
	redactor *redact.Redactor
	conn     jsonrpc2.Conn
	getenv   func(string) string

	state    atomic.Int32 // serverState
	exitCode atomic.Int32 // set by exit; -1 until then
	exited   chan struct{}
	exitOnce sync.Once

	// inflight maps request ids ("#5", "\"abc\"") to their cancel funcs.
	inflightMu sync.Mutex
	inflight   map[string]context.CancelFunc
	// requests counts handlers running off the read loop.
	requests sync.WaitGroup

	// Negotiated at initialize; read-only afterwards.
	caps       protocolx.ClientCapabilities
	encoding   position.Encoding
	clientName string

	// rootsMu guards roots, the absolute workspace folder paths (changed by
	// workspace/didChangeWorkspaceFolders).
	rootsMu sync.RWMutex
	roots   []string

	// configReady is closed once the settings the client holds are known
	// (its first workspace/configuration answer, or at once when it has
	// none), so that commands sent right after initialized use them.
	configReady chan struct{}
	configOnce  sync.Once

	// settingsMu guards settings (replaced wholesale on every change) and
	// baseSettings: the defaults, Options.Settings and initializationOptions,
	// on which every workspace/configuration answer or push is applied (so a
	// key the editor drops, or sets to null, returns to its default).
	settingsMu   sync.RWMutex
	settings     Settings
	baseSettings Settings
	// pullSeq numbers workspace/configuration requests; only the newest
	// answer is applied.
	pullSeq atomic.Int64

	docs      documents
	sandboxes *sandboxPool
	agents    *opencode.Pool // one OpenCode server per sandbox
	diags     *diagnosticSet
	progress  *progressTracker
	runs      *runRegistry
	threads   *threadStore

	// ctx lives as long as the connection; cancelled at shutdown/exit.
	ctx    context.Context
	cancel context.CancelFunc
}

// Serve runs a server on rwc until the client sends exit, the connection
// closes or ctx is cancelled. It returns the process exit code LSP asks for:
// 0 after shutdown then exit, 1 otherwise.
func Serve(ctx context.Context, rwc io.ReadWriteCloser, opts Options) (int, error) {
	s := newServer(opts)
	s.start(ctx, rwc)
	return s.wait(ctx)
}

func newServer(opts Options) *Server {
	if opts.Redactor == nil {
		opts.Redactor = &redact.Redactor{}
	}
	if opts.Getenv == nil {
		opts.Getenv = osGetenv
	}
	base := opts.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:         opts,
		redactor:     opts.Redactor,
		log:          slog.New(opts.Redactor.Handler(base.Handler())),
		getenv:       opts.Getenv,
		exited:       make(chan struct{}),
		configReady:  make(chan struct{}),
		inflight:     map[string]context.CancelFunc{},
		encoding:     position.UTF16,
		settings:     DefaultSettings(),
		baseSettings: DefaultSettings(),
		runs:         newRunRegistry(),
		threads:      newThreadStore(),
	}
	s.exitCode.Store(-1)
	s.docs.m = map[protocol.DocumentURI]*document{}
	s.diags = newDiagnosticSet(s)
	s.sandboxes = newSandboxPool(s)
	s.agents = opencode.NewPool()
	s.progress = newProgressTracker(s)
	if len(opts.Settings) > 0 {
		st, problems := ParseSettings(s.settings, opts.Settings)
		s.settings = st
		s.baseSettings = st
		for _, p := range problems {
			s.log.Warn("Ignoring setting", "key", p.Key, "reason", p.Reason)
		}
	}
	s.refreshSecrets(s.settings)
	return s
}

func (s *Server) start(ctx context.Context, rwc io.ReadWriteCloser) {
	s.ctx, s.cancel = context.WithCancel(ctx)
	var trace func(string, []byte)
	if s.opts.Trace {
		trace = func(dir string, body []byte) {
			s.log.Info("RPC "+dir, "message", string(body))
		}
	}
	s.conn = jsonrpc2.NewConn(newStream(rwc, s.opts.MaxMessageSize, trace))
	s.conn.Go(s.ctx, s.handler())
}

func (s *Server) wait(ctx context.Context) (int, error) {
	var err error
	select {
	case <-s.exited:
	case <-s.conn.Done():
		if cerr := s.conn.Err(); cerr != nil && !errors.Is(cerr, io.EOF) && !isClosedErr(cerr) {
			err = cerr
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.shutdownWork("connection ended")
	s.conn.Close()
	<-s.conn.Done()
	// Give handlers a moment to see the cancelled context and return.
	done := make(chan struct{})
	go func() { s.requests.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("Handlers still running at exit")
	}
	if code := s.exitCode.Load(); code >= 0 {
		return int(code), err
	}
	if s.State() == stateShutdown {
		return 0, err
	}
	return 1, err
}

// State returns the lifecycle state.
func (s *Server) State() serverState { return serverState(s.state.Load()) }

// Settings returns the current settings.
func (s *Server) Settings() Settings {
	s.settingsMu.RLock()
	defer s.settingsMu.RUnlock()
	return s.settings
}

// shutdownWork cancels every run and releases sandboxes. It is idempotent.
func (s *Server) shutdownWork(reason string) {
	s.releaseAll(reason)
	if s.cancel != nil {
		s.cancel()
	}
}

// releaseAll cancels every run and closes every sandbox (a cloud sandbox must
// never be left running and billing). It is idempotent.
func (s *Server) releaseAll(reason string) {
	s.runs.cancelAll()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.sandboxes.closeAll(cctx); err != nil {
		s.log.Warn("Releasing sandboxes failed", "reason", reason, "err", err)
	}
}

// notify sends a notification to the client.
func (s *Server) notify(ctx context.Context, method string, params any) {
	if err := s.conn.Notify(context.WithoutCancel(ctx), method, params); err != nil {
		s.log.Debug("Notify failed", "method", method, "err", err)
	}
}

// call sends a request to the client and waits for its reply, at most
// timeout. A client that never answers (Vim + ALE) makes call fail with a
// clear error after timeout instead of hanging the run.
func (s *Server) call(ctx context.Context, method string, params, result any, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// jsonrpc2 never fails a pending call when the connection ends: the
	// session's end does (even for a ctx detached from its run).
	if s.ctx != nil {
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
	}
	_, err := s.conn.Call(cctx, method, params, result)
	if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%s: the editor did not answer within %s", method, timeout)
	}
	return err
}

// refreshSecrets registers every secret in use with the redactor.
func (s *Server) refreshSecrets(st Settings) {
	s.redactor.Add(st.Secrets()...)
	for _, env := range []string{"OPENROUTER_API_KEY", "E2B_API_KEY", "DAYTONA_API_KEY"} {
		s.redactor.Add(s.getenv(env))
	}
}

func isClosedErr(err error) bool {
	return err != nil && (errors.Is(err, io.ErrClosedPipe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		containsAny(err.Error(), "use of closed", "file already closed", "closed pipe", "EOF"))
}
