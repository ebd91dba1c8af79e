package opencode

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/agent/changeset"
	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

func TestStartMissingBinary(t *testing.T) {
	p, err := local.New(local.Options{StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.Open(context.Background(), sandbox.Spec{Key: "missing", WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())
	_, err = Start(context.Background(), sb, Config{Binary: "/nonexistent/bin/opencode", APIKey: testKey, Model: "m"})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "npm install -g opencode-ai@"+TestedVersion) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("the key is in the error")
	}
	if _, err := Start(context.Background(), sb, Config{Model: "m"}); !errors.Is(err, ErrNoAPIKey) {
		t.Fatalf("no key: %v", err)
	}
}

// TestPoolAndPolicy: the pool keeps one server per sandbox, reuses it and
// replaces it when it died; the server runs with edit allowed and bash
// denied in OpenCode's own config, so nothing reaches the handler.
func TestPoolAndPolicy(t *testing.T) {
	t.Parallel() // independent servers: their start-ups overlap
	e := newEnv(t)
	cfg := e.config(Policy{Edit: Allow, Bash: Deny})
	pool := NewPool()
	defer pool.Close()
	ctx := context.Background()

	s1, err := pool.Server(ctx, e.sb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := pool.Server(ctx, e.sb, cfg); err != nil || s2 != s1 {
		t.Fatalf("second call: %p %v, want the same server %p", s2, err, s1)
	}

	const prompt = "Write and run"
	e.script(prompt, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			step("write", map[string]any{"filePath": "a.txt", "content": "a\n"}),
			step("bash", map[string]any{"command": "echo should-not-run > ran.txt", "description": "Run"}),
		},
		FinalText: "Done.",
	})
	snap := e.sync(t)
	rec := &recorder{decide: func(PermissionRequest) Reply { t.Error("the handler was asked"); return ReplyReject }}
	res, err := s1.Run(ctx, Task{Prompt: prompt}, rec)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// A denied tool is not offered to the model at all.
	for _, req := range e.fake.ChatRequests() {
		for _, tool := range req.Tools {
			if strings.Contains(string(tool), `"name":"bash"`) {
				t.Fatal("bash was offered to the model")
			}
		}
	}
	if len(rec.perms) != 0 || len(res.Commands) != 0 || res.Text != "Done." {
		t.Errorf("permissions %+v, commands %+v, text %q", rec.perms, res.Commands, res.Text)
	}
	changes, _ := e.harvest(t, snap)
	if len(changes) != 1 || changes["a.txt"].Action != changeset.Created {
		t.Errorf("changes %+v", changes)
	}

	// The server dies (killed by its pid, found by its port).
	u, _ := url.Parse(s1.URL())
	pid := findProcess(t, "serve\x00--port\x00"+u.Port()+"\x00")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s1.Done()
	if _, err := s1.Run(ctx, Task{Prompt: "ping"}, nil); !errors.Is(err, ErrServerExited) {
		t.Errorf("run on a dead server: %v", err)
	}
	s3, err := pool.Server(ctx, e.sb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s3 == s1 {
		t.Fatal("the dead server was reused")
	}
	e.script("ping", &fakeopenrouter.Script{FinalText: "pong"})
	if res, err := s3.Run(ctx, Task{Prompt: "ping"}, nil); err != nil || res.Text != "pong" {
		t.Fatalf("run on the new server: %+v %v", res, err)
	}
	if err := pool.Release(e.sb.ID()); err != nil {
		t.Fatal(err)
	}
	if s3.Err() == nil {
		t.Error("released server still runs")
	}
	other := cfg
	other.APIKey = "other"
	if fingerprint(cfg) == fingerprint(other) {
		t.Error("a new key does not restart the server")
	}
}

// findProcess returns the pid of the one process whose command line holds
// the NUL-separated args.
func findProcess(t *testing.T, args string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), args) {
			continue
		}
		var pid int
		for _, c := range d.Name() {
			pid = pid*10 + int(c-'0')
		}
		return pid
	}
	t.Fatalf("no process with %q", args)
	return 0
}
