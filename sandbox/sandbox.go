// Package sandbox defines where opencode-lsp runs commands and agents: a
// [Provider] opens a [Sandbox] that holds a private working copy of one
// workspace. The embedded default is the local provider (package
// sandbox/local); E2B and Daytona (packages sandbox/e2b and sandbox/daytona)
// implement the same interfaces against their cloud APIs.
//
// Every provider must pass the conformance suite in package
// sandbox/sandboxtest. Paths given to a Sandbox are workspace-relative and
// slash-separated unless a doc comment says otherwise; a path that escapes the
// working copy ("..", absolute, through a symlink) is refused with
// [ErrPathEscape].
//
// This package never imports the LSP layer.
package sandbox

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

// Provider opens sandboxes of one kind ("local", "e2b", "daytona").
type Provider interface {
	// Name is the provider's name as used in settings and in the editor
	// contract's `sandbox` argument: "local", "e2b" or "daytona".
	Name() string
	// Open creates (or reuses, when the provider keeps one per Spec.Key) a
	// sandbox for the workspace described by spec. The returned Sandbox is
	// empty until [Sandbox.Sync] is called.
	Open(ctx context.Context, spec Spec) (Sandbox, error)
}

// Spec describes the sandbox a workspace wants.
type Spec struct {
	// Key identifies the workspace (for example a hash of its root path); a
	// provider uses it to name the working copy and to tag cloud sandboxes.
	Key string
	// WorkspaceRoot is the absolute host path of the user's workspace. It is
	// the source of [Sandbox.Sync]; nothing in it is ever written by a
	// sandbox.
	WorkspaceRoot string
	// Env holds variables every command in the sandbox gets on top of the
	// provider's minimal environment (E2B envVars, for example). It never
	// contains opencode-lsp's own API keys unless a caller passes one on
	// purpose (OpenCode needs the model key).
	Env map[string]string
	// Labels are metadata tags for cloud sandboxes (E2B metadata, Daytona
	// labels); the daemon uses them to find its own orphans.
	Labels map[string]string
	// Timeout is how long a cloud sandbox may live without a keep-alive; 0
	// means the provider's default.
	Timeout time.Duration
}

// Sandbox is one open sandbox: a working copy of one workspace plus a way to
// run commands in it. Methods are safe for concurrent use.
type Sandbox interface {
	// ID is the provider's identifier (a directory name for local, the
	// sandbox id for E2B and Daytona).
	ID() string
	// Root is the absolute path of the working copy inside the sandbox, as
	// the tools running there print it (used to map paths in their output
	// back to the workspace).
	Root() string

	// Sync brings the working copy up to date with src: files whose content
	// changed since the last sync are written, files that disappeared from
	// src (and were put there by an earlier sync) are removed, and nothing
	// else moves. It returns the manifest of the synced state, which
	// [Sandbox.Manifest] is later compared against to harvest changes.
	Sync(ctx context.Context, src Source) (Manifest, SyncStats, error)

	// Manifest lists the regular files now in the working copy (excluding
	// src.Excludes of the last Sync) with their content hashes.
	Manifest(ctx context.Context) (Manifest, error)

	// Exec runs one command in the working copy and waits for it. Output is
	// streamed to c.Stdout and c.Stderr as it arrives. A non-zero exit is not
	// an error: it is reported in ExitStatus. The error is non-nil only when
	// the command could not be run or awaited (bad Dir, sandbox gone, ctx
	// cancelled: then ExitStatus.Canceled is set as well and the whole
	// process tree has been killed).
	Exec(ctx context.Context, c Cmd) (ExitStatus, error)

	// ReadFile returns the content of a workspace-relative file in the
	// working copy.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile writes a workspace-relative file in the working copy,
	// creating parent directories.
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error

	// PreviewURL returns the URL at which a server listening on port inside
	// the sandbox can be reached from the editor's machine, plus any headers
	// the request needs (Daytona's preview token).
	PreviewURL(ctx context.Context, port int) (Preview, error)

	// Close stops everything running in the sandbox and releases it (a cloud
	// sandbox is killed). Close is idempotent.
	Close(ctx context.Context) error
}

// Source is the state of the user's workspace to sync into a sandbox: the
// files on disk under Root, overridden by the editor's unsaved buffers.
type Source struct {
	// Root is the absolute host path of the workspace.
	Root string
	// Overlays maps workspace-relative slash paths to the text of unsaved
	// editor buffers; they win over the file on disk.
	Overlays map[string][]byte
	// Excludes are gitignore-style patterns (relative to Root) of paths never
	// synced; ".git" is excluded unless IncludeGit is set.
	Excludes []string
	// IncludeGit syncs the repository's .git directory too (the agent's
	// working copy includes it; plain runs do not need it).
	IncludeGit bool
}

// Manifest maps workspace-relative slash paths of regular files to their state.
type Manifest map[string]FileState

// FileState is what a sync or manifest knows about one file.
type FileState struct {
	Size int64
	Mode fs.FileMode
	// Hash is the lowercase hex SHA-256 of the content.
	Hash string
}

// SyncStats tells what a sync moved.
type SyncStats struct {
	Files   int   // files in the synced state
	Written int   // files written (new or changed)
	Removed int   // files removed
	Bytes   int64 // bytes written
	Elapsed time.Duration
	// Skipped counts source entries not synced although not excluded:
	// symlinks pointing outside the workspace, sockets, devices, fifos and
	// unreadable files.
	Skipped int
}

// Cmd is one command to run in a sandbox.
type Cmd struct {
	// Args is the program and its arguments. When Shell is set, Args must be
	// empty and Shell is run by `/bin/sh -c`.
	Args  []string
	Shell string
	// Dir is the workspace-relative directory to run in ("" = the root).
	Dir string
	// Env is added to the provider's minimal environment (PATH, HOME, LANG,
	// TERM=dumb, ...), never the daemon's own environment.
	Env map[string]string
	// Timeout kills the process tree after this long; 0 means the provider's
	// default (10 minutes).
	Timeout time.Duration
	// Stdout and Stderr receive output as it arrives; nil discards it.
	Stdout, Stderr io.Writer
	// OutputLimit caps the bytes delivered to Stdout and Stderr together,
	// keeping memory bounded however much a command prints: the first half of
	// the limit is streamed as it arrives, then only the most recent half is
	// kept (in a ring buffer) and delivered when the command ends, after a
	// line "[... N bytes of output dropped ...]". The command keeps running;
	// ExitStatus.DroppedBytes counts what was dropped. 0 means the provider's
	// default (16 MiB).
	OutputLimit int64
	// Network allows the command to reach the network. Off by default where
	// the provider can enforce it (local with bubblewrap).
	Network bool
	// OnListen, when set, is called once per TCP port that a process of the
	// command starts listening on while it runs (from another goroutine), so
	// the caller can offer a preview URL. Providers that cannot observe
	// sockets call it for ports announced in the output instead.
	OnListen func(port int)
}

// ExitStatus is how a command ended.
type ExitStatus struct {
	// Code is the exit code; -1 when the process was killed by a signal.
	Code int
	// Signal names the signal that killed it ("killed", "terminated"), or "".
	Signal string
	// TimedOut is set when Cmd.Timeout expired and the tree was killed.
	TimedOut bool
	// Canceled is set when the context was cancelled and the tree was killed.
	Canceled bool
	// DroppedBytes counts output beyond Cmd.OutputLimit.
	DroppedBytes int64
	Duration     time.Duration
}

// Preview is how to reach a port of the sandbox.
type Preview struct {
	URL     string
	Headers map[string]string
}

// Errors shared by providers; wrap them with the operation and sandbox.
var (
	// ErrPathEscape: a path leaves the working copy.
	ErrPathEscape = errors.New("path escapes the sandbox working copy")
	// ErrClosed: the sandbox was closed or died.
	ErrClosed = errors.New("sandbox is closed")
	// ErrNotFound: a file does not exist in the working copy.
	ErrNotFound = fs.ErrNotExist
)
