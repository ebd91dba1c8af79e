package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// run is one running command, known to Close and PreviewURL.
type run struct {
	network bool
}

// markerVar names the environment entry every process of a command inherits;
// without bubblewrap it finds processes that left the process group.
const markerVar = "OPENCODE_LSP_EXEC"

// listenPoll is how often OnListen scans the command's sockets.
const listenPoll = 150 * time.Millisecond

var pipeBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Exec runs one command in the working copy (see [sandbox.Sandbox.Exec] and
// the package doc for isolation, environment and killing). The error is
// non-nil when the command could not be started (empty command, program not
// in PATH, bad Dir, closed sandbox) or was cancelled (ctx or Close; then
// ExitStatus.Canceled is set and the process tree is gone). A timeout is not
// an error: ExitStatus.TimedOut is set. Under bubblewrap, a command killed by
// a signal inside the sandbox reports exit code 128+signal (bubblewrap's
// own status), not Code -1.
func (s *Sandbox) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.ExitStatus, error) {
	start := time.Now()
	var st sandbox.ExitStatus
	fail := func(err error) (sandbox.ExitStatus, error) {
		st.Duration = time.Since(start)
		return st, s.errorf("exec", err)
	}
	if err := s.enter(); err != nil {
		return fail(err)
	}
	defer s.wg.Done()
	argv, err := commandLine(c)
	if err != nil {
		return fail(err)
	}
	dir, err := relPath(c.Dir)
	if err != nil {
		return fail(fmt.Errorf("dir: %w", err))
	}
	if fi, err := s.wc.Stat(dir); err != nil {
		return fail(fmt.Errorf("dir: %w", rootErr(c.Dir, err)))
	} else if !fi.IsDir() {
		return fail(fmt.Errorf("dir %q is not a directory", c.Dir))
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fail(fmt.Errorf("bad environment variable name %q", k))
		}
	}
	if err := ctx.Err(); err != nil {
		st.Canceled = true
		return fail(err)
	}
	opts := s.p.opts
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = opts.Timeout
	}
	limit := c.OutputLimit
	if limit <= 0 {
		limit = opts.OutputLimit
	}
	network := c.Network || opts.Network
	isolated := s.p.status.Isolated

	s.mu.Lock()
	r := &run{network: network || !isolated}
	s.running[r] = struct{}{}
	spec := s.spec
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, r)
		s.mu.Unlock()
	}()

	var tag [12]byte
	_, _ = rand.Read(tag[:])
	marker := markerVar + "=" + s.id + "-" + hex.EncodeToString(tag[:])
	env := s.environ(spec.Env, c.Env, network, isolated, marker)
	pathEnv := opts.Path
	if v, ok := c.Env["PATH"]; ok {
		pathEnv = v
	} else if v, ok := spec.Env["PATH"]; ok {
		pathEnv = v
	}
	prog, err := lookPath(argv[0], pathEnv)
	if err != nil {
		return fail(err)
	}
	workDir := filepath.Join(s.root, filepath.FromSlash(dir))
	cmd := &exec.Cmd{Env: env, SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	if isolated {
		cmd.Path = s.p.status.Bwrap
		cmd.Args = append(append([]string{"bwrap", "--info-fd", "3"}, s.bwrapArgs(spec.WorkspaceRoot, workDir, network)...), argv...)
		cmd.Dir = s.dir
	} else {
		cmd.Path = prog
		cmd.Args = argv
		cmd.Dir = workDir
	}

	ht := sandbox.NewHeadTail(limit, c.Stdout, c.Stderr)
	var pipes [6]*os.File // stdout r/w, stderr r/w, bwrap info r/w
	closeAll := func() {
		for _, f := range pipes {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := 0; i < len(pipes); i += 2 {
		if i == 4 && !isolated {
			break
		}
		if pipes[i], pipes[i+1], err = os.Pipe(); err != nil {
			closeAll()
			return fail(err)
		}
	}
	outR, errR, infoR := pipes[0], pipes[2], pipes[4]
	cmd.Stdout, cmd.Stderr = pipes[1], pipes[3]
	if isolated {
		// bubblewrap writes the pid of the namespace's init to fd 3.
		cmd.ExtraFiles = []*os.File{pipes[5]}
	}
	err = cmd.Start()
	for i := 1; i < len(pipes); i += 2 {
		if pipes[i] != nil {
			pipes[i].Close()
		}
	}
	if err != nil {
		closeAll()
		return fail(err)
	}
	nsInit := make(chan procID, 1)
	if isolated {
		go func() {
			nsInit <- readBwrapInfo(infoR)
			infoR.Close()
		}()
	}
	pid := cmd.Process.Pid
	root := procID{pid: pid}
	if p, ok := readProc(pid); ok {
		root.start = p.start
	}

	var readers sync.WaitGroup
	readers.Add(2)
	go pump(&readers, outR, ht.Stdout())
	go pump(&readers, errR, ht.Stderr())
	stopListen := make(chan struct{})
	var listening sync.WaitGroup
	if c.OnListen != nil {
		listening.Add(1)
		go func() {
			defer listening.Done()
			pollListen(stopListen, root, pid, c.OnListen)
		}()
	}

	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	treeMarker := marker
	if isolated {
		treeMarker = "" // the pid namespace holds the whole tree
	}
	var cause error
	kill := func() {
		if n := killTree(root, pid, treeMarker, opts.KillGrace); n > 0 {
			s.p.log.Warn("Processes of a cancelled command survived SIGKILL", "sandbox", s.id, "count", n)
		}
	}
	select {
	case <-waitCh:
	case <-ctx.Done():
		st.Canceled, cause = true, ctx.Err()
		kill()
		<-waitCh
	case <-timer.C:
		st.TimedOut = true
		kill()
		<-waitCh
	case <-s.closeCh:
		st.Canceled, cause = true, sandbox.ErrClosed
		kill()
		<-waitCh
	}
	// The main process is gone; so must be whatever it left running. Under
	// bubblewrap the pid namespace took care of that; without, the group is
	// killed and, when processes of the command left it, the rest too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if !isolated && !st.Canceled && !st.TimedOut {
		killTree(procID{pid: -1, start: root.start}, 0, treeMarker, 0)
	}
	if isolated {
		// bubblewrap exits as soon as the command does, while the kernel
		// is still tearing down the pid namespace; wait for its init.
		if init := <-nsInit; init.pid > 0 {
			waitNamespace(init)
		}
	}
	if !waitTimeout(&readers, 100*time.Millisecond) {
		// Someone outside the group still holds the pipes.
		killTree(procID{pid: -1, start: root.start}, pid, treeMarker, 0)
		deadline := time.Now().Add(500 * time.Millisecond)
		outR.SetReadDeadline(deadline)
		errR.SetReadDeadline(deadline)
		readers.Wait()
	}
	outR.Close()
	errR.Close()
	close(stopListen)
	listening.Wait()
	st.DroppedBytes = ht.Close()

	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			st.Code, st.Signal = -1, ws.Signal().String()
		default:
			st.Code = ws.ExitStatus()
		}
	} else {
		st.Code = cmd.ProcessState.ExitCode()
	}
	st.Duration = time.Since(start)
	if cause != nil {
		return st, s.errorf("exec", cause)
	}
	return st, nil
}

// commandLine returns the argv of c.
func commandLine(c sandbox.Cmd) ([]string, error) {
	switch {
	case c.Shell != "" && len(c.Args) > 0:
		return nil, errors.New("both Args and Shell are set")
	case c.Shell != "":
		return []string{"/bin/sh", "-c", c.Shell}, nil
	case len(c.Args) == 0 || c.Args[0] == "":
		return nil, errors.New("empty command")
	}
	for _, a := range c.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("argument %q contains NUL", a)
		}
	}
	return c.Args, nil
}

func pump(wg *sync.WaitGroup, r *os.File, w io.Writer) {
	defer wg.Done()
	bp := pipeBufs.Get().(*[]byte)
	defer pipeBufs.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// readBwrapInfo decodes bubblewrap's --info-fd JSON ({"child-pid": N, ...})
// and identifies that process; the zero procID when bwrap failed first.
func readBwrapInfo(r io.Reader) procID {
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(r).Decode(&info); err != nil || info.ChildPid <= 0 {
		return procID{}
	}
	p, ok := readProc(info.ChildPid)
	if !ok {
		return procID{}
	}
	return p.id()
}

// waitNamespace waits until the init of a pid namespace has exited, which
// the kernel lets happen only after every other process of the namespace
// is gone; it kills the namespace if that takes more than a second.
func waitNamespace(init procID) {
	start := time.Now()
	killed := false
	for alive(init) {
		if !killed && time.Since(start) > time.Second {
			_ = syscall.Kill(init.pid, syscall.SIGKILL)
			killed = true
		}
		if time.Since(start) > 3*time.Second {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// environ builds a command's environment: the minimal base, the toolchain
// variables, then specEnv, cmdEnv and the marker.
func (s *Sandbox) environ(specEnv, cmdEnv map[string]string, network, isolated bool, marker string) []string {
	tc := s.p.tc
	m := map[string]string{
		"PATH":                       s.p.opts.Path,
		"HOME":                       s.path("home"),
		"LANG":                       "C.UTF-8",
		"LC_ALL":                     "C.UTF-8",
		"TERM":                       "dumb",
		"NO_COLOR":                   "1",
		"PAGER":                      "cat",
		"GIT_PAGER":                  "cat",
		"GIT_TERMINAL_PROMPT":        "0",
		"PYTHONUNBUFFERED":           "1",
		"GOCACHE":                    filepath.Join(s.path("cache"), "go-build"),
		"npm_config_cache":           filepath.Join(s.path("cache"), "npm"),
		"npm_config_update_notifier": "false",
		"npm_config_fund":            "false",
	}
	user := tc.user
	if user == "" {
		user = "sandbox"
	}
	m["USER"], m["LOGNAME"] = user, user
	if isolated {
		m["TMPDIR"] = "/tmp"
	} else {
		m["TMPDIR"] = s.path("tmp")
	}
	if tc.rustupHome != "" {
		m["RUSTUP_HOME"] = tc.rustupHome
	}
	if tc.pyenvRoot != "" {
		m["PYENV_ROOT"] = tc.pyenvRoot
	}
	switch {
	case isolated && !network:
		m["GOPROXY"] = "off"
		if tc.goModCache != "" {
			m["GOMODCACHE"] = tc.goModCache
		}
		if tc.cargoHome != "" {
			m["CARGO_HOME"] = tc.cargoHome
		}
		m["CARGO_NET_OFFLINE"] = "true"
		m["npm_config_offline"] = "true"
	case isolated && network:
		m["GOMODCACHE"] = filepath.Join(s.path("cache"), "gomod")
		m["GOFLAGS"] = "-modcacherw"
		if tc.goModCache != "" {
			m["GOPROXY"] = "file://" + filepath.Join(tc.goModCache, "cache", "download") + ",https://proxy.golang.org,direct"
		}
		m["CARGO_HOME"] = filepath.Join(s.path("cache"), "cargo")
	default:
		if tc.goModCache != "" {
			m["GOMODCACHE"] = tc.goModCache
		}
		if tc.cargoHome != "" {
			m["CARGO_HOME"] = tc.cargoHome
		}
	}
	for k, v := range specEnv {
		m[k] = v
	}
	for k, v := range cmdEnv {
		m[k] = v
	}
	env := make([]string, 0, len(m)+1)
	for k, v := range m {
		if k == markerVar {
			continue
		}
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return append(env, marker)
}

// systemDirs are never hidden, nor is anything above them.
var systemDirs = []string{"/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/var", "/proc", "/dev", "/sys", "/run"}

// hideable reports whether p can be covered by an empty tmpfs.
func hideable(p string) bool {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
		return false
	}
	for _, d := range systemDirs {
		if within(d, filepath.Clean(p)) {
			return false
		}
	}
	return true
}

// bwrapArgs returns bubblewrap's options for one command (see the package
// doc for the layout); "--" ends them.
func (s *Sandbox) bwrapArgs(wsRoot, workDir string, network bool) []string {
	a := []string{"--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"}
	if !network {
		a = append(a, "--unshare-net")
	}
	a = append(a, "--ro-bind", "/", "/")
	var hidden []string
	for _, h := range []string{s.p.tc.home, s.p.opts.StateDir, wsRoot, "/tmp"} {
		if hideable(h) && !contains(hidden, filepath.Clean(h)) {
			hidden = append(hidden, filepath.Clean(h))
		}
	}
	sort.Slice(hidden, func(i, j int) bool { return len(hidden[i]) < len(hidden[j]) })
	for _, h := range hidden {
		a = append(a, "--tmpfs", h)
	}
	for _, b := range s.p.tc.roBinds {
		under := false
		for _, h := range hidden {
			if within(b, h) {
				under = true
			}
		}
		if under && (wsRoot == "" || !within(b, filepath.Clean(wsRoot))) {
			a = append(a, "--ro-bind-try", b, b)
		}
	}
	for _, b := range s.p.opts.ReadOnlyBinds {
		if filepath.IsAbs(b) {
			a = append(a, "--ro-bind-try", filepath.Clean(b), filepath.Clean(b))
		}
	}
	for _, d := range []string{s.path("home"), s.path("cache"), s.root} {
		a = append(a, "--bind", d, d)
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--chdir", workDir, "--")
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pollListen reports the TCP ports the command's processes listen on until
// stop is closed.
func pollListen(stop <-chan struct{}, root procID, pgid int, cb func(int)) {
	seen := map[int]bool{}
	t := time.NewTicker(listenPoll)
	defer t.Stop()
	for {
		procs := allProcs()
		rootPid := 0
		for _, p := range procs {
			if p.id() == root {
				rootPid = root.pid
			}
		}
		inodes := map[uint64]bool{}
		nsPid := map[string]int{}
		for _, p := range tree(procs, rootPid, pgid) {
			socketInodes(p.pid, inodes)
			if ns := netNS(p.pid); ns != "" {
				if _, ok := nsPid[ns]; !ok {
					nsPid[ns] = p.pid
				}
			}
		}
		if len(inodes) > 0 {
			for _, pid := range nsPid {
				for _, port := range tcpListening(pid, inodes) {
					if !seen[port] {
						seen[port] = true
						cb(port)
					}
				}
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
