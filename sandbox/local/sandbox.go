package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Sandbox is one open local sandbox. It is safe for concurrent use.
type Sandbox struct {
	p    *Provider
	id   string
	dir  string // the sandbox directory
	root string // the working copy, dir/work
	wc   *os.Root
	lock *os.File

	mu      sync.Mutex
	spec    sandbox.Spec
	closed  bool
	closeCh chan struct{}
	running map[*run]struct{}
	wg      sync.WaitGroup

	syncMu sync.Mutex // serializes Sync and Manifest, guards st
	st     *syncState
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

func openSandbox(p *Provider, id string, spec sandbox.Spec) (*Sandbox, error) {
	dir := filepath.Join(p.opts.StateDir, id)
	s := &Sandbox{p: p, id: id, dir: dir, root: filepath.Join(dir, "work"), spec: spec,
		closeCh: make(chan struct{}), running: map[*run]struct{}{}}
	for _, d := range []string{s.root, s.path("home"), s.path("cache"), s.path("tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("local sandbox %s: open: %w", id, err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("local sandbox %s: open: %w", id, err)
	}
	s.lock = lock
	if s.wc, err = os.OpenRoot(s.root); err != nil {
		lock.Close()
		return nil, fmt.Errorf("local sandbox %s: open: %w", id, err)
	}
	s.st = loadState(s.path("sync.state"))
	return s, nil
}

// reuse refreshes an open sandbox for a new Open of the same key; false when
// it was closed meanwhile.
func (s *Sandbox) reuse(spec sandbox.Spec) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.spec.Env = spec.Env
	if spec.WorkspaceRoot != "" {
		s.spec.WorkspaceRoot = spec.WorkspaceRoot
	}
	return true
}

func (s *Sandbox) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Sandbox) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ID returns the sandbox's directory name under the state dir.
func (s *Sandbox) ID() string { return s.id }

// Root returns the absolute path of the working copy; commands see it at the
// same path.
func (s *Sandbox) Root() string { return s.root }

// Dir returns the sandbox directory (working copy, private HOME, caches).
func (s *Sandbox) Dir() string { return s.dir }

func (s *Sandbox) errorf(op string, err error) error {
	return fmt.Errorf("local sandbox %s: %s: %w", s.id, op, err)
}

// relPath checks a workspace-relative slash path and returns it cleaned
// ("." for the root). Absolute paths and paths leaving the root are refused
// with sandbox.ErrPathEscape.
func relPath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path %q contains NUL", p)
	}
	if p == "" {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is absolute: %w", p, sandbox.ErrPathEscape)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: %w", p, sandbox.ErrPathEscape)
	}
	return c, nil
}

// rootErr turns an os.Root error into one that wraps sandbox.ErrPathEscape
// when the path left the working copy through a symlink.
func rootErr(p string, err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "path escapes from parent" {
			return fmt.Errorf("%q: %w", p, sandbox.ErrPathEscape)
		}
	}
	return err
}

// enter registers an operation that Close must wait for; it fails with
// sandbox.ErrClosed once the sandbox is closed. Every successful enter is
// paired with s.wg.Done.
func (s *Sandbox) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sandbox.ErrClosed
	}
	s.wg.Add(1)
	return nil
}

// ReadFile returns the content of a workspace-relative file of the working
// copy. Errors wrap sandbox.ErrNotFound, sandbox.ErrPathEscape or
// sandbox.ErrClosed.
func (s *Sandbox) ReadFile(ctx context.Context, name string) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, s.errorf("read file", err)
	}
	defer s.wg.Done()
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("read file", err)
	}
	rel, err := relPath(name)
	if err != nil {
		return nil, s.errorf("read file", err)
	}
	b, err := s.wc.ReadFile(rel)
	if err != nil {
		return nil, s.errorf("read file", rootErr(name, err))
	}
	return b, nil
}

// WriteFile writes a workspace-relative file of the working copy, creating
// parent directories; mode 0 means 0644. Errors wrap sandbox.ErrPathEscape or
// sandbox.ErrClosed.
func (s *Sandbox) WriteFile(ctx context.Context, name string, data []byte, mode fs.FileMode) error {
	if err := s.enter(); err != nil {
		return s.errorf("write file", err)
	}
	defer s.wg.Done()
	if err := ctx.Err(); err != nil {
		return s.errorf("write file", err)
	}
	rel, err := relPath(name)
	if err != nil {
		return s.errorf("write file", err)
	}
	if rel == "." {
		return s.errorf("write file", fmt.Errorf("%q is the working copy's root", name))
	}
	if mode == 0 {
		mode = 0o644
	}
	if dir := path.Dir(rel); dir != "." {
		if err := s.wc.MkdirAll(dir, 0o755); err != nil {
			return s.errorf("write file", rootErr(name, err))
		}
	}
	if err := s.wc.WriteFile(rel, data, mode.Perm()); err != nil {
		return s.errorf("write file", rootErr(name, err))
	}
	return nil
}

// PreviewURL returns http://127.0.0.1:<port>. A command's port is reachable
// from the host only when the command shares the host's network: with
// bubblewrap that means it runs with network ([sandbox.Cmd.Network] or
// [Options.Network]), so PreviewURL fails when no such command is running.
func (s *Sandbox) PreviewURL(ctx context.Context, port int) (sandbox.Preview, error) {
	if err := s.enter(); err != nil {
		return sandbox.Preview{}, s.errorf("preview url", err)
	}
	defer s.wg.Done()
	if port < 1 || port > 65535 {
		return sandbox.Preview{}, s.errorf("preview url", fmt.Errorf("port %d out of range", port))
	}
	if s.p.status.Isolated {
		s.mu.Lock()
		reachable := false
		for r := range s.running {
			if r.network {
				reachable = true
			}
		}
		s.mu.Unlock()
		if !reachable {
			return sandbox.Preview{}, s.errorf("preview url", fmt.Errorf(
				"port %d is not reachable from the host: no command with network is running (commands without network have their own network namespace)", port))
		}
	}
	return sandbox.Preview{URL: "http://127.0.0.1:" + strconv.Itoa(port)}, nil
}

// Close kills every running command and waits for them; the working copy
// stays on disk for the next Open ([Provider.Remove] deletes it). Close is
// idempotent.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closeCh)
	s.mu.Unlock()
	s.wg.Wait()
	s.wc.Close()
	s.lock.Close()
	s.p.closed(s)
	return nil
}
