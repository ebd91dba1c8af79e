// Package opencode drives the real OpenCode coding agent (npm package
// opencode-ai, tested with [TestedVersion]) inside a sandbox: it starts and
// supervises `opencode serve` in the sandbox's working copy ([Start],
// [Pool]), runs one session per request over OpenCode's HTTP API and its
// /event SSE stream ([Server.Run]), and reports what the agent did: text,
// progress, permission requests, the commands it ran and the files its tools
// touched. The files themselves are harvested from the working copy by
// package changeset; this package never writes to the user's workspace.
//
// The wire protocol is the one described in shared/specs/opencode-server.md
// (V1 routes: /session, /session/{id}/prompt_async, /event, /permission,
// /session/{id}/abort); the offline set-up (private HOME, OPENCODE_DISABLE_*
// switches, pre-seeded config dir, an OpenAI-compatible provider given
// through OPENCODE_CONFIG_CONTENT) follows shared/specs/opencode-offline.md.
//
// The OpenRouter key goes into the sandbox only as a 0600 file in OpenCode's
// private HOME (read through the config's {file:~/…} substitution), not into
// the environment the agent's commands inherit; every text this package
// returns or logs has the key and the server password replaced by
// "[REDACTED]".
//
// This package never imports the LSP layer: the LSP layer implements
// [Handler].
package opencode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// TestedVersion is the opencode-ai release this driver is tested with (the
// one pinned in test/tools/package.json). Another version is used as is,
// with a warning in the log.
const TestedVersion = "1.18.33"

// Defaults of [Config].
const (
	DefaultBaseURL        = "https://openrouter.ai/api/v1"
	DefaultStartTimeout   = 90 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultAbortTimeout   = 15 * time.Second
	DefaultContextLimit   = 128000
	DefaultOutputLimit    = 8192
	// DefaultServerLifetime bounds how long one `opencode serve` may run
	// (the sandbox's command timeout); a [Pool] starts a new one after it.
	DefaultServerLifetime = 24 * time.Hour
	// ProviderID is the provider id the model is configured under.
	ProviderID = "openrouter"
	// InstallHint says how to get the binary.
	InstallHint = "install it with `npm install -g opencode-ai@" + TestedVersion + "` or set the opencode binary setting to its path"
)

// Action is a permission policy for one kind of tool: "ask" (the default,
// the [Handler] decides), "allow" or "deny". They are OpenCode's own
// permission values.
type Action string

// The permission policies.
const (
	Ask   Action = "ask"
	Allow Action = "allow"
	Deny  Action = "deny"
)

func (a Action) valid() bool { return a == "" || a == Ask || a == Allow || a == Deny }

func (a Action) or(def Action) Action {
	if a == "" {
		return def
	}
	return a
}

// Policy says how OpenCode's permission requests are answered, per kind.
// The zero value asks for everything.
type Policy struct {
	// Edit covers the file tools (write, edit, patch).
	Edit Action
	// Bash covers shell commands.
	Bash Action
	// WebFetch covers fetching URLs.
	WebFetch Action
	// Other covers every other kind OpenCode asks about (doom_loop, task,
	// ...). Paths outside the working copy (OpenCode's
	// "external_directory") are always denied.
	Other Action
}

func (p Policy) forKind(kind string) Action {
	switch kind {
	case "edit", "write", "patch":
		return p.Edit.or(Ask)
	case "bash":
		return p.Bash.or(Ask)
	case "webfetch":
		return p.WebFetch.or(Ask)
	case "external_directory":
		return Deny
	}
	return p.Other.or(Ask)
}

// Config configures the OpenCode server of one sandbox.
type Config struct {
	// Binary is the opencode executable as the sandbox sees it (the
	// "opencode.binary" setting). Empty: "opencode" looked up in the
	// daemon's PATH, then in the sandbox's. A missing binary gives
	// [ErrNotInstalled].
	Binary string
	// BaseURL is the OpenAI-compatible API base OpenCode's provider calls
	// (OPENROUTER_BASE_URL or the setting; default [DefaultBaseURL]). It
	// must be reachable from inside the sandbox.
	BaseURL string
	// APIKey is the OpenRouter key; required ([ErrNoAPIKey]).
	APIKey string
	// Model is the OpenRouter model id, for example
	// "anthropic/claude-sonnet-4"; required.
	Model string
	// ContextLimit and OutputLimit are the model's limits in tokens as
	// OpenCode is told them (defaults [DefaultContextLimit],
	// [DefaultOutputLimit]).
	ContextLimit, OutputLimit int
	// Permissions is the permission policy.
	Permissions Policy
	// Hostname is the address OpenCode listens on inside the sandbox:
	// default "127.0.0.1", right for the local sandbox. Cloud sandboxes
	// (E2B, Daytona) reach a port through their preview proxy, which needs
	// "0.0.0.0"; the server's random password still guards it.
	Hostname string
	// StartTimeout bounds Start: spawn, "listening" line, health check and
	// the project's first load (default [DefaultStartTimeout]; the first
	// start in a fresh HOME takes several seconds).
	StartTimeout time.Duration
	// RequestTimeout bounds every HTTP request but the event stream (default
	// [DefaultRequestTimeout]).
	RequestTimeout time.Duration
	// AbortTimeout bounds how long a cancelled run waits for OpenCode to go
	// idle after the abort (default [DefaultAbortTimeout]).
	AbortTimeout time.Duration
	// ServerLifetime is the sandbox command timeout of the server (default
	// [DefaultServerLifetime]).
	ServerLifetime time.Duration
	// Transport, when set, carries every HTTP request to the server (tests
	// use it to cut the event stream; a proxy could too). nil uses a
	// private http.Transport.
	Transport http.RoundTripper
	// Logger receives the driver's log lines (never a secret); nil discards
	// them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Hostname == "" {
		c.Hostname = "127.0.0.1"
	}
	if c.ContextLimit <= 0 {
		c.ContextLimit = DefaultContextLimit
	}
	if c.OutputLimit <= 0 {
		c.OutputLimit = DefaultOutputLimit
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.AbortTimeout <= 0 {
		c.AbortTimeout = DefaultAbortTimeout
	}
	if c.ServerLifetime <= 0 {
		c.ServerLifetime = DefaultServerLifetime
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.APIKey == "":
		return ErrNoAPIKey
	case c.Model == "":
		return errors.New("opencode: no model configured")
	}
	for _, a := range []Action{c.Permissions.Edit, c.Permissions.Bash, c.Permissions.WebFetch, c.Permissions.Other} {
		if !a.valid() {
			return fmt.Errorf("opencode: permission policy %q is not ask, allow or deny", string(a))
		}
	}
	return nil
}

// Errors of this package (wrapped with details).
var (
	// ErrNotInstalled: the opencode binary was not found.
	ErrNotInstalled = errors.New("opencode is not installed")
	// ErrNoAPIKey: Config.APIKey is empty.
	ErrNoAPIKey = errors.New("opencode: no OpenRouter API key (set OPENROUTER_API_KEY or the opencode.openrouter.apiKey setting)")
	// ErrServerExited: the server process ended.
	ErrServerExited = errors.New("opencode server exited")
	// ErrClosed: the server was closed.
	ErrClosed = errors.New("opencode server closed")
)

// Reply answers a permission request: OpenCode's "once", "always" or
// "reject".
type Reply string

// The permission replies.
const (
	ReplyOnce   Reply = "once"
	ReplyAlways Reply = "always"
	ReplyReject Reply = "reject"
)

// PermissionRequest is OpenCode's permission.asked event, made readable.
type PermissionRequest struct {
	// ID is OpenCode's request id ("per_…").
	ID        string
	SessionID string
	// Kind is OpenCode's permission name: "edit", "bash", "webfetch", ...
	Kind string
	// Title is a one-line summary for a prompt: "Edit index.html",
	// "Run: npm install".
	Title string
	// Patterns are what the request covers (file names, commands); Always
	// the patterns an "always" reply would allow from now on.
	Patterns, Always []string
	// Path is the workspace-relative file of an edit ("" otherwise).
	Path string
	// Command is the command line of a bash request.
	Command string
	// Diff is the unified diff of an edit, when OpenCode sends one.
	Diff string
}

// Handler receives a run's progress. Progress and TextDelta are called from
// one goroutine, in order; Permission may be called from other goroutines,
// concurrently with them.
type Handler interface {
	// Progress reports a step or tool event ("Writing index.html").
	Progress(msg string)
	// TextDelta is the next chunk of the agent's answer; the chunks
	// concatenated equal RunResult.Text unless the event stream dropped in
	// the middle of a text part (the result is authoritative).
	TextDelta(delta string)
	// Permission asks the user; ctx ends when the run ends or OpenCode
	// withdraws the request. An error counts as a rejection.
	Permission(ctx context.Context, req PermissionRequest) (Reply, error)
}

// Task is one request to the agent.
type Task struct {
	// Prompt is the user's request.
	Prompt string
	// Context is editor context (selection, file, diagnostics), sent as a
	// second text part; may be empty.
	Context string
	// Title names the session; default from the prompt's first line.
	Title string
	// Agent is OpenCode's agent ("build", the default, or "plan").
	Agent string
}

// Command is one shell command the agent ran.
type Command struct {
	Command string `json:"command"`
	// ExitCode is nil when the command did not finish (aborted, rejected,
	// timed out).
	ExitCode *int `json:"exitCode"`
	// OutputTail is the end of its output (at most [OutputTailLines] lines
	// and [OutputTailBytes] bytes), or the tool's error.
	OutputTail string `json:"outputTail"`
}

// Limits of [Command.OutputTail].
const (
	OutputTailLines = 40
	OutputTailBytes = 4 << 10
)

// Tokens are the model tokens a run used.
type Tokens struct {
	Input, Output, Reasoning, CacheRead, CacheWrite int
}

// RunResult is what a run produced besides file changes.
type RunResult struct {
	SessionID string
	// Text is the agent's answer: the text parts of its messages, in
	// order, separated by blank lines.
	Text string
	// Commands are the shell commands run, in order.
	Commands []Command
	// ToolFiles are the workspace-relative files that write/edit tools and
	// patch parts reported (absolute when outside the working copy), in
	// first-seen order: a cross-check for the harvest.
	ToolFiles []string
	// Cost is OpenCode's cost estimate in USD (0 when the model's prices
	// are unknown to it).
	Cost   float64
	Tokens Tokens
	// Steps counts the agent's model calls.
	Steps int
}

// AgentError is an error the agent's turn ended with (OpenCode's message
// error: ProviderAuthError, APIError, MessageAbortedError, ...). Run returns
// it together with the result.
type AgentError struct {
	Name    string
	Message string
}

func (e *AgentError) Error() string {
	if e.Message == "" {
		return "opencode: " + e.Name
	}
	return "opencode: " + e.Name + ": " + e.Message
}

// APIError is a non-2xx answer of the OpenCode server.
type APIError struct {
	Method, Path string
	Status       int
	// Name is OpenCode's error name (NotFoundError, BadRequest, ...), if any.
	Name    string
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if e.Name != "" {
		msg = e.Name + ": " + msg
	}
	return fmt.Sprintf("opencode: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, msg)
}

// NoisePaths are files OpenCode writes for itself in every repository it
// opens (a project id in .git/opencode); pass them as
// changeset.Limits.Ignore so they are not reported.
var NoisePaths = []string{".git/opencode"}
