// Package nvimtest runs the opencode.nvim plugin in real headless Neovim:
// 0.7.2 (Debian bookworm's package, `nvim` on PATH) and the newer Neovim that
// test/e2e/install.sh unpacks (test/e2e/.cache/nvim012/nvim), against the
// built opencode-lsp and a spec-faithful fake OpenRouter; and Neovim 0.10 (the vim.lsp.start path) when
// editors/nvim/test/install.sh has unpacked it.
//
// spec.lua (next to this file) plays the user: it sets the plugin up, opens a
// C file, chooses code actions in Neovim's own menu (vim.ui.select), types a
// question (vim.ui.input), runs :OpenCodeExplain on a range, :OpenCodeRun,
// :OpenCodeStatus, :checkhealth opencode and :help opencode, and writes a
// JSON report that the test asserts on. A Neovim that is not installed is
// skipped with the reason, unless E2E_REQUIRE is "all" or names "nvim07",
// "nvim010" or "nvim012", in which case the test fails.
package nvimtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/chat"
	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
)

const chatKey = "sk-or-v1-nvim-e2e-0123456789abcdef"

const question = "Is the initialisation of n correct?"

var answer = []string{"**Short answer:** no — ", "`n` is an `int` initialised ", "from a string literal."}

const generatePrompt = "Add a header for main.c"

const utilH = "#pragma once\n\nint twice(int n);\n"

const mainC = `#include <stdio.h>

int main(void) {
	int n = "five";
	printf("%d\n", n);
	return 0;
}
`

type view struct {
	Label    string `json:"label"`
	Text     string `json:"text"`
	Done     bool   `json:"done"`
	Error    string `json:"error"`
	Deltas   int    `json:"deltas"`
	Thread   string `json:"thread"`
	Buffer   string `json:"buffer"`
	Filetype string `json:"filetype"`
	Float    bool   `json:"float"`
}

type report struct {
	Nvim   string   `json:"nvim"`
	Errors []string `json:"errors"`
	Steps  []string `json:"steps"`
	Client struct {
		Name           string   `json:"name"`
		RootDir        string   `json:"root_dir"`
		OffsetEncoding string   `json:"offset_encoding"`
		Commands       []string `json:"commands"`
		Attached       bool     `json:"attached"`
	} `json:"client"`
	Menus        [][]string `json:"menus"`
	InputPrompts []string   `json:"input_prompts"`
	Confirm      string     `json:"confirm"`
	Generate     *struct {
		Err    any `json:"err"`
		Result *struct {
			RunID   string `json:"runId"`
			Message string `json:"message"`
			Files   []struct {
				Path   string `json:"path"`
				Action string `json:"action"`
			} `json:"files"`
			Applied bool `json:"applied"`
		} `json:"result"`
	} `json:"generate"`
	GeneratedBuffer   any    `json:"generatedBuffer"`
	GeneratedModified any    `json:"generatedModified"`
	GenerateView      *view  `json:"generateView"`
	CodeActionExplain *view  `json:"codeActionExplain"`
	CodeActionAsk     *view  `json:"codeActionAsk"`
	Explain           *view  `json:"explain"`
	StatuslineRunning string `json:"statuslineRunning"`
	Cancelled         *view  `json:"cancelled"`
	CancelResult      *struct {
		Cancelled []string `json:"cancelled"`
	} `json:"cancelResult"`
	Statusline      []string `json:"statusline"`
	ProgressEvents  int      `json:"progressEvents"`
	StatuslineAfter string   `json:"statuslineAfter"`
	Run             *struct {
		Err    any `json:"err"`
		Result *struct {
			RunID       string         `json:"runId"`
			Command     string         `json:"command"`
			ExitCode    int            `json:"exitCode"`
			Diagnostics map[string]int `json:"diagnostics"`
		} `json:"result"`
	} `json:"run"`
	Diagnostics []struct {
		Lnum     int    `json:"lnum"`
		Col      int    `json:"col"`
		Source   string `json:"source"`
		Message  string `json:"message"`
		Severity int    `json:"severity"`
		Code     any    `json:"code"`
	} `json:"diagnostics"`
	Status *struct {
		Err    any `json:"err"`
		Result *struct {
			Isolation string `json:"isolation"`
			Runs      []struct {
				RunID, Kind, State string
			} `json:"runs"`
		} `json:"result"`
	} `json:"status"`
	Health string `json:"health"`
	Help   struct {
		File    string `json:"file"`
		Line    string `json:"line"`
		Buftype string `json:"buftype"`
	} `json:"help"`
	HelpRun       string `json:"helpRun"`
	Notifications []struct {
		Msg   string `json:"msg"`
		Level int    `json:"level"`
	} `json:"notifications"`
}

type neovim struct {
	name string
	path string // "" = not installed
	why  string
}

func neovims(repo string) []neovim {
	var out []neovim
	if p, err := exec.LookPath("nvim"); err == nil {
		out = append(out, neovim{name: "nvim07", path: p})
	} else {
		out = append(out, neovim{name: "nvim07", why: "nvim (Debian's neovim 0.7.2) is not on PATH (apt-get install neovim)"})
	}
	// 0.10: the vim.lsp.start path (editors/nvim/test/install.sh)
	own := os.Getenv("NVIM_TEST_CACHE")
	if own == "" {
		own = filepath.Join(repo, "editors", "nvim", ".cache")
	}
	if p := filepath.Join(own, "nvim010", "nvim"); fileExists(p) {
		out = append(out, neovim{name: "nvim010", path: p})
	} else {
		out = append(out, neovim{name: "nvim010", why: p + " is not installed (editors/nvim/test/install.sh)"})
	}
	cache := os.Getenv("E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(repo, "test", "e2e", ".cache")
	}
	p := filepath.Join(cache, "nvim012", "nvim")
	if _, err := os.Stat(p); err == nil {
		out = append(out, neovim{name: "nvim012", path: p})
	} else {
		out = append(out, neovim{name: "nvim012", why: p + " is not installed (test/e2e/install.sh nvim)"})
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func required(name string) bool {
	r := os.Getenv("E2E_REQUIRE")
	return r == "all" || slices.Contains(strings.Split(r, ","), name)
}

func TestPlugin(t *testing.T) {
	here, _ := os.Getwd()
	plugin := filepath.Dir(here)
	repo := filepath.Clean(filepath.Join(plugin, "..", ".."))
	bin := filepath.Join(t.TempDir(), "opencode-lsp")
	build := exec.Command("go", "build", "-o", bin, "./cmd/opencode-lsp")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/opencode-lsp: %v\n%s", err, out)
	}
	for _, nv := range neovims(repo) {
		t.Run(nv.name, func(t *testing.T) {
			if nv.path == "" {
				if required(nv.name) {
					t.Fatal(nv.why)
				}
				t.Skip(nv.why)
			}
			t.Parallel()
			runSpec(t, nv, plugin, bin)
		})
	}
}

func runSpec(t *testing.T, nv neovim, plugin, bin string) {
	tmp := t.TempDir()
	// the server's chat (its system prompt) gets the streamed answer; the OpenCode agent (every other request) is
	// scripted to write util.h
	agent := &fakeopenrouter.Script{
		Steps:     []fakeopenrouter.Step{{Tool: "write", Args: mustJSON(map[string]string{"filePath": "util.h", "content": utilH})}},
		FinalText: "Added util.h.",
	}
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: chatKey})
	fake.SetHandler(func(req fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
		if len(req.Messages) > 0 && req.Messages[0].Text() == chat.SystemPrompt {
			if strings.Contains(req.Messages[len(req.Messages)-1].Text(), "Please wait forever") {
				// a first chunk, then the stream hangs: only a cancel ends it
				return fakeopenrouter.Reply{Chunks: []string{"Thinking… ", "never shown"}, Hang: fakeopenrouter.HangAfterFirstChunk}
			}
			return fakeopenrouter.Reply{Chunks: answer, ChunkDelay: 20 * time.Millisecond}
		}
		return agent.Reply(req)
	})
	opencode := filepath.Join(plugin, "..", "..", "test", "tools", "node_modules", ".bin", "opencode")
	if _, err := os.Stat(opencode); err != nil {
		t.Logf("the OpenCode agent is not installed in test/tools (npm ci there): :OpenCodeGenerate is not exercised")
		opencode = ""
	}
	ws := filepath.Join(tmp, "ws")
	write(t, filepath.Join(ws, "Makefile"), "check:\n\tgcc -Wall -fsyntax-only main.c\n")
	write(t, filepath.Join(ws, "main.c"), mainC)
	// the plugin as a plugin manager installs it: a copy on the runtimepath (so that :helptags writes there)
	rtp := filepath.Join(tmp, "opencode.nvim")
	for _, d := range []string{"lua", "plugin", "lsp", "doc"} {
		copyDir(t, filepath.Join(plugin, d), filepath.Join(rtp, d))
	}
	home := filepath.Join(tmp, "home")
	rep := filepath.Join(tmp, "report.json")
	serverLog := filepath.Join(tmp, "server.log")
	cmd := exec.Command(nv.path, "--headless", "--clean", "--cmd", "set rtp^="+rtp, "-c", "luafile "+filepath.Join(plugin, "test", "spec.lua"))
	cmd.Dir = ws
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local/share"), "XDG_STATE_HOME="+filepath.Join(home, ".local/state"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "TMPDIR="+tmp,
		"OPENROUTER_API_KEY="+chatKey, "OPENROUTER_BASE_URL="+fake.URL,
		"OC_SERVER="+bin, "OC_ROOT="+ws, "OC_REPORT="+rep, "OC_LOG="+serverLog, "OC_DOC="+filepath.Join(rtp, "doc"),
		"OC_QUESTION="+question, "OC_GENERATE="+generatePrompt, "OC_OPENCODE="+opencode, "PATH="+toolsPath(plugin))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("nvim: %v", err)
		}
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("nvim did not finish within 3 minutes")
	}
	var r report
	bs, err := os.ReadFile(rep)
	if err != nil {
		t.Fatalf("no report: %v\nnvim output:\n%s\nserver log:\n%s", err, out.String(), readTail(serverLog))
	}
	if err := json.Unmarshal(bs, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, bs)
	}
	defer func() {
		if t.Failed() {
			pretty, _ := json.MarshalIndent(r, "", "  ")
			t.Logf("report:\n%s\nnvim output:\n%s\nserver log:\n%s", pretty, out.String(), readTail(serverLog))
		}
	}()
	check(t, &r, fake, ws)
	if opencode != "" {
		checkGenerate(t, &r, ws)
	}
	if bs, _ := os.ReadFile(serverLog); bytes.Contains(bs, []byte(chatKey)) {
		t.Errorf("the OpenRouter key is in the server log")
	}
	t.Logf("Neovim %s: %s", r.Nvim, strings.Join(r.Steps, ", "))
	if testing.Verbose() {
		t.Logf("nvim output:\n%s", out.String())
	}
	// nothing the user would see as an error or a deprecation notice
	for _, bad := range []string{"deprecated", "Error", "E5108", "stack traceback"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("nvim printed %q:\n%s", bad, out.String())
		}
	}
}

func check(t *testing.T, r *report, fake *fakeopenrouter.Server, ws string) {
	t.Helper()
	for _, e := range r.Errors {
		t.Errorf("spec: %s", e)
	}
	full := strings.Join(answer, "")
	if r.Client.Name != "opencode" || !r.Client.Attached || r.Client.RootDir != ws {
		t.Errorf("client %+v: want 'opencode' attached with root %s (Makefile marks the root)", r.Client, ws)
	}
	// native vim.lsp.buf.code_action() listed the server's actions in Neovim's menu
	if len(r.Menus) < 2 {
		t.Fatalf("code action menus %v: want two", r.Menus)
	}
	for _, want := range []string{"OpenCode: Explain selection", "OpenCode: Ask about selection…", "OpenCode: Generate…", "OpenCode: Run in sandbox"} {
		if !slices.ContainsFunc(r.Menus[0], func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("code action menu %q lacks %q", r.Menus[0], want)
		}
	}
	checkView := func(name string, v *view, label string) {
		t.Helper()
		if v == nil {
			t.Errorf("%s: no answer view", name)
			return
		}
		if !strings.HasPrefix(v.Label, label) || v.Text != full || !v.Done || v.Error != "" || v.Thread == "" {
			t.Errorf("%s: view %+v, want label %q, done, text %q", name, v, label, full)
		}
		// streamed: one delta per chunk, shown in a float holding a markdown buffer with the final text
		if v.Deltas != len(answer) || !v.Float || v.Filetype != "markdown" || !strings.Contains(v.Buffer, "no — `n` is an `int`") {
			t.Errorf("%s: %d deltas (want %d), float %v, filetype %q, buffer %q", name, v.Deltas, len(answer), v.Float, v.Filetype, v.Buffer)
		}
	}
	checkView("code action Explain", r.CodeActionExplain, "Explain main.c")
	checkView("code action Ask", r.CodeActionAsk, question)
	checkView(":3,5OpenCodeExplain", r.Explain, "Explain main.c:3-5")
	if len(r.InputPrompts) == 0 || !strings.Contains(r.InputPrompts[0], "ask") {
		t.Errorf("Ask about selection… did not prompt with vim.ui.input (prompts %q)", r.InputPrompts)
	}

	// what reached the model: the question typed, and exactly lines 3-5 for the range
	var sawQuestion, sawRange bool
	for _, req := range fake.ChatRequests() {
		last := req.Messages[len(req.Messages)-1].Text()
		if strings.Contains(last, question) {
			sawQuestion = true
		}
		if sel, ok := selection(last, 3); ok && sel == "int main(void) {\n\tint n = \"five\";\n\tprintf(\"%d\\n\", n);" {
			sawRange = true
		}
	}
	if !sawQuestion || !sawRange {
		t.Errorf("model requests: question seen %v, lines 3-5 alone seen %v", sawQuestion, sawRange)
	}

	// :OpenCodeCancel while the answer streamed: the statusline showed it, the view says Cancelled, no error popped up
	if !strings.HasPrefix(r.StatuslineRunning, "OpenCode: Please wait forever") {
		t.Errorf("statusline while the answer streamed: %q", r.StatuslineRunning)
	}
	if r.CancelResult == nil || len(r.CancelResult.Cancelled) != 1 || r.Cancelled == nil || r.Cancelled.Error != "Cancelled." ||
		r.Cancelled.Text != "Thinking… " {
		t.Errorf("cancel %+v, view %+v: want one run cancelled and its view marked Cancelled.", r.CancelResult, r.Cancelled)
	}
	for _, n := range r.Notifications {
		if strings.Contains(n.Msg, "was cancelled") {
			t.Errorf("a cancel the user asked for was reported as an error: %q", n.Msg)
		}
	}
	// :OpenCodeRun → make → gcc's warning as a diagnostic in vim.diagnostic.get
	if r.Run == nil || r.Run.Result == nil || r.Run.Result.Command != "make" || r.Run.Result.RunID == "" {
		t.Errorf("run %+v: want make's result", r.Run)
	}
	found := false
	for _, d := range r.Diagnostics {
		if d.Source == "opencode" && d.Lnum == 3 && d.Col == 9 && strings.Contains(d.Message, "makes integer from pointer") && d.Severity == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("diagnostics %+v: want gcc's -Wint-conversion warning at 4:10 (source opencode, severity warning)", r.Diagnostics)
	}
	if len(r.Statusline) == 0 || !strings.HasPrefix(r.Statusline[0], "OpenCode: Run in sandbox") || r.StatuslineAfter != "" {
		t.Errorf("statusline during the run %q, after %q: want 'OpenCode: Run in sandbox…' then empty", r.Statusline, r.StatuslineAfter)
	}
	if r.ProgressEvents == 0 {
		t.Errorf("no LspProgress / User LspProgressUpdate event: the server's progress did not reach Neovim's LSP progress")
	}
	if r.Status == nil || r.Status.Result == nil || r.Status.Result.Isolation == "" {
		t.Errorf("status %+v: want the isolation", r.Status)
	}

	// :checkhealth opencode
	for _, want := range []string{"opencode: server", "OPENROUTER_API_KEY is set", "bubblewrap", "OpenCode agent: ", "answers; local sandbox isolation"} {
		if !strings.Contains(r.Health, want) {
			t.Errorf("checkhealth lacks %q:\n%s", want, r.Health)
		}
	}
	if strings.Contains(r.Health, chatKey) {
		t.Errorf("checkhealth shows the key")
	}
	if !strings.Contains(r.Health, "opencode-lsp: ") && !strings.Contains(r.Health, "opencode-lsp ") {
		t.Errorf("checkhealth does not show the server's version:\n%s", r.Health)
	}
	// :help opencode
	if !strings.HasSuffix(r.Help.File, "doc/opencode.txt") || r.Help.Buftype != "help" || !strings.Contains(r.Help.Line, "*opencode*") {
		t.Errorf("help %+v: want doc/opencode.txt at *opencode*", r.Help)
	}
	if !strings.Contains(r.HelpRun, "*:OpenCodeRun*") {
		t.Errorf(":help :OpenCodeRun landed on %q", r.HelpRun)
	}
}

// checkGenerate: :OpenCodeGenerate asked for the prompt, the agent's util.h came back as a workspace edit that
// Neovim applied, and the agent's message streamed into the answer window.
func checkGenerate(t *testing.T, r *report, ws string) {
	t.Helper()
	if len(r.InputPrompts) < 2 || !strings.Contains(r.InputPrompts[1], "generate") {
		t.Errorf(":OpenCodeGenerate without a prompt did not ask for one (prompts %q)", r.InputPrompts)
	}
	g := r.Generate
	if g == nil || g.Err != nil || g.Result == nil || !g.Result.Applied || len(g.Result.Files) != 1 ||
		g.Result.Files[0].Path != "util.h" || g.Result.Files[0].Action != "created" {
		t.Fatalf("generate %+v: want util.h created and applied", g)
	}
	// one workspace edit that Neovim applied itself (the plugin advertises documentChanges): util.h created, its
	// text in a modified buffer (written by the spec's :wall); Neovim 0.12 asked first (changeAnnotations)
	// (Neovim leaves the empty line a new buffer starts with after the inserted text: one blank line more at the end)
	same := func(s string) bool { return strings.TrimRight(s, "\n") == strings.TrimRight(utilH, "\n") }
	if b, _ := r.GeneratedBuffer.(string); !same(b) || r.GeneratedModified != true {
		t.Errorf("util.h buffer %q (modified %v), want %q in a modified buffer", r.GeneratedBuffer, r.GeneratedModified, utilH)
	}
	if got, err := os.ReadFile(filepath.Join(ws, "util.h")); err != nil || !same(string(got)) {
		t.Errorf("util.h on disk after :wall = %q (%v), want %q", got, err, utilH)
	}
	if strings.Contains(g.Result.Message, "written to disk by the server") {
		t.Errorf("the server wrote util.h itself: %q", g.Result.Message)
	}
	if strings.HasPrefix(r.Nvim, "0.12") && !strings.Contains(r.Confirm, "Apply all changes?") {
		t.Errorf("Neovim %s did not confirm the annotated edit (confirm %q)", r.Nvim, r.Confirm)
	}
	if r.GenerateView == nil || !strings.HasPrefix(r.GenerateView.Text, "Added util.h.") || !r.GenerateView.Done {
		t.Errorf("generate view %+v: want the agent's message", r.GenerateView)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// selection finds the selected code in the prompt the server builds: "The selection (from line N):" and a
// fenced block.
func selection(user string, line int) (string, bool) {
	head := fmt.Sprintf("The selection (from line %d):\n", line)
	i := strings.Index(user, head)
	if i < 0 {
		return "", false
	}
	rest := user[i+len(head):]
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		return "", false
	}
	fence := rest[:strings.IndexFunc(rest, func(r rune) bool { return r != '`' })]
	body := rest[nl+1:]
	end := strings.Index(body, "\n"+fence+"\n")
	if end < 0 {
		return "", false
	}
	return body[:end], true
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if info.Name() == "tags" {
			return nil
		}
		bs, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		write(t, filepath.Join(dst, rel), string(bs))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// toolsPath is PATH with the project's pinned npm tools (the OpenCode agent that :checkhealth looks for) in front.
func toolsPath(plugin string) string {
	bin := filepath.Join(plugin, "..", "..", "test", "tools", "node_modules", ".bin")
	if _, err := os.Stat(filepath.Join(bin, "opencode")); err == nil {
		return filepath.Clean(bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	}
	return os.Getenv("PATH")
}

func readTail(p string) string {
	bs, _ := os.ReadFile(p)
	if len(bs) > 6000 {
		bs = bs[len(bs)-6000:]
	}
	return fmt.Sprintf("%s", bs)
}
