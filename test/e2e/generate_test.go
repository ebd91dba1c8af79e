package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
)

// helperGo is the file the scripted agent creates.
const helperGo = "package main\n\n// smile returns é😀.\nfunc smile() string { return \"é😀\" }\n"

// generateClients are the clients TestGenerate runs (a real agent run costs
// 10–15 s): the three ways to take a workspace edit — the node driver
// implements every resource operation, Neovim applies it to its buffers
// (CreateFile included), eglot has no resourceOperations so the server
// writes new files itself. Neovim 0.12 and eglot 1.17 behave as their older
// versions do here.
var generateClients = []string{"node", "nvim07", "eglot19"}

// TestGenerate runs scenarios/generate.json in generateClients: the real
// OpenCode agent (test/tools), scripted through the OpenRouter fake, edits the
// open emoji.go, creates helper.go and runs gofmt after the user allowed it;
// the client applies the one workspace edit its own way.
func TestGenerate(t *testing.T) {
	bin := filepath.Join(repoRoot, "test", "tools", "node_modules", ".bin")
	if _, err := os.Stat(filepath.Join(bin, "opencode")); err != nil {
		if required("generate") {
			t.Fatalf("the real OpenCode is required (E2E_REQUIRE) but not installed in test/tools: %v", err)
		}
		t.Skipf("the real OpenCode is not installed in test/tools (npm ci there): %v", err)
	}
	for _, name := range generateClients {
		c := clientNamed(name)
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := fakeopenrouter.New(t, fakeopenrouter.Options{Script: &fakeopenrouter.Script{
				Steps: []fakeopenrouter.Step{
					{Tool: "edit", Args: json.RawMessage(`{"filePath":"emoji.go","oldString":"missing)","newString":"missing"}`)},
					{Tool: "write", Args: mustJSON(map[string]string{"filePath": "helper.go", "content": helperGo})},
					{Tool: "bash", Args: json.RawMessage(`{"command":"gofmt -l .","description":"Check formatting"}`)},
				},
				FinalText: "Fixed the stray parenthesis and added helper.go.",
			}})
			r := runClient(t, c, "generate.json", runOpts{env: []string{
				"OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL,
				"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
			}})
			checkGenerate(t, r)
		})
	}
}

func checkGenerate(t *testing.T, r *run) {
	t.Helper()
	rep := r.report
	defer func() {
		if t.Failed() {
			t.Log(r.logs())
		}
	}()
	res := rep.Results["generate"]
	if res.Error != nil {
		t.Fatalf("opencode.generate failed: %+v", res.Error)
	}
	var gr command.GenerateResult
	if err := json.Unmarshal(res.Result, &gr); err != nil {
		t.Fatalf("opencode.generate result %s: %v", res.Result, err)
	}
	files := map[string]string{}
	for _, f := range gr.Files {
		files[f.Path] = f.Action
	}
	if !gr.Applied || gr.RunID == "" || files["emoji.go"] != "modified" || files["helper.go"] != "created" || len(files) != 2 {
		t.Errorf("generate result %+v: want applied, emoji.go modified and helper.go created", gr)
	}
	if !slices.ContainsFunc(gr.Commands, func(c command.CommandRun) bool { return strings.Contains(c.Command, "gofmt") }) {
		t.Errorf("generate result commands %+v: want the agent's gofmt", gr.Commands)
	}

	// the permission prompt went to the user, who allowed it
	if len(rep.ShowMessageRequests) != 1 || rep.ShowMessageRequests[0].Chosen == nil || *rep.ShowMessageRequests[0].Chosen != "Allow once" {
		t.Errorf("showMessageRequests %+v: want the bash permission prompt, allowed once", rep.ShowMessageRequests)
	}

	// one workspace edit, applied by the client: the open buffer holds the fix
	if len(rep.ApplyEdits) != 1 || !rep.ApplyEdits[0].Applied {
		t.Fatalf("applyEdit requests %+v: want one, applied", rep.ApplyEdits)
	}
	orig := readFile(filepath.Join(repoRoot, "test", "e2e", "testdata", "ws", "emoji.go.in"))
	want := strings.Replace(orig, "missing)", "missing", 1)
	if got := rep.Documents["emoji.go"]; got != want {
		t.Errorf("emoji.go buffer after the edit:\n%s\nwant\n%s", got, want)
	}
	// helper.go: in a buffer (clients with CreateFile) or on disk (written by the server, or by the node driver)
	helper, inBuffer := rep.Documents["helper.go"]
	if !inBuffer {
		helper = readFile(filepath.Join(r.ws, "helper.go"))
	}
	if helper != helperGo {
		t.Errorf("helper.go (in a buffer: %v) = %q, want %q", inBuffer, helper, helperGo)
	}
	t.Logf("helper.go came back in a buffer: %v; edit: %s", inBuffer, tail(string(rep.ApplyEdits[0].Edit), 300))
	// the file on disk was not overwritten behind the editor's back
	if got := readFile(filepath.Join(r.ws, "emoji.go")); got != orig && got != want {
		t.Errorf("emoji.go on disk = %q", got)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
