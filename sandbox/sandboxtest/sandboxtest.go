// Package sandboxtest is the conformance suite every sandbox provider passes:
// call [Run] from a test of the provider's package.
//
// The suite checks the behaviour the doc comments of package sandbox promise:
// incremental sync (first, unchanged, one changed, overlay, removed,
// excludes, working-copy changes), manifests, exec (exit codes, stream order,
// streaming before exit, Dir, environment isolation, timeout, cancel killing
// the whole tree, the output cap), file round trips (binary content, unicode
// names, nested directories), refusal of paths that escape the working copy
// (.., absolute, through a symlink), and Close. Commands use only POSIX sh
// and coreutils, so providers backed by fakes that run commands locally pass
// it too. The whole suite takes a few seconds.
package sandboxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// sentinel is put in the test process's environment; no command may see it.
const sentinel = "sk-or-sentinel-3f9a"

// Run runs the suite. newProvider returns a fresh provider for one subtest
// (for example with its own state dir under t.TempDir()); the suite opens
// one sandbox per subtest and closes it at the end.
func Run(t *testing.T, newProvider func(t *testing.T) sandbox.Provider) {
	// t.Setenv marks t as not parallel; subtests run one after another.
	t.Setenv("OPENROUTER_API_KEY", sentinel)
	env := &suite{newProvider: newProvider}
	t.Run("Sync", func(t *testing.T) {
		t.Run("First", env.testSyncFirst)
		t.Run("Incremental", env.testSyncIncremental)
		t.Run("Overlay", env.testSyncOverlay)
		t.Run("Excludes", env.testSyncExcludes)
		t.Run("WorkingCopyChanged", env.testSyncWorkingCopyChanged)
		t.Run("SymlinkOutside", env.testSyncSymlinkOutside)
	})
	t.Run("Manifest", env.testManifest)
	t.Run("Exec", func(t *testing.T) {
		t.Run("ExitCodes", env.testExitCodes)
		t.Run("StreamOrder", env.testStreamOrder)
		t.Run("StreamedBeforeExit", env.testStreamedBeforeExit)
		t.Run("Dir", env.testDir)
		t.Run("Env", env.testEnv)
		t.Run("Timeout", env.testTimeout)
		t.Run("CancelKillsTree", env.testCancelKillsTree)
		t.Run("OutputCap", env.testOutputCap)
	})
	t.Run("Files", func(t *testing.T) {
		t.Run("RoundTrip", env.testFileRoundTrip)
		t.Run("PathEscape", env.testPathEscape)
	})
	t.Run("Close", env.testClose)
}

type suite struct {
	newProvider func(t *testing.T) sandbox.Provider
}

// open returns an open sandbox for a new workspace filled with files.
func (e *suite) open(t *testing.T, files map[string]string) (sandbox.Sandbox, string) {
	t.Helper()
	ws := t.TempDir()
	writeTree(t, ws, files)
	p := e.newProvider(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	spec := sandbox.Spec{
		Key:           "sandboxtest-" + hex.EncodeToString(rnd[:]),
		WorkspaceRoot: ws,
		Labels:        map[string]string{"test": "sandboxtest"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb, err := p.Open(ctx, spec)
	if err != nil {
		t.Fatalf("Open(%s): %v", p.Name(), err)
	}
	t.Cleanup(func() {
		if err := sb.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sb, ws
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustSync(t *testing.T, sb sandbox.Sandbox, src sandbox.Source) (sandbox.Manifest, sandbox.SyncStats) {
	t.Helper()
	m, st, err := sb.Sync(ctxT(t), src)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return m, st
}

func readFile(t *testing.T, sb sandbox.Sandbox, name string) string {
	t.Helper()
	b, err := sb.ReadFile(ctxT(t), name)
	if err != nil {
		t.Fatalf("ReadFile(%q): %v", name, err)
	}
	return string(b)
}

func wantNotFound(t *testing.T, sb sandbox.Sandbox, name string) {
	t.Helper()
	b, err := sb.ReadFile(ctxT(t), name)
	if !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("ReadFile(%q) = %q, %v; want an error wrapping ErrNotFound", name, b, err)
	}
}

// Buffer is a concurrency-safe output sink for [sandbox.Cmd]'s Stdout and
// Stderr. Made by [NewBuffer] it signals when a substring appears; its zero
// value only collects.
type Buffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
}

// NewBuffer returns a Buffer whose Seen channel closes once its content
// contains want.
func NewBuffer(want string) *Buffer { return &Buffer{want: want, seen: make(chan struct{})} }

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Write(p)
	if b.want != "" && strings.Contains(b.b.String(), b.want) {
		b.want = ""
		close(b.seen)
	}
	return len(p), nil
}

// Seen is closed once the content contains NewBuffer's want (nil for the
// zero value, so it never fires).
func (b *Buffer) Seen() <-chan struct{} { return b.seen }

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type execResult struct {
	st          sandbox.ExitStatus
	err         error
	out, errOut string
}

func run(t *testing.T, sb sandbox.Sandbox, c sandbox.Cmd) execResult {
	t.Helper()
	var o, e Buffer
	c.Stdout, c.Stderr = &o, &e
	st, err := sb.Exec(ctxT(t), c)
	return execResult{st, err, o.String(), e.String()}
}

func mustRun(t *testing.T, sb sandbox.Sandbox, shell string) execResult {
	t.Helper()
	r := run(t, sb, sandbox.Cmd{Shell: shell, Timeout: time.Minute})
	if r.err != nil || r.st.Code != 0 {
		t.Fatalf("Exec(%q) = %+v, %v; stdout %q stderr %q", shell, r.st, r.err, r.out, r.errOut)
	}
	return r
}

var baseTree = map[string]string{
	"a.txt":                "alpha\n",
	"dir/b.txt":            "bravo\n",
	"dir/sub/c.txt":        "charlie\n",
	"run.sh":               "#!/bin/sh\necho ran\n",
	"ünïcode/日本語 файл.txt": "unicode\n",
}

func (e *suite) testSyncFirst(t *testing.T) {
	sb, ws := e.open(t, baseTree)
	m, st := mustSync(t, sb, sandbox.Source{Root: ws})
	if st.Files != len(baseTree) || st.Written != len(baseTree) || st.Removed != 0 {
		t.Errorf("first sync stats = %+v; want Files = Written = %d, Removed = 0", st, len(baseTree))
	}
	var bytesWant int64
	for name, content := range baseTree {
		bytesWant += int64(len(content))
		fsm, ok := m[name]
		if !ok {
			t.Errorf("manifest lacks %q: %v", name, m)
			continue
		}
		if fsm.Hash != sum([]byte(content)) || fsm.Size != int64(len(content)) {
			t.Errorf("manifest[%q] = %+v; want size %d hash %s", name, fsm, len(content), sum([]byte(content)))
		}
		if got := readFile(t, sb, name); got != content {
			t.Errorf("ReadFile(%q) = %q; want %q", name, got, content)
		}
	}
	if len(m) != len(baseTree) {
		t.Errorf("manifest has %d entries; want %d: %v", len(m), len(baseTree), m)
	}
	if st.Bytes != bytesWant {
		t.Errorf("stats.Bytes = %d; want %d", st.Bytes, bytesWant)
	}
	if m["run.sh"].Mode&0o100 == 0 {
		t.Errorf("run.sh mode %v lost its executable bit", m["run.sh"].Mode)
	}
	r := mustRun(t, sb, "./run.sh")
	if r.out != "ran\n" {
		t.Errorf("./run.sh printed %q", r.out)
	}
}

func (e *suite) testSyncIncremental(t *testing.T) {
	sb, ws := e.open(t, baseTree)
	src := sandbox.Source{Root: ws}
	mustSync(t, sb, src)
	if _, st := mustSync(t, sb, src); st.Written != 0 || st.Removed != 0 || st.Files != len(baseTree) {
		t.Errorf("sync of an unchanged tree: %+v; want 0 written, 0 removed, %d files", st, len(baseTree))
	}

	writeTree(t, ws, map[string]string{"dir/b.txt": "bravo, changed\n"})
	m, st := mustSync(t, sb, src)
	if st.Written != 1 || st.Removed != 0 {
		t.Errorf("sync after one change: %+v; want 1 written", st)
	}
	if got := readFile(t, sb, "dir/b.txt"); got != "bravo, changed\n" {
		t.Errorf("changed file in the copy = %q", got)
	}
	if m["dir/b.txt"].Hash != sum([]byte("bravo, changed\n")) {
		t.Errorf("manifest hash of the changed file is stale: %+v", m["dir/b.txt"])
	}

	if err := os.Remove(filepath.Join(ws, "dir", "sub", "c.txt")); err != nil {
		t.Fatal(err)
	}
	m, st = mustSync(t, sb, src)
	if st.Written != 0 || st.Removed != 1 || st.Files != len(baseTree)-1 {
		t.Errorf("sync after one removal: %+v; want 0 written, 1 removed", st)
	}
	if _, ok := m["dir/sub/c.txt"]; ok {
		t.Errorf("manifest still lists the removed file")
	}
	wantNotFound(t, sb, "dir/sub/c.txt")

	writeTree(t, ws, map[string]string{"new/d.txt": "delta\n"})
	if _, st = mustSync(t, sb, src); st.Written != 1 {
		t.Errorf("sync after one new file: %+v; want 1 written", st)
	}
	if got := readFile(t, sb, "new/d.txt"); got != "delta\n" {
		t.Errorf("new file in the copy = %q", got)
	}
	if _, st = mustSync(t, sb, src); st.Written != 0 || st.Removed != 0 {
		t.Errorf("second sync of an unchanged tree: %+v", st)
	}
}

func (e *suite) testSyncOverlay(t *testing.T) {
	sb, ws := e.open(t, baseTree)
	src := sandbox.Source{Root: ws, Overlays: map[string][]byte{
		"a.txt":          []byte("alpha from the editor\n"),
		"unsaved/new.go": []byte("package unsaved\n"),
	}}
	m, st := mustSync(t, sb, src)
	if st.Files != len(baseTree)+1 {
		t.Errorf("stats %+v; want %d files", st, len(baseTree)+1)
	}
	if got := readFile(t, sb, "a.txt"); got != "alpha from the editor\n" {
		t.Errorf("overlay did not win over disk: %q", got)
	}
	if got := readFile(t, sb, "unsaved/new.go"); got != "package unsaved\n" {
		t.Errorf("overlay of a file not on disk: %q", got)
	}
	if m["a.txt"].Hash != sum([]byte("alpha from the editor\n")) {
		t.Errorf("manifest of the overlay: %+v", m["a.txt"])
	}
	if _, st = mustSync(t, sb, src); st.Written != 0 {
		t.Errorf("same overlays again: %+v; want 0 written", st)
	}
	// The buffer was closed without saving: the disk content comes back and
	// the unsaved file goes.
	m, st = mustSync(t, sb, sandbox.Source{Root: ws})
	if st.Written != 1 || st.Removed != 1 {
		t.Errorf("sync without overlays: %+v; want 1 written, 1 removed", st)
	}
	if got := readFile(t, sb, "a.txt"); got != "alpha\n" {
		t.Errorf("disk content did not come back: %q", got)
	}
	wantNotFound(t, sb, "unsaved/new.go")
	if len(m) != len(baseTree) {
		t.Errorf("manifest %v", m)
	}
	// Bad overlay paths are refused.
	for _, bad := range []string{"../evil", "/etc/evil"} {
		_, _, err := sb.Sync(ctxT(t), sandbox.Source{Root: ws, Overlays: map[string][]byte{bad: []byte("x")}})
		if err == nil {
			t.Errorf("Sync with overlay %q succeeded", bad)
		}
	}
}

func (e *suite) testSyncExcludes(t *testing.T) {
	tree := map[string]string{
		"main.go":                 "package main\n",
		"debug.log":               "log\n",
		"sub/trace.log":           "log\n",
		"node_modules/x/index.js": "x\n",
		"build/out.bin":           "bin\n",
		"keep/build/notdir.txt":   "kept: the pattern is anchored\n",
		".git/HEAD":               "ref: refs/heads/main\n",
		".git/objects/ab/cdef":    "obj\n",
		".gitignore":              "*.log\n",
	}
	sb, ws := e.open(t, tree)
	src := sandbox.Source{Root: ws, Excludes: []string{"*.log", "node_modules/", "/build"}}
	m, _ := mustSync(t, sb, src)
	for _, want := range []string{"main.go", ".gitignore", "keep/build/notdir.txt"} {
		if _, ok := m[want]; !ok {
			t.Errorf("manifest lacks %q: %v", want, keys(m))
		}
	}
	for _, gone := range []string{"debug.log", "sub/trace.log", "node_modules/x/index.js", "build/out.bin", ".git/HEAD", ".git/objects/ab/cdef"} {
		if _, ok := m[gone]; ok {
			t.Errorf("manifest lists excluded %q", gone)
		}
		wantNotFound(t, sb, gone)
	}
	mf, err := sb.Manifest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(mf) != len(m) {
		t.Errorf("Manifest() = %v; want the synced %v", keys(mf), keys(m))
	}

	// IncludeGit brings .git along, and Manifest then lists it.
	src.IncludeGit = true
	m, _ = mustSync(t, sb, src)
	if _, ok := m[".git/HEAD"]; !ok {
		t.Errorf("IncludeGit: manifest lacks .git/HEAD: %v", keys(m))
	}
	if got := readFile(t, sb, ".git/HEAD"); got != tree[".git/HEAD"] {
		t.Errorf(".git/HEAD = %q", got)
	}
	if mf, err = sb.Manifest(ctxT(t)); err != nil || mf[".git/HEAD"].Hash != sum([]byte(tree[".git/HEAD"])) {
		t.Errorf("Manifest after IncludeGit: %v, %v", keys(mf), err)
	}
	// Excluding it again removes what the earlier sync put there.
	src.IncludeGit = false
	if _, st := mustSync(t, sb, src); st.Removed != 2 {
		t.Errorf("excluding .git again: %+v; want 2 removed", st)
	}
	wantNotFound(t, sb, ".git/HEAD")
}

func (e *suite) testSyncWorkingCopyChanged(t *testing.T) {
	sb, ws := e.open(t, baseTree)
	src := sandbox.Source{Root: ws}
	mustSync(t, sb, src)
	// A command modifies a synced file and creates build output.
	mustRun(t, sb, "echo scribbled > a.txt && mkdir -p out && echo artefact > out/build.txt")
	_, st := mustSync(t, sb, src)
	if st.Written != 1 || st.Removed != 0 {
		t.Errorf("sync after a command changed a synced file: %+v; want 1 written", st)
	}
	if got := readFile(t, sb, "a.txt"); got != "alpha\n" {
		t.Errorf("the source did not win over the working copy: %q", got)
	}
	if got := readFile(t, sb, "out/build.txt"); got != "artefact\n" {
		t.Errorf("sync removed a file a command created: %q", got)
	}
}

func (e *suite) testSyncSymlinkOutside(t *testing.T) {
	sb, ws := e.open(t, baseTree)
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "secret\n"})
	if err := os.Symlink(outside, filepath.Join(ws, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(ws, "secret-link")); err != nil {
		t.Fatal(err)
	}
	m, _ := mustSync(t, sb, sandbox.Source{Root: ws})
	for name := range m {
		if strings.HasPrefix(name, "escape") || strings.HasPrefix(name, "secret") {
			t.Errorf("manifest lists %q, reached through a symlink out of the workspace", name)
		}
	}
	for _, name := range []string{"escape/secret.txt", "secret-link"} {
		if b, err := sb.ReadFile(ctxT(t), name); err == nil {
			t.Errorf("ReadFile(%q) = %q: a symlink out of the workspace was followed", name, b)
		}
	}
	r := run(t, sb, sandbox.Cmd{Shell: "cat escape/secret.txt secret-link 2>/dev/null; true", Timeout: time.Minute})
	if strings.Contains(r.out, "secret") {
		t.Errorf("a command read a file outside the workspace through a synced symlink: %q", r.out)
	}
}

func (e *suite) testManifest(t *testing.T) {
	sb, ws := e.open(t, baseTree)
	synced, _ := mustSync(t, sb, sandbox.Source{Root: ws})
	m, err := sb.Manifest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !equalManifest(m, synced) {
		t.Errorf("Manifest() after sync = %v; want %v", m, synced)
	}
	mustRun(t, sb, "printf 'made\\n' > made.txt && rm dir/b.txt && printf 'x' >> a.txt")
	m, err = sb.Manifest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m["made.txt"].Hash != sum([]byte("made\n")) || m["made.txt"].Size != 5 {
		t.Errorf("manifest of a file a command made: %+v", m["made.txt"])
	}
	if _, ok := m["dir/b.txt"]; ok {
		t.Errorf("manifest lists a file a command removed")
	}
	if m["a.txt"].Hash != sum([]byte("alpha\nx")) {
		t.Errorf("manifest of a file a command changed: %+v", m["a.txt"])
	}
	if len(m) != len(baseTree) {
		t.Errorf("manifest has %d entries; want %d", len(m), len(baseTree))
	}
	again, err := sb.Manifest(ctxT(t))
	if err != nil || !equalManifest(again, m) {
		t.Errorf("second Manifest() = %v, %v; want %v", again, err, m)
	}
}

func equalManifest(a, b sandbox.Manifest) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Hash != w.Hash || v.Size != w.Size {
			return false
		}
	}
	return true
}

func keys(m sandbox.Manifest) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (e *suite) testExitCodes(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	for _, tc := range []struct {
		cmd  sandbox.Cmd
		code int
	}{
		{sandbox.Cmd{Shell: "exit 0"}, 0},
		{sandbox.Cmd{Shell: "exit 3"}, 3},
		{sandbox.Cmd{Args: []string{"sh", "-c", "exit 3"}}, 3},
		{sandbox.Cmd{Args: []string{"false"}}, 1},
		{sandbox.Cmd{Shell: "definitely-not-a-command-xyz"}, 127},
	} {
		tc.cmd.Timeout = time.Minute
		r := run(t, sb, tc.cmd)
		if r.err != nil || r.st.Code != tc.code || r.st.TimedOut || r.st.Canceled {
			t.Errorf("Exec(%+v) = %+v, %v; want code %d", tc.cmd, r.st, r.err, tc.code)
		}
	}
	for _, bad := range []sandbox.Cmd{{}, {Args: []string{"true"}, Shell: "true"}} {
		if _, err := sb.Exec(ctxT(t), bad); err == nil {
			t.Errorf("Exec(%+v) succeeded; want an error", bad)
		}
	}
}

func (e *suite) testStreamOrder(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	r := mustRun(t, sb, "i=1; while [ $i -le 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done")
	var wantOut, wantErr strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&wantOut, "out%d\n", i)
		fmt.Fprintf(&wantErr, "err%d\n", i)
	}
	if r.out != wantOut.String() {
		t.Errorf("stdout out of order or incomplete: %q", r.out)
	}
	if r.errOut != wantErr.String() {
		t.Errorf("stderr out of order or incomplete: %q", r.errOut)
	}
}

func (e *suite) testStreamedBeforeExit(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	out := NewBuffer("first\n")
	errOut := NewBuffer("second\n")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	done := make(chan error, 1)
	var st sandbox.ExitStatus
	go func() {
		var err error
		st, err = sb.Exec(ctx, sandbox.Cmd{Shell: "echo first; echo second >&2; sleep 30", Stdout: out, Stderr: errOut, Timeout: time.Minute})
		done <- err
	}()
	for _, b := range []*Buffer{out, errOut} {
		select {
		case <-b.Seen():
		case err := <-done:
			t.Fatalf("Exec returned (%v, %+v) before its output was delivered: stdout %q stderr %q", err, st, out.String(), errOut.String())
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !st.Canceled {
		t.Errorf("cancelled Exec = %+v, %v; want Canceled and an error wrapping context.Canceled", st, err)
	}
}

func (e *suite) testDir(t *testing.T) {
	sb, ws := e.open(t, map[string]string{"sub/dir/f.txt": "in sub/dir\n"})
	mustSync(t, sb, sandbox.Source{Root: ws})
	r := run(t, sb, sandbox.Cmd{Shell: "pwd; cat f.txt", Dir: "sub/dir", Timeout: time.Minute})
	if r.err != nil || r.st.Code != 0 {
		t.Fatalf("Exec in Dir: %+v %v %q", r.st, r.err, r.errOut)
	}
	want := strings.TrimSuffix(sb.Root(), "/") + "/sub/dir\nin sub/dir\n"
	if r.out != want {
		t.Errorf("Exec in Dir printed %q; want %q", r.out, want)
	}
	r = mustRun(t, sb, "pwd")
	if r.out != sb.Root()+"\n" {
		t.Errorf("Exec without Dir runs in %q; want Root() %q", r.out, sb.Root())
	}
	for _, bad := range []string{"../", "/tmp", "missing/dir", "sub/dir/f.txt"} {
		if _, err := sb.Exec(ctxT(t), sandbox.Cmd{Shell: "true", Dir: bad}); err == nil {
			t.Errorf("Exec with Dir %q succeeded; want an error", bad)
		}
	}
	if _, err := sb.Exec(ctxT(t), sandbox.Cmd{Shell: "true", Dir: "../x"}); !errors.Is(err, sandbox.ErrPathEscape) {
		t.Errorf("Exec with Dir ../x: %v; want an error wrapping ErrPathEscape", err)
	}
}

func (e *suite) testEnv(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	r := run(t, sb, sandbox.Cmd{Shell: "env; echo HOME=$HOME", Env: map[string]string{"MY_VAR": "my value"}, Timeout: time.Minute})
	if r.err != nil || r.st.Code != 0 {
		t.Fatalf("env: %+v %v", r.st, r.err)
	}
	if strings.Contains(r.out, sentinel) {
		t.Errorf("the daemon's environment leaked into a command: %q", r.out)
	}
	if !strings.Contains(r.out, "MY_VAR=my value\n") {
		t.Errorf("Cmd.Env not set: %q", r.out)
	}
	for _, v := range []string{"PATH=", "HOME="} {
		if !strings.Contains(r.out, "\n"+v) && !strings.HasPrefix(r.out, v) {
			t.Errorf("%s missing from the minimal environment: %q", v, r.out)
		}
	}
	if strings.Contains(r.out, "HOME=\n") {
		t.Errorf("HOME is empty: %q", r.out)
	}
}

func (e *suite) testTimeout(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	r := run(t, sb, sandbox.Cmd{Shell: "echo started; sleep 30", Timeout: 300 * time.Millisecond})
	if r.err != nil {
		t.Errorf("a timeout is not an error: %v", r.err)
	}
	if !r.st.TimedOut || r.st.Canceled || r.st.Code == 0 {
		t.Errorf("ExitStatus = %+v; want TimedOut, not Canceled, non-zero code", r.st)
	}
	if r.out != "started\n" {
		t.Errorf("output before the timeout: %q", r.out)
	}
}

func (e *suite) testCancelKillsTree(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	out := NewBuffer("started\n")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	done := make(chan error, 1)
	var st sandbox.ExitStatus
	go func() {
		var err error
		// A background child would write late.txt a second later.
		st, err = sb.Exec(ctx, sandbox.Cmd{
			Shell:   "(sleep 1; echo late > late.txt) & (sh -c 'sleep 1; echo later > later.txt' &) ; echo started; sleep 600",
			Stdout:  out,
			Timeout: 10 * time.Minute,
		})
		done <- err
	}()
	select {
	case <-out.Seen():
	case err := <-done:
		t.Fatalf("Exec ended early: %+v, %v", st, err)
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !st.Canceled || st.TimedOut {
		t.Fatalf("cancelled Exec = %+v, %v; want Canceled and an error wrapping context.Canceled", st, err)
	}
	// Had the children survived, they would have written by now.
	time.Sleep(1500 * time.Millisecond)
	wantNotFound(t, sb, "late.txt")
	wantNotFound(t, sb, "later.txt")
}

func (e *suite) testOutputCap(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	const limit = 10000
	r := run(t, sb, sandbox.Cmd{Shell: "seq 1 50000; echo done >&2", OutputLimit: limit, Timeout: time.Minute})
	if r.err != nil || r.st.Code != 0 {
		t.Fatalf("Exec: %+v, %v", r.st, r.err)
	}
	var full strings.Builder
	for i := 1; i <= 50000; i++ {
		fmt.Fprintf(&full, "%d\n", i)
	}
	total := full.Len() + len("done\n")
	if r.st.DroppedBytes <= 0 {
		t.Fatalf("DroppedBytes = %d; want > 0", r.st.DroppedBytes)
	}
	delivered := len(r.out) + len(r.errOut)
	marker := fmt.Sprintf("[... %d bytes of output dropped ...]\n", r.st.DroppedBytes)
	if !strings.Contains(r.out, marker) {
		t.Errorf("stdout lacks the line %q", marker)
	}
	// What was delivered is what was printed, minus what was dropped, plus
	// the marker line (and the newline before it when the head ended
	// mid-line).
	if extra := int64(delivered) - (int64(total) - r.st.DroppedBytes); extra != int64(len(marker)) && extra != int64(len(marker))+1 {
		t.Errorf("delivered %d bytes, dropped %d of %d printed: %d bytes unaccounted for", delivered, r.st.DroppedBytes, total, extra)
	}
	if delivered > limit+len(marker)+1 {
		t.Errorf("delivered %d bytes; limit %d", delivered, limit)
	}
	if !strings.HasPrefix(r.out, "1\n2\n3\n") {
		t.Errorf("head missing: %q", r.out[:min(len(r.out), 50)])
	}
	if !strings.HasSuffix(r.out, "49999\n50000\n") {
		t.Errorf("tail missing: %q", r.out[max(0, len(r.out)-50):])
	}
	// stderr's last line is in the tail unless stdout output that was still
	// in its pipe arrived after it and pushed it out.
	if r.errOut != "done\n" && r.errOut != "" {
		t.Errorf("stderr = %q; want %q", r.errOut, "done\n")
	}
}

func (e *suite) testFileRoundTrip(t *testing.T) {
	sb, ws := e.open(t, nil)
	mustSync(t, sb, sandbox.Source{Root: ws})
	bin := make([]byte, 0, 1024)
	for i := 0; i < 1024; i++ {
		bin = append(bin, byte(i*7))
	}
	files := map[string][]byte{
		"bin/all-bytes.dat":    bin,
		"deep/a/b/c/d/e/f.txt": []byte("deep\n"),
		"ünï/日本語 スペース.txt":     []byte("ユニコード\n"),
		"empty.txt":            {},
	}
	ctx := ctxT(t)
	for name, data := range files {
		if err := sb.WriteFile(ctx, name, data, 0o644); err != nil {
			t.Fatalf("WriteFile(%q): %v", name, err)
		}
	}
	if err := sb.WriteFile(ctx, "tool.sh", []byte("#!/bin/sh\necho tool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		got, err := sb.ReadFile(ctx, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadFile(%q) = %d bytes, %v; want %d bytes back", name, len(got), err, len(data))
		}
	}
	// Commands see the same bytes.
	r := mustRun(t, sb, "cat 'ünï/日本語 スペース.txt'; wc -c < bin/all-bytes.dat; ./tool.sh")
	if r.out != "ユニコード\n1024\ntool\n" && r.out != "ユニコード\n    1024\ntool\n" {
		t.Errorf("commands see %q", r.out)
	}
	// Overwrite, and files commands wrote are readable.
	if err := sb.WriteFile(ctx, "empty.txt", []byte("now full"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, sb, "empty.txt"); got != "now full" {
		t.Errorf("overwrite: %q", got)
	}
	files["empty.txt"] = []byte("now full")
	mustRun(t, sb, "printf 'from a command' > cmd.txt")
	if got := readFile(t, sb, "cmd.txt"); got != "from a command" {
		t.Errorf("file written by a command: %q", got)
	}
	m, err := sb.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if m[name].Hash != sum(data) {
			t.Errorf("Manifest()[%q] = %+v; want hash %s", name, m[name], sum(data))
		}
	}
	wantNotFound(t, sb, "no/such/file")
}

func (e *suite) testPathEscape(t *testing.T) {
	sb, ws := e.open(t, map[string]string{"in.txt": "in\n"})
	mustSync(t, sb, sandbox.Source{Root: ws})
	ctx := ctxT(t)
	// Symlinks made inside the working copy that point out of it.
	mustRun(t, sb, "ln -s / rootlink && ln -s .. up && ln -s /etc/passwd passwd && ln -s in.txt inlink")
	for _, name := range []string{"../x", "../../etc/passwd", "/etc/passwd", "a/../../x", "rootlink/etc/passwd", "up/x", "passwd"} {
		if b, err := sb.ReadFile(ctx, name); !errors.Is(err, sandbox.ErrPathEscape) {
			t.Errorf("ReadFile(%q) = %d bytes, %v; want an error wrapping ErrPathEscape", name, len(b), err)
		}
		if err := sb.WriteFile(ctx, name, []byte("x"), 0o644); !errors.Is(err, sandbox.ErrPathEscape) {
			t.Errorf("WriteFile(%q) = %v; want an error wrapping ErrPathEscape", name, err)
		}
	}
	if err := sb.WriteFile(ctx, "rootlink/tmp/escaped.txt", []byte("x"), 0o644); !errors.Is(err, sandbox.ErrPathEscape) {
		t.Errorf("WriteFile through a symlink to / = %v; want ErrPathEscape", err)
	}
	// A symlink that stays inside is fine.
	if got := readFile(t, sb, "inlink"); got != "in\n" {
		t.Errorf("ReadFile through an inside symlink = %q", got)
	}
}

func (e *suite) testClose(t *testing.T) {
	sb, ws := e.open(t, map[string]string{"a.txt": "a\n"})
	mustSync(t, sb, sandbox.Source{Root: ws})
	ctx := ctxT(t)
	// A command running at Close is stopped.
	started := NewBuffer("started\n")
	done := make(chan error, 1)
	go func() {
		_, err := sb.Exec(ctx, sandbox.Cmd{Shell: "echo started; sleep 600", Stdout: started, Timeout: 10 * time.Minute})
		done <- err
	}()
	select {
	case <-started.Seen():
	case err := <-done:
		t.Fatalf("Exec ended early: %v", err)
	}
	if err := sb.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err == nil {
		t.Errorf("Exec running at Close returned no error")
	}
	if err := sb.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := sb.Exec(ctx, sandbox.Cmd{Shell: "true"}); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("Exec after Close = %v; want an error wrapping ErrClosed", err)
	}
}
