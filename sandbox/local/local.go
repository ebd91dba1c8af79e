// Package local is the embedded default sandbox provider: it needs no
// account and runs commands on this machine.
//
// Each workspace (one [sandbox.Spec.Key]) gets a directory under the state
// dir (default os.UserCacheDir()/opencode-lsp/sandboxes/<id>) holding:
//
//	work/       the private working copy, synced incrementally from the workspace
//	home/       the private HOME of commands
//	cache/      writable tool caches (GOCACHE, a Go module cache and CARGO_HOME
//	            for networked commands, npm's cache)
//	tmp/        TMPDIR when commands run without bubblewrap
//	sync.state  what the last sync wrote, so a daemon restart does not re-copy
//	lock        flock(2)-held while a Provider has the sandbox open
//
// # Isolation
//
// When bubblewrap (bwrap, Debian package "bubblewrap") is installed and
// actually works here (user namespaces may be restricted; [New] runs a
// trivial command to find out), every command runs inside it: the host file
// system read-only, with the user's HOME, the real workspace, the state dir
// (other workspaces' copies) and /tmp hidden behind empty tmpfs mounts; the
// working copy, the private HOME and the cache dir bound read-write at their
// own paths; toolchain directories under HOME (PATH entries, the Go module
// cache, ~/.rustup, ~/.cargo/{bin,registry,git}, ~/.pyenv, ~/.nvm and
// [Options.ReadOnlyBinds]) bound back read-only; fresh /proc, /dev and
// /dev/shm; new pid, ipc, uts and (unless the command has network) network
// namespaces; --die-with-parent and --new-session. Without bwrap commands
// still run, with everything below except the file-system and network
// confinement, and [Provider.Status] says why ("doctor" and
// opencode.status show it); the first time, the logger says so once.
//
// # Toolchains offline
//
// Commands get a private, writable GOCACHE. Without network (bwrap only),
// GOMODCACHE is the host's module cache (read-only) with GOPROXY=off,
// CARGO_HOME is the host's (registry and git checkouts read-only) with
// CARGO_NET_OFFLINE=true, and npm runs with npm_config_offline=true against a
// private cache, so builds whose dependencies are already on this machine
// work offline. With network, GOMODCACHE and CARGO_HOME are private writable
// directories under cache/, and GOPROXY lists the host's module cache
// (file://) before the public proxy, so cached modules are not downloaded
// again. Without bwrap, the host's module cache and CARGO_HOME are used as
// they are.
//
// # Commands
//
// Every command runs in its own process group with a minimal environment
// (PATH, HOME, USER, LOGNAME, LANG, LC_ALL, TERM=dumb, TMPDIR, NO_COLOR,
// PYTHONUNBUFFERED and no-pager hints, the toolchain variables above, then
// [sandbox.Spec.Env] and [sandbox.Cmd.Env]); nothing of the daemon's own
// environment (API keys) reaches it. Output is read from pipes as it
// arrives and capped with [sandbox.HeadTail]. On cancel, timeout or Close the
// whole tree gets SIGTERM, then SIGKILL after [Options.KillGrace]; when the
// command's main process exits, whatever it left running is killed too, so
// Exec never returns with a process of the command alive. Without bwrap, a
// process that leaves the group (setsid) is still found by an environment
// marker (OPENCODE_LSP_EXEC) unless it also clears its environment; with
// bwrap the pid namespace leaves nothing behind.
//
// [sandbox.Cmd.OnListen] polls (every 150 ms) the TCP sockets in LISTEN state
// owned by the command's processes. [Sandbox.PreviewURL] is
// http://127.0.0.1:<port>; under bwrap a port is reachable from the host only
// while a command with network runs (without network a command has its own
// network namespace), so PreviewURL fails otherwise.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Isolation selects whether commands run inside bubblewrap.
type Isolation int

const (
	// IsolationAuto uses bubblewrap when it is installed and works here, and
	// runs commands without isolation otherwise (logged once).
	IsolationAuto Isolation = iota
	// IsolationBwrap requires bubblewrap: [New] fails when it cannot be used.
	IsolationBwrap
	// IsolationNone never uses bubblewrap.
	IsolationNone
)

// Defaults of [Options].
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultOutputLimit = 16 << 20
	DefaultKillGrace   = 500 * time.Millisecond
)

// Options configure a [Provider]. The zero value is usable.
type Options struct {
	// StateDir holds one directory per sandbox; default
	// os.UserCacheDir()/opencode-lsp/sandboxes.
	StateDir string
	// Isolation: auto (default), bwrap required, or none.
	Isolation Isolation
	// Bwrap is the bubblewrap binary; default "bwrap" looked up in PATH.
	Bwrap string
	// Network is the default network policy: when true every command may
	// reach the network, otherwise only those with [sandbox.Cmd.Network].
	// It is enforced only with bubblewrap.
	Network bool
	// Timeout is the default command timeout (DefaultTimeout).
	Timeout time.Duration
	// OutputLimit is the default [sandbox.Cmd.OutputLimit] in bytes
	// (DefaultOutputLimit).
	OutputLimit int64
	// KillGrace is how long a cancelled command has between SIGTERM and
	// SIGKILL (DefaultKillGrace).
	KillGrace time.Duration
	// ReadOnlyBinds are extra host paths that commands see read-only under
	// bubblewrap (for example a toolchain under a hidden HOME).
	ReadOnlyBinds []string
	// Path is the PATH of commands; default the daemon's PATH (absolute
	// entries only).
	Path string
	// Logger receives the provider's few log lines; default slog.Default().
	Logger *slog.Logger
}

// Status tells whether commands run isolated, for "doctor" and
// opencode.status.
type Status struct {
	// Isolated is true when commands run inside bubblewrap.
	Isolated bool `json:"isolated"`
	// Bwrap is the path of the bubblewrap binary in use or found.
	Bwrap string `json:"bwrap,omitempty"`
	// Reason says why commands are not isolated ("" when they are).
	Reason string `json:"reason,omitempty"`
}

// Provider is the local sandbox provider. It is safe for concurrent use.
type Provider struct {
	opts   Options
	log    *slog.Logger
	status Status
	tc     toolchains

	mu   sync.Mutex
	open map[string]*Sandbox // by id
}

var _ sandbox.Provider = (*Provider)(nil)

// New returns a local provider. With IsolationAuto and IsolationBwrap it
// checks that bubblewrap starts a trivial command here; IsolationBwrap fails
// when it does not.
func New(opts Options) (*Provider, error) {
	if opts.StateDir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("local sandbox: no state dir: %w", err)
		}
		opts.StateDir = filepath.Join(c, "opencode-lsp", "sandboxes")
	}
	sd, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local sandbox: state dir: %w", err)
	}
	opts.StateDir = sd
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.OutputLimit <= 0 {
		opts.OutputLimit = DefaultOutputLimit
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.Path == "" {
		opts.Path = cleanPath(os.Getenv("PATH"))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Provider{opts: opts, log: opts.Logger, open: map[string]*Sandbox{}}
	p.tc = findToolchains(opts.Path)

	switch opts.Isolation {
	case IsolationNone:
		p.status = Status{Reason: "isolation disabled by configuration"}
	case IsolationAuto, IsolationBwrap:
		p.status = probeBwrap(opts.Bwrap, opts.Path)
		if !p.status.Isolated {
			if opts.Isolation == IsolationBwrap {
				return nil, fmt.Errorf("local sandbox: bubblewrap required: %s", p.status.Reason)
			}
			if p.status.Bwrap == "" {
				p.log.Warn("bubblewrap not found, commands run without isolation")
			} else {
				p.log.Warn("bubblewrap does not work here, commands run without isolation", "reason", p.status.Reason)
			}
		}
	default:
		return nil, fmt.Errorf("local sandbox: unknown isolation %d", opts.Isolation)
	}
	return p, nil
}

// Name returns "local".
func (p *Provider) Name() string { return "local" }

// Status tells whether commands run inside bubblewrap, and why not.
func (p *Provider) Status() Status { return p.status }

// StateDir returns the directory holding the sandboxes.
func (p *Provider) StateDir() string { return p.opts.StateDir }

// Dir returns the directory of the sandbox for key (it may not exist).
func (p *Provider) Dir(key string) string { return filepath.Join(p.opts.StateDir, sandboxID(key)) }

// Open opens the sandbox of spec.Key, creating its directory on first use and
// reusing the working copy and sync state left by earlier runs. While a
// sandbox is open, Open with the same key returns the same Sandbox (with
// spec's Env); another process holding it makes Open fail.
func (p *Provider) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec.Key == "" {
		return nil, errors.New("local sandbox: open: empty spec key")
	}
	if spec.WorkspaceRoot != "" && !filepath.IsAbs(spec.WorkspaceRoot) {
		return nil, fmt.Errorf("local sandbox: open: workspace root %q is not absolute", spec.WorkspaceRoot)
	}
	base := sandboxID(spec.Key)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Another daemon (or another session of a --listen daemon, which has its
	// own provider) may hold the workspace's working copy: then use a second
	// one rather than fail, so several editors can work on one folder.
	var err error
	for i := 1; i <= maxCopies; i++ {
		id := base
		if i > 1 {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		if s := p.open[id]; s != nil {
			if s.reuse(spec) {
				return s, nil
			}
			delete(p.open, id)
		}
		var s *Sandbox
		s, err = openSandbox(p, id, spec)
		if errors.Is(err, errInUse) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p.open[id] = s
		return s, nil
	}
	return nil, err
}

// maxCopies bounds the working copies of one workspace (one per daemon
// using it at the same time).
const maxCopies = 4

// errInUse: another process holds a sandbox directory's lock.
var errInUse = errors.New("sandbox is in use by another process")

// Remove deletes the sandbox directory of key (working copy, caches, state).
// The sandbox must not be open.
func (p *Provider) Remove(key string) error {
	id := sandboxID(key)
	p.mu.Lock()
	s := p.open[id]
	p.mu.Unlock()
	if s != nil && !s.isClosed() {
		return fmt.Errorf("local sandbox %s: remove: sandbox is open", id)
	}
	dir := filepath.Join(p.opts.StateDir, id)
	lock, err := lockDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local sandbox %s: remove: %w", id, err)
	}
	defer lock.Close()
	return removeAll(dir)
}

func (p *Provider) closed(s *Sandbox) {
	p.mu.Lock()
	if p.open[s.id] == s {
		delete(p.open, s.id)
	}
	p.mu.Unlock()
}

var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// sandboxID maps a spec key to a directory name: the key itself when it is a
// short safe name, otherwise a readable prefix plus a hash of the key.
func sandboxID(key string) string {
	if safeID.MatchString(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	for _, r := range key {
		if b.Len() >= 24 {
			break
		}
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	prefix := strings.Trim(b.String(), "-_")
	if prefix == "" {
		prefix = "ws"
	}
	return prefix + "-" + hex.EncodeToString(sum[:8])
}

// cleanPath keeps the absolute, distinct entries of a PATH value.
func cleanPath(p string) string {
	seen := map[string]bool{}
	var out []string
	for _, d := range filepath.SplitList(p) {
		if !filepath.IsAbs(d) || seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, filepath.Clean(d))
	}
	if len(out) == 0 {
		return "/usr/local/bin:/usr/bin:/bin"
	}
	return strings.Join(out, ":")
}

// lookPath finds an executable named file in the directories of pathEnv.
func lookPath(file, pathEnv string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		p := filepath.Join(d, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w", file, exec.ErrNotFound)
}

// probeBwrap finds bubblewrap and checks that it starts a trivial command
// with the namespaces and mounts commands use.
func probeBwrap(bin, pathEnv string) Status {
	if bin == "" {
		bin = "bwrap"
	}
	path, err := lookPath(bin, pathEnv)
	if err == nil {
		if fi, serr := os.Stat(path); serr != nil || fi.IsDir() {
			err = exec.ErrNotFound
		}
	}
	if err != nil {
		return Status{Reason: fmt.Sprintf("bubblewrap (%s) not found; install the bubblewrap package", bin)}
	}
	truePath, err := lookPath("true", pathEnv)
	if err != nil {
		truePath = "/bin/true"
	}
	args := []string{"--ro-bind", "/", "/", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
		"--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--die-with-parent", "--new-session", "--", truePath}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=" + pathEnv, "LANG=C.UTF-8"}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 512}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return Status{Bwrap: path, Reason: "bubblewrap cannot create a sandbox here: " + msg}
	}
	return Status{Isolated: true, Bwrap: path}
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// toolchains are the host locations of language toolchains and caches.
type toolchains struct {
	home       string // the daemon user's HOME
	user       string
	goModCache string // existing host module cache, or ""
	cargoHome  string
	rustupHome string
	pyenvRoot  string
	roBinds    []string // toolchain dirs to re-expose when HOME is hidden
}

func findToolchains(pathEnv string) toolchains {
	var t toolchains
	t.home, _ = os.UserHomeDir()
	t.user = os.Getenv("USER")
	if t.user == "" {
		t.user = os.Getenv("LOGNAME")
	}
	if t.user == "" {
		if u, err := user.Current(); err == nil {
			t.user = u.Username
		}
	}
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" && filepath.IsAbs(v) {
			return v
		}
		return def
	}
	gopath := ""
	if t.home != "" {
		gopath = filepath.Join(t.home, "go")
	}
	if g := filepath.SplitList(os.Getenv("GOPATH")); len(g) > 0 && filepath.IsAbs(g[0]) {
		gopath = g[0]
	}
	if mc := env("GOMODCACHE", filepath.Join(gopath, "pkg", "mod")); gopath != "" || os.Getenv("GOMODCACHE") != "" {
		if isDir(mc) {
			t.goModCache = mc
		}
	}
	if t.home != "" {
		if c := env("CARGO_HOME", filepath.Join(t.home, ".cargo")); isDir(c) {
			t.cargoHome = c
		}
		if r := env("RUSTUP_HOME", filepath.Join(t.home, ".rustup")); isDir(r) {
			t.rustupHome = r
		}
		if r := env("PYENV_ROOT", filepath.Join(t.home, ".pyenv")); isDir(r) {
			t.pyenvRoot = r
		}
	}
	var cands []string
	for _, d := range filepath.SplitList(pathEnv) {
		cands = append(cands, pathBind(d, t.home))
	}
	cands = append(cands, t.goModCache, t.rustupHome, t.pyenvRoot)
	// A Go installation under HOME needs its whole GOROOT, not just bin.
	if g, err := lookPath("go", pathEnv); err == nil {
		if real, err := filepath.EvalSymlinks(g); err == nil {
			if gr := filepath.Dir(filepath.Dir(real)); isDir(filepath.Join(gr, "src", "runtime")) {
				cands = append(cands, gr)
			}
		}
	}
	if t.cargoHome != "" {
		for _, sub := range []string{"bin", "registry", "git"} {
			cands = append(cands, filepath.Join(t.cargoHome, sub))
		}
	}
	if t.home != "" {
		cands = append(cands, filepath.Join(t.home, ".nvm"))
	}
	seen := map[string]bool{}
	for _, c := range cands {
		if c == "" || seen[c] || !filepath.IsAbs(c) || !isDir(c) {
			continue
		}
		seen[c] = true
		t.roBinds = append(t.roBinds, filepath.Clean(c))
	}
	return t
}

// pathBind returns what to bind read-only for a PATH entry under a hidden
// HOME: the entry's parent when it is a tool's own directory (~/.opencode for
// ~/.opencode/bin, ~/.npm-global for ~/.npm-global/bin, whose bin holds
// symlinks into lib/), the entry itself when the parent is HOME or a
// directory that may hold secrets (~/.local, ~/.cargo, ~/.config).
func pathBind(entry, home string) string {
	if home == "" || !within(entry, home) || entry == home {
		return entry
	}
	parent := filepath.Dir(entry)
	switch filepath.Base(parent) {
	case ".local", ".cargo", ".config", ".ssh", ".gnupg", ".aws", ".docker", ".kube":
		return entry
	}
	if parent == home || !within(parent, home) {
		return entry
	}
	return parent
}

// within reports whether p is dir or lies under it (both clean and absolute).
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// removeAll removes dir, making read-only directories (a Go module cache)
// writable first when needed.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// lockDir takes an exclusive flock on dir/lock; it fails at once when another
// process holds it.
func lockDir(dir string) (*os.File, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errInUse
		}
		return nil, err
	}
	return f, nil
}
