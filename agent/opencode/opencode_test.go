package opencode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/changeset"
	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// These tests run the real OpenCode binary (test/tools, or $OPENCODE_BIN)
// offline in a local sandbox, against fakeopenrouter in scripted agent mode
// on 127.0.0.1. One server serves all scenarios of TestRealOpenCode: the
// fake picks the script by the prompt.

const testKey = "sk-or-v1-test-secret-6b1d0c"

func opencodeBinary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("OPENCODE_BIN"); b != "" {
		return b
	}
	b, err := filepath.Abs("../../test/tools/node_modules/.bin/opencode")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Skipf("the OpenCode binary is missing (%v): run `npm ci` in test/tools, or set OPENCODE_BIN", err)
	}
	return b
}

// env is one sandbox with a running OpenCode server and the fake LLM.
type env struct {
	t        testing.TB
	ws       string // the user's workspace (host)
	stateDir string
	provider *local.Provider
	sb       sandbox.Sandbox
	fake     *fakeopenrouter.Server
	srv      *Server
	logs     *syncBuffer
	cut      *cutter

	mu      sync.Mutex
	scripts map[string]*fakeopenrouter.Script
	replies map[string]fakeopenrouter.Reply // fixed answers, by prompt
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv prepares a git workspace, the fake LLM and a local sandbox; start
// starts a server in it.
func newEnv(t testing.TB) *env {
	t.Helper()
	opencodeBinary(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (OpenCode needs it)")
	}
	e := &env{t: t, ws: t.TempDir(), stateDir: t.TempDir(), logs: &syncBuffer{}, cut: &cutter{},
		scripts: map[string]*fakeopenrouter.Script{}, replies: map[string]fakeopenrouter.Reply{}}
	writeFiles(t, e.ws, map[string]string{"README.md": "# demo\n", ".gitignore": "node_modules/\n"})
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = e.ws
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "init")

	e.fake = fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: testKey})
	e.fake.SetHandler(func(req fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
		text := firstUserText(req)
		e.mu.Lock()
		var sc *fakeopenrouter.Script
		for prompt, s := range e.scripts {
			if strings.HasPrefix(text, prompt) {
				sc = s
			}
		}
		rep, fixed := e.replies[text]
		e.mu.Unlock()
		if fixed {
			return rep
		}
		if sc == nil {
			return fakeopenrouter.Reply{Text: "No script for this prompt."}
		}
		return sc.Reply(req)
	})

	var err error
	e.provider, err = local.New(local.Options{StateDir: e.stateDir, Logger: slog.New(slog.DiscardHandler),
		ReadOnlyBinds: local.ToolBinds(opencodeBinary(t))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e.sb, err = e.provider.Open(ctx, sandbox.Spec{Key: "opencode-test", WorkspaceRoot: e.ws})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sb.Close(context.Background()) })
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), testKey) {
			t.Errorf("the key reached the log:\n%s", e.logs.String())
		}
	})
	return e
}

// config is the server configuration of the environment.
func (e *env) config(policy Policy) Config {
	return Config{
		Binary:      opencodeBinary(e.t),
		BaseURL:     e.fake.URL,
		APIKey:      testKey,
		Model:       "anthropic/claude-sonnet-4",
		Permissions: policy,
		Transport:   e.cut,
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) start(policy Policy) {
	e.t.Helper()
	t0 := time.Now()
	srv, err := Start(context.Background(), e.sb, e.config(policy))
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	e.t.Logf("server started in %v", time.Since(t0).Round(time.Millisecond))
	e.srv = srv
	e.t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			e.t.Errorf("close: %v", err)
		}
	})
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func firstUserText(req fakeopenrouter.ChatRequest) string {
	for _, m := range req.Messages {
		if m.Role == "user" {
			return m.Text()
		}
	}
	return ""
}

// step builds a scripted tool call.
func step(tool string, args map[string]any) fakeopenrouter.Step {
	b, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	return fakeopenrouter.Step{Tool: tool, Args: b}
}

func (e *env) script(prompt string, sc *fakeopenrouter.Script) {
	e.mu.Lock()
	e.scripts[prompt] = sc
	e.mu.Unlock()
}

// sync snapshots the workspace into the sandbox and returns the manifest to
// harvest against.
func (e *env) sync(t *testing.T) sandbox.Manifest {
	t.Helper()
	ctx := context.Background()
	if _, _, err := e.sb.Sync(ctx, sandbox.Source{Root: e.ws, IncludeGit: true}); err != nil {
		t.Fatal(err)
	}
	m, err := e.sb.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) harvest(t *testing.T, snap sandbox.Manifest) (map[string]changeset.Change, []changeset.Refusal) {
	t.Helper()
	changes, refused, err := changeset.Harvest(context.Background(), e.sb, snap, changeset.Limits{Ignore: NoisePaths})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]changeset.Change{}
	for _, c := range changes {
		m[c.Path] = c
	}
	return m, refused
}

// recorder is a Handler that records everything.
type recorder struct {
	mu         sync.Mutex
	progress   []string
	deltas     strings.Builder
	perms      []PermissionRequest
	decide     func(PermissionRequest) Reply
	onProgress func(string)
}

func (r *recorder) Progress(msg string) {
	r.mu.Lock()
	r.progress = append(r.progress, msg)
	f := r.onProgress
	r.mu.Unlock()
	if f != nil {
		f(msg)
	}
}

func (r *recorder) TextDelta(d string) {
	r.mu.Lock()
	r.deltas.WriteString(d)
	r.mu.Unlock()
}

func (r *recorder) Permission(ctx context.Context, req PermissionRequest) (Reply, error) {
	r.mu.Lock()
	r.perms = append(r.perms, req)
	decide := r.decide
	r.mu.Unlock()
	if decide == nil {
		return ReplyOnce, nil
	}
	return decide(req), nil
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deltas.String()
}

func (r *recorder) progressLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.progress)
}

// noSecret fails when the key appears in anything the run returned.
func noSecret(t *testing.T, res *RunResult, rec *recorder) {
	t.Helper()
	b, _ := json.Marshal(res)
	all := string(b) + rec.text() + strings.Join(rec.progressLog(), "\n")
	for _, p := range rec.perms {
		pb, _ := json.Marshal(p)
		all += string(pb)
	}
	if strings.Contains(all, testKey) {
		t.Errorf("the key leaked into the run's output: %s", all)
	}
}

// cutter is an http.RoundTripper that can cut event streams after a number
// of events, to test reconnection. The setting is read at every event, so
// it applies to the stream already open too.
type cutter struct {
	every atomic.Int64 // cut each /event stream after this many events (0: never)
	cuts  atomic.Int64
	base  http.Transport
}

func (c *cutter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil || req.URL.Path != "/event" {
		return resp, err
	}
	resp.Body = &cutBody{rc: resp.Body, c: c}
	return resp, nil
}

// cutBody fails the read after `every` complete events ("\n\n").
type cutBody struct {
	rc   io.ReadCloser
	c    *cutter
	n    int64 // events read
	cut  bool
	prev byte
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.cut {
		b.rc.Close()
		return 0, errors.New("test: event stream cut")
	}
	n, err := b.rc.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' && b.prev == '\n' {
			b.n++
			if every := b.c.every.Load(); every > 0 && b.n >= every {
				b.cut = true
				b.c.cuts.Add(1)
				return i + 1, nil
			}
		}
		b.prev = p[i]
	}
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

func TestRealOpenCode(t *testing.T) {
	t.Parallel() // independent servers: their start-ups overlap
	e := newEnv(t)
	e.start(Policy{}) // ask for everything: every scenario goes through the handler
	if v := e.srv.Version(); v != TestedVersion {
		t.Logf("OpenCode %s (tested with %s)", v, TestedVersion)
	}

	t.Run("HTMLPage", func(t *testing.T) {
		const prompt = "Create a simple HTML page with a button"
		page := "<!doctype html>\n<html>\n<body>\n  <button id=\"hi\">Say hi</button>\n</body>\n</html>\n"
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("write", map[string]any{"filePath": "index.html", "content": page}),
				step("bash", map[string]any{"command": `node -e 'const h=require("fs").readFileSync("index.html","utf8"); console.log(h.includes("<button") ? "button found" : "no button")'`, "description": "Check the page"}),
			},
			FinalText: "Created index.html with a button.",
		})
		snap := e.sync(t)
		rec := &recorder{}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt, Context: "File: README.md"}, rec)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if res.Text != "Created index.html with a button." || rec.text() != res.Text {
			t.Errorf("text %q, streamed %q", res.Text, rec.text())
		}
		if len(res.Commands) != 1 || res.Commands[0].ExitCode == nil || *res.Commands[0].ExitCode != 0 ||
			strings.TrimSpace(res.Commands[0].OutputTail) != "button found" || !strings.HasPrefix(res.Commands[0].Command, "node -e") {
			t.Errorf("commands %+v", res.Commands)
		}
		if !slices.Equal(res.ToolFiles, []string{"index.html"}) {
			t.Errorf("tool files %v", res.ToolFiles)
		}
		if res.Steps != 3 || res.Tokens.Input != 300 || res.Tokens.Output != 30 {
			t.Errorf("steps %d tokens %+v", res.Steps, res.Tokens)
		}
		prog := strings.Join(rec.progressLog(), "\n")
		for _, want := range []string{"Step 1", "Writing index.html", "Running: node -e", "Step 3"} {
			if !strings.Contains(prog, want) {
				t.Errorf("progress lacks %q:\n%s", want, prog)
			}
		}
		// Asked: the write, then the command.
		if len(rec.perms) != 2 || rec.perms[0].Kind != "edit" || rec.perms[0].Path != "index.html" ||
			!strings.Contains(rec.perms[0].Diff, "+  <button") || rec.perms[1].Kind != "bash" || !strings.HasPrefix(rec.perms[1].Title, "Run: node -e") {
			t.Errorf("permissions %+v", rec.perms)
		}
		changes, refused := e.harvest(t, snap)
		if len(changes) != 1 || changes["index.html"].Action != changeset.Created || string(changes["index.html"].Content) != page {
			t.Errorf("changes %+v", changes)
		}
		if len(refused) != 0 {
			t.Errorf("refused %+v", refused)
		}
		if _, err := os.Stat(filepath.Join(e.ws, "index.html")); err == nil {
			t.Error("the agent wrote into the user's workspace")
		}
		// The context went to the model as a second text part, the key as the
		// bearer token (checked by the fake), and the model as configured.
		reqs := e.fake.ChatRequests()
		last := reqs[len(reqs)-1]
		if last.Model != "anthropic/claude-sonnet-4" || !strings.Contains(string(last.Raw), "File: README.md") {
			t.Errorf("model request: model %q", last.Model)
		}
		noSecret(t, res, rec)
	})

	t.Run("ExpressAPI", func(t *testing.T) {
		const prompt = "Create a Node.js Express API with a /hello endpoint"
		pkg := "{\n  \"name\": \"hello-api\",\n  \"version\": \"1.0.0\",\n  \"main\": \"server.js\",\n  \"scripts\": {\"start\": \"node server.js\"},\n  \"dependencies\": {\"express\": \"^4.21.2\"}\n}\n"
		server := "const express = require('express');\nconst app = express();\n\napp.get('/hello', (req, res) => res.json({ message: 'Hello, world!' }));\n\napp.listen(3000, () => console.log('listening on 3000'));\n"
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("write", map[string]any{"filePath": "package.json", "content": pkg}),
				step("write", map[string]any{"filePath": "server.js", "content": server}),
				step("edit", map[string]any{"filePath": "server.js", "oldString": "app.listen(3000,", "newString": "const port = process.env.PORT || 3000;\napp.listen(port,"}),
				step("bash", map[string]any{"command": "node --check server.js && npm pkg get name", "description": "Check syntax"}),
				step("bash", map[string]any{"command": "npm test", "description": "Run the tests"}),
			},
			FinalText: "The API is in server.js: GET /hello answers {\"message\": \"Hello, world!\"}.",
		})
		snap := e.sync(t)
		rec := &recorder{}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, rec)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if len(res.Commands) != 2 {
			t.Fatalf("commands %+v", res.Commands)
		}
		c0, c1 := res.Commands[0], res.Commands[1]
		if c0.ExitCode == nil || *c0.ExitCode != 0 || strings.TrimSpace(c0.OutputTail) != `"hello-api"` {
			t.Errorf("first command %+v", c0)
		}
		if c1.Command != "npm test" || c1.ExitCode == nil || *c1.ExitCode == 0 || !strings.Contains(c1.OutputTail, "Missing script") {
			t.Errorf("npm test %+v", c1)
		}
		if !slices.Equal(res.ToolFiles, []string{"package.json", "server.js"}) {
			t.Errorf("tool files %v", res.ToolFiles)
		}
		changes, refused := e.harvest(t, snap)
		wantServer := strings.Replace(server, "app.listen(3000,", "const port = process.env.PORT || 3000;\napp.listen(port,", 1)
		if len(changes) != 2 || string(changes["package.json"].Content) != pkg || string(changes["server.js"].Content) != wantServer {
			t.Errorf("changes %+v", changes)
		}
		if len(refused) != 0 {
			t.Errorf("refused %+v", refused)
		}
		// Harvest and tool parts agree.
		var list []changeset.Change
		for _, c := range changes {
			list = append(list, c)
		}
		if unseen, unreported := changeset.CrossCheck(list, refused, res.ToolFiles); len(unseen)+len(unreported) != 0 {
			t.Errorf("cross-check: unseen %v, unreported %v", unseen, unreported)
		}
		noSecret(t, res, rec)
	})

	t.Run("Hostile", func(t *testing.T) {
		if st := e.provider.Status(); !st.Isolated {
			t.Skipf("the local sandbox runs without bubblewrap here (%s): shell-level escapes are not contained", st.Reason)
		}
		const prompt = "Tidy up the project"
		root := e.sb.Root()
		outsideDir := filepath.Join(e.stateDir, "outside") // hidden from the sandbox
		if err := os.MkdirAll(outsideDir, 0o755); err != nil {
			t.Fatal(err)
		}
		upTwo := filepath.Clean(filepath.Join(root, "../../outside.txt"))
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("bash", map[string]any{"command": "ln -s " + outsideDir + " escape && ln -s " + e.ws + " userws && echo linked", "description": "Link"}),
				step("write", map[string]any{"filePath": "escape/through-link.txt", "content": "through a symlink\n"}),
				step("write", map[string]any{"filePath": "userws/pwned.txt", "content": "into the user's workspace\n"}),
				// OpenCode checks the paths it sees in a bash command; a script
				// hides them, so only the sandbox stands in the way.
				step("write", map[string]any{"filePath": "escape.sh", "content": "echo a > ../../outside.txt\necho b > " + outsideDir + "/bash-abs.txt\necho c > " + e.ws + "/pwned-bash.txt\nmkdir -p .git/hooks && printf '#!/bin/sh\\necho hook\\n' > .git/hooks/post-commit\necho env-count: $(env | grep -c " + testKey + ")\ncat ~/" + keyFile + "; echo\n"}),
				step("bash", map[string]any{"command": "sh escape.sh", "description": "Escape"}),
				step("write", map[string]any{"filePath": "ok.txt", "content": "fine\n"}),
				step("write", map[string]any{"filePath": "../../outside.txt", "content": "up two\n"}),
				step("write", map[string]any{"filePath": filepath.Join(outsideDir, "abs.txt"), "content": "absolute\n"}),
			},
			FinalText: "Done.",
		})
		snap := e.sync(t)
		rec := &recorder{}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, rec)
		if err != nil {
			t.Logf("run: %v", err) // OpenCode may end the turn at a refused tool
		}
		// Nothing outside the working copy changed.
		for _, p := range []string{upTwo, filepath.Join(outsideDir, "through-link.txt"), filepath.Join(outsideDir, "bash-abs.txt"),
			filepath.Join(outsideDir, "abs.txt"), filepath.Join(e.ws, "pwned.txt"), filepath.Join(e.ws, "pwned-bash.txt")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("written outside the working copy: %s", p)
			}
		}
		if ents, _ := os.ReadDir(outsideDir); len(ents) != 0 {
			t.Errorf("outside dir has %v", ents)
		}
		changes, refused := e.harvest(t, snap)
		for p := range changes {
			if p != "ok.txt" && p != "escape.sh" {
				t.Errorf("unexpected change %s", p)
			}
		}
		reasons := map[string]string{}
		for _, r := range refused {
			reasons[r.Path] = r.Reason
		}
		for _, p := range []string{"escape", "userws"} {
			if !strings.Contains(reasons[p], "outside the workspace") {
				t.Errorf("symlink %s not reported: %+v", p, refused)
			}
		}
		if !strings.HasSuffix(reasons[changeset.GitSummaryPath], "under .git/ left out") {
			t.Errorf(".git change not reported: %+v", refused)
		}
		// The key never reached the agent's environment, and the key file
		// read by the agent is redacted in what the run reports.
		var escape *Command
		for i := range res.Commands {
			if res.Commands[i].Command == "sh escape.sh" {
				escape = &res.Commands[i]
			}
		}
		if escape != nil {
			t.Logf("escape output: %s", escape.OutputTail)
		}
		if escape == nil || !strings.Contains(escape.OutputTail, "[REDACTED]") {
			t.Errorf("escape command %+v", escape)
		}
		for _, req := range e.fake.ChatRequests() {
			for _, m := range req.Messages {
				if m.Role == "tool" && strings.Contains(m.Text(), "env-count: 0\n") {
					goto envChecked
				}
			}
		}
		t.Errorf("the agent's environment holds the key (env | grep -c did not print 0)")
	envChecked:
		noSecret(t, res, rec)
	})

	t.Run("PermissionRejected", func(t *testing.T) {
		const prompt = "Delete the readme"
		e.script(prompt, &fakeopenrouter.Script{
			Steps:     []fakeopenrouter.Step{step("bash", map[string]any{"command": "rm README.md", "description": "Delete"})},
			FinalText: "Deleted.",
		})
		snap := e.sync(t)
		rec := &recorder{decide: func(PermissionRequest) Reply { return ReplyReject }}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, rec)
		if err != nil {
			t.Logf("run: %v", err)
		}
		if len(rec.perms) != 1 || rec.perms[0].Command != "rm README.md" || rec.perms[0].Title != "Run: rm README.md" {
			t.Errorf("permissions %+v", rec.perms)
		}
		if len(res.Commands) != 1 || res.Commands[0].ExitCode != nil {
			t.Errorf("commands %+v", res.Commands)
		}
		if changes, _ := e.harvest(t, snap); len(changes) != 0 {
			t.Errorf("changes %+v", changes)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		const prompt = "Run the long job"
		marker := "61.25" // a sleep no other process runs
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("write", map[string]any{"filePath": "partial.txt", "content": "half done\n"}),
				step("bash", map[string]any{"command": "sleep " + marker + " && echo late > late.txt", "description": "Long job"}),
			},
			FinalText: "Finished.",
		})
		e.sync(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := &recorder{onProgress: func(msg string) {
			if strings.HasPrefix(msg, "Running: sleep") {
				cancel()
			}
		}}
		res, err := e.srv.Run(ctx, Task{Prompt: prompt}, rec)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v, want context.Canceled", err)
		}
		// OpenCode aborted the turn: the session is idle, its last message
		// carries the abort, and the sleep is gone.
		var status map[string]sessionStatus
		if err := e.srv.do(context.Background(), http.MethodGet, "/session/status", nil, &status); err != nil {
			t.Fatal(err)
		}
		if st, ok := status[res.SessionID]; ok && st.Type != "idle" {
			t.Errorf("session status %+v after the abort", st)
		}
		var msgs []message
		if err := e.srv.do(context.Background(), http.MethodGet, "/session/"+res.SessionID+"/message", nil, &msgs); err != nil {
			t.Fatal(err)
		}
		lastInfo := msgs[len(msgs)-1].Info
		if lastInfo.Error == nil || lastInfo.Error.Name != "MessageAbortedError" {
			t.Errorf("last message %+v", lastInfo)
		}
		for i := 0; processRunning("sleep", marker); i++ {
			if i == 50 {
				t.Fatal("the agent's command survived the abort")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The user's workspace is untouched.
		for _, p := range []string{"partial.txt", "late.txt"} {
			if _, err := os.Stat(filepath.Join(e.ws, p)); err == nil {
				t.Errorf("%s reached the workspace", p)
			}
		}
	})

	t.Run("CancelWhileAsking", func(t *testing.T) {
		const prompt = "Ask, then be cancelled"
		e.script(prompt, &fakeopenrouter.Script{
			Steps:     []fakeopenrouter.Step{step("bash", map[string]any{"command": "echo never", "description": "Wait"})},
			FinalText: "Never.",
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		handlerDone := make(chan error, 1)
		rec := &recorder{}
		h := &blockingHandler{recorder: rec, asked: cancel, done: handlerDone}
		res, err := e.srv.Run(ctx, Task{Prompt: prompt}, h)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v", err)
		}
		if herr := <-handlerDone; !errors.Is(herr, context.Canceled) {
			t.Errorf("the handler's context: %v", herr)
		}
		if len(res.Commands) != 1 || res.Commands[0].ExitCode != nil {
			t.Errorf("commands %+v", res.Commands)
		}
	})

	t.Run("SubAgent", func(t *testing.T) {
		const prompt = "Delegate the work"
		const childPrompt = "Sub-task: write c.txt and say hello"
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("task", map[string]any{"description": "Write c.txt", "prompt": childPrompt, "subagent_type": "general"}),
			},
			FinalText: "Delegated.",
		})
		e.script(childPrompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				step("write", map[string]any{"filePath": "c.txt", "content": "from the sub-agent\n"}),
				step("bash", map[string]any{"command": "echo from-child", "description": "Say hello"}),
			},
			FinalText: "Child done.",
		})
		snap := e.sync(t)
		rec := &recorder{}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, rec)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if res.Text != "Delegated." {
			t.Errorf("text %q (a sub-agent's text is not the answer)", res.Text)
		}
		if len(res.Commands) != 1 || res.Commands[0].Command != "echo from-child" || strings.TrimSpace(res.Commands[0].OutputTail) != "from-child" {
			t.Errorf("commands %+v", res.Commands)
		}
		if !slices.Equal(res.ToolFiles, []string{"c.txt"}) {
			t.Errorf("tool files %v", res.ToolFiles)
		}
		if len(rec.perms) != 2 || rec.perms[0].SessionID == res.SessionID {
			t.Errorf("the sub-agent's permissions %+v", rec.perms)
		}
		changes, _ := e.harvest(t, snap)
		if string(changes["c.txt"].Content) != "from the sub-agent\n" {
			t.Errorf("changes %+v", changes)
		}
	})

	t.Run("ModelError", func(t *testing.T) {
		const prompt = "Anything, with a revoked key"
		e.mu.Lock()
		e.replies[prompt] = fakeopenrouter.Reply{Status: http.StatusUnauthorized,
			Error: &fakeopenrouter.ErrorObject{Message: "User not found. (key " + testKey + ")"}}
		e.mu.Unlock()
		rec := &recorder{}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, rec)
		var ae *AgentError
		if !errors.As(err, &ae) || ae.Name == "" || !strings.Contains(ae.Message, "User not found") {
			t.Fatalf("err = %v, want an AgentError", err)
		}
		if strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("the key is not redacted: %v", err)
		}
		if res == nil || res.SessionID == "" {
			t.Errorf("result %+v", res)
		}
		t.Logf("agent error: %v", err)
	})

	t.Run("QuestionToolOff", func(t *testing.T) {
		const prompt = "Ask me something"
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{step("question", map[string]any{"questions": []any{map[string]any{
				"question": "Which framework?", "header": "Framework",
				"options": []any{map[string]any{"label": "Express", "description": "Node"}}}}})},
			FinalText: "I picked Express.",
		})
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, &recorder{})
		if err != nil || res.Text != "I picked Express." {
			t.Fatalf("run: %+v %v", res, err)
		}
		reqs := e.fake.ChatRequests()
		for _, tool := range reqs[len(reqs)-1].Tools {
			if strings.Contains(string(tool), `"name":"question"`) {
				t.Error("the question tool was offered")
			}
		}
	})

	t.Run("DroppedEventStream", func(t *testing.T) {
		const prompt = "Build it with a flaky connection"
		e.script(prompt, &fakeopenrouter.Script{
			Steps: []fakeopenrouter.Step{
				{Tool: "write", Args: mustJSON(map[string]any{"filePath": "a.txt", "content": "a\n"}), Text: "Writing the first file."},
				step("bash", map[string]any{"command": "echo one", "description": "one"}),
				step("write", map[string]any{"filePath": "b.txt", "content": "b\n"}),
				step("bash", map[string]any{"command": "echo two; exit 4", "description": "two"}),
			},
			FinalText: "Both files are written and both commands ran.",
		})
		e.sync(t)
		before := e.cut.cuts.Load()
		e.cut.every.Store(5)
		defer e.cut.every.Store(0)
		rec := &recorder{}
		res, err := e.srv.Run(context.Background(), Task{Prompt: prompt}, rec)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		t.Logf("cuts: %d", e.cut.cuts.Load()-before)
		if cuts := e.cut.cuts.Load() - before; cuts < 3 {
			t.Fatalf("the stream was cut %d times; the test needs several", cuts)
		}
		if len(res.Commands) != 2 || res.Commands[0].Command != "echo one" || strings.TrimSpace(res.Commands[0].OutputTail) != "one" ||
			res.Commands[1].Command != "echo two; exit 4" || res.Commands[1].ExitCode == nil || *res.Commands[1].ExitCode != 4 {
			t.Errorf("commands %+v", res.Commands)
		}
		if !slices.Equal(res.ToolFiles, []string{"a.txt", "b.txt"}) {
			t.Errorf("tool files %v", res.ToolFiles)
		}
		want := "Writing the first file.\n\nBoth files are written and both commands ran."
		if res.Text != want || rec.text() != want {
			t.Errorf("text %q, streamed %q", res.Text, rec.text())
		}
		// Each tool reported once, each permission asked once.
		prog := rec.progressLog()
		for _, p := range []string{"Writing a.txt", "Running: echo one", "Writing b.txt", "Running: echo two; exit 4"} {
			if n := count(prog, p); n != 1 {
				t.Errorf("progress %q %d times: %q", p, n, prog)
			}
		}
		if len(rec.perms) != 4 {
			t.Errorf("%d permission requests, want 4: %+v", len(rec.perms), rec.perms)
		}
	})
}

// blockingHandler asks forever: it cancels the run when asked and reports
// how its own context ended.
type blockingHandler struct {
	*recorder
	asked context.CancelFunc
	done  chan error
}

func (h *blockingHandler) Permission(ctx context.Context, req PermissionRequest) (Reply, error) {
	h.asked()
	<-ctx.Done()
	h.done <- ctx.Err()
	return ReplyOnce, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// processRunning reports whether a process whose command line is exactly
// args runs on this machine (the sandbox's pid namespace is visible from
// the host's /proc).
func processRunning(args ...string) bool {
	want := strings.Join(args, "\x00") + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && string(b) == want {
			return true
		}
	}
	return false
}
