package lsp_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

func runEditor(t *testing.T, enc string) *lsptest.Editor {
	caps := lsptest.FullCapabilities()
	if enc != "" {
		caps["general"] = map[string]any{"positionEncodings": []string{enc}}
	}
	return lsptest.New(t, lsptest.Options{Capabilities: caps, Server: lsp.Options{Providers: localProviders(t)}})
}

const goMod = "module example.com/m\n\ngo 1.22\n"

// The unsaved buffer (not the file on disk) is what runs; the diagnostic
// after "é😀" lands on the right character in each encoding; fixing and
// re-running clears it.
func TestRunUsesUnsavedBuffersAndMapsColumns(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not installed")
	}
	// go reports the v after "é😀" as a byte column; "é" is 2 bytes, 1 UTF-16
	// unit, 1 code point; "😀" is 4 bytes, 2 UTF-16 units, 1 code point.
	line := "\tv := \"é😀\"; var s int = v"
	at := strings.LastIndex(line, "v")
	want := map[string]uint32{"utf-8": uint32(at), "utf-16": uint32(at - 1 - 2), "utf-32": uint32(at - 1 - 3)}
	for enc, char := range want {
		t.Run(enc, func(t *testing.T) {
			ctx := ctxT(t)
			e := runEditor(t, enc)
			e.Initialize(ctx)
			e.WriteFile("go.mod", goMod)
			e.WriteFile("main.go", "package main\n\nfunc main() {}\n") // clean on disk
			uri := e.Open(ctx, "main.go", "go", "package main\n\nfunc main() {\n"+line+"\n\t_ = s\n}\n")
			var res command.RunResult
			if err := e.Execute(ctx, command.Run, command.RunArgs{Command: "go build ./..."}, &res); err != nil {
				t.Fatal(err)
			}
			if res.ExitCode == 0 || res.Diagnostics[string(uri)] != 1 || res.Command != "go build ./..." {
				t.Fatalf("result: %+v", res)
			}
			e.Await(10*time.Second, "diagnostic", func() bool { return len(e.Diagnostics(uri)) == 1 })
			d := e.Diagnostics(uri)[0]
			if d.Range.Start.Line != 3 || d.Range.Start.Character != char || d.Source != "opencode" || d.Code != "go" || d.Severity != protocol.DiagnosticSeverityError {
				t.Fatalf("diagnostic %+v, want line 3 char %d", d, char)
			}
			// Fix in the buffer, run again: the file is cleared.
			e.Change(ctx, uri, "package main\n\nfunc main() {\n\tv := \"é😀\"; var s string = v\n\t_ = s\n}\n")
			if err := e.Execute(ctx, command.Run, command.RunArgs{Command: "go build ./..."}, &res); err != nil || res.ExitCode != 0 {
				t.Fatalf("second run: %+v %v", res, err)
			}
			e.Await(10*time.Second, "cleared", func() bool { return len(e.Diagnostics(uri)) == 0 })
		})
	}
}

func TestRunDetectsGoVetAndReportsSubpackageTestFailures(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not installed")
	}
	ctx := ctxT(t)
	e := runEditor(t, "")
	e.Initialize(ctx)
	e.WriteFile("go.mod", goMod)
	e.WriteFile("main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Printf(\"%d\\n\", \"x\") }\n")
	e.WriteFile("pkg/calc/calc.go", "package calc\n\nfunc Add(a, b int) int { return a - b }\n")
	e.WriteFile("pkg/calc/calc_test.go", "package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"Add(1, 2) != 3\")\n\t}\n}\n")
	var res command.RunResult
	if err := e.Execute(ctx, command.Run, command.RunArgs{}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Command != "go vet ./..." || res.ExitCode == 0 || res.Diagnostics[string(e.URI("main.go"))] != 1 {
		t.Fatalf("vet: %+v", res)
	}
	if err := e.Execute(ctx, command.Run, command.RunArgs{Command: "go test ./..."}, &res); err != nil {
		t.Fatal(err)
	}
	test := e.URI("pkg/calc/calc_test.go")
	e.Await(10*time.Second, "test failure diagnostic", func() bool { return len(e.Diagnostics(test)) == 1 })
	if d := e.Diagnostics(test)[0]; d.Range.Start.Line != 6 || !strings.Contains(d.Message, "Add(1, 2) != 3") {
		t.Fatalf("test diagnostic: %+v", d)
	}
	// The vet run's diagnostic is a different command's: it stays.
	if d := e.Diagnostics(e.URI("main.go")); len(d) == 0 {
		t.Fatal("another command's diagnostics were cleared")
	}
}

func TestRunCancelKillsTheCommand(t *testing.T) {
	ctx := ctxT(t)
	e := runEditor(t, "")
	e.Initialize(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.Execute(ctx, command.Run, command.RunArgs{Command: "echo started; sleep 600"}, nil)
	}()
	e.Await(30*time.Second, "the command's output in progress", func() bool {
		for _, p := range e.Progress() {
			if p.Msg == "started" {
				return true
			}
		}
		return false
	})
	var cr command.CancelResult
	if err := e.Execute(ctx, command.Cancel, command.CancelArgs{}, &cr); err != nil || len(cr.Cancelled) != 1 {
		t.Fatalf("cancel: %+v %v", cr, err)
	}
	select {
	case err := <-done:
		if rpcCode(err) != -32803 || !strings.Contains(err.Error(), "was cancelled") {
			t.Fatalf("cancelled run answered %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the cancelled run did not end")
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 600").Output(); len(out) > 0 {
		t.Fatalf("sleep 600 survived the cancel: pids %s", out)
	}
}

func TestRunTimeoutAndBadArguments(t *testing.T) {
	ctx := ctxT(t)
	e := runEditor(t, "")
	e.Initialize(ctx)
	err := e.Execute(ctx, command.Run, command.RunArgs{Command: "sleep 30", TimeoutSec: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("timeout: %v", err)
	}
	err = e.Execute(ctx, command.Run, map[string]any{"command": "true", "sandbox": "moon"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"sandbox"`) {
		t.Fatalf("bad sandbox: %v", err)
	}
	err = e.Execute(ctx, command.Run, map[string]any{"timeoutSec": "soon"}, nil)
	if rpcCode(err) != -32602 || !strings.Contains(err.Error(), "timeoutSec") {
		t.Fatalf("bad timeout type: %v", err)
	}
}

// A command that starts a server: the result carries its URL and the editor
// is asked to open it (window/showDocument, external).
func TestRunPreviewOfAListeningServer(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	ctx := ctxT(t)
	shown := make(chan string, 4)
	e := lsptest.New(t, lsptest.Options{
		InitializationOptions: map[string]any{"run": map[string]any{"network": true}},
		Server:                lsp.Options{Providers: localProviders(t)},
		Hooks: lsptest.Hooks{ShowDocument: func(p protocolx.ShowDocumentParams) bool {
			if p.External {
				shown <- p.URI
			}
			return true
		}},
	})
	e.Initialize(ctx)
	var res command.RunResult
	cmd := `python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print('listening', flush=True); time.sleep(4)"`
	if err := e.Execute(ctx, command.Run, command.RunArgs{Command: cmd}, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.SandboxURL, "http://127.0.0.1:") {
		t.Fatalf("sandboxUrl %q; result %+v", res.SandboxURL, res)
	}
	select {
	case u := <-shown:
		if u != res.SandboxURL {
			t.Fatalf("showDocument %q, result %q", u, res.SandboxURL)
		}
	default:
		t.Fatal("window/showDocument {external:true} was not sent")
	}
}
