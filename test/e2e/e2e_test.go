package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
)

// units is the length of s in an LSP position encoding.
func units(s, encoding string) int {
	switch encoding {
	case "utf-8":
		return len(s)
	case "utf-32":
		return utf8.RuneCountInString(s)
	default:
		return len(utf16.Encode([]rune(s)))
	}
}

// emojiLine returns the 0-based line of testdata/ws/emoji.go that holds
// `é😀` and the line's text.
func emojiLine(t *testing.T) (int, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "test", "e2e", "testdata", "ws", "emoji.go.in"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "é😀") && !strings.HasPrefix(strings.TrimSpace(l), "//") {
			return i, l
		}
	}
	t.Fatal("emoji.go has no code line with é😀")
	return 0, ""
}

// contractActions are the code actions every document gets (design.md,
// "Code actions"), in the server's order, with their kinds and commands.
var contractActions = []struct{ title, kind, command string }{
	{"OpenCode: Explain selection", "refactor.opencode.explain", command.Explain},
	{"OpenCode: Ask about selection…", "refactor.opencode.ask", command.Chat},
	{"OpenCode: Generate…", "refactor.opencode.generate", command.Generate},
	{"OpenCode: Run in sandbox", "source.opencode.run", command.Run},
}

// TestContract runs scenarios/contract.json in every client, in the position
// encoding it negotiates by itself: initialize, didOpen, code actions at a
// cursor the client places after `é😀` and on a selection ending there, and
// opencode.status / opencode.cancel round trips through the client. (TestChat
// and TestRun go through every encoding each client can use.)
func TestContract(t *testing.T) {
	line, text := emojiLine(t)
	cursor := strings.Index(text, "é😀") + len("é😀")
	selStart := strings.Index(text, "return")
	for _, c := range clients {
		enc := c.encodings[0]
		t.Run(c.name+"/"+enc, func(t *testing.T) {
			t.Parallel()
			r := runClient(t, c, "contract.json", runOpts{})
			checkContract(t, r, enc, line, units(text[:cursor], enc), units(text[:selStart], enc))
		})
	}
}

// forEachEncoding runs fn as a parallel subtest for every client and every
// position encoding the client can use (its own choice first, the others
// offered alone).
func forEachEncoding(t *testing.T, fn func(t *testing.T, c *client, enc, offer string)) {
	for _, c := range clients {
		for i, enc := range c.encodings {
			offer := enc
			if i == 0 {
				offer = "" // the client's own negotiation
			}
			t.Run(c.name+"/"+enc, func(t *testing.T) {
				t.Parallel()
				fn(t, c, enc, offer)
			})
		}
	}
}

// checkEncoding checks that the server chose enc and the client uses it.
func checkEncoding(t *testing.T, rep *Report, enc string) {
	t.Helper()
	var init struct {
		Capabilities struct {
			PositionEncoding string `json:"positionEncoding"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(rep.InitializeResult, &init); err != nil {
		t.Errorf("initialize result: %v: %s", err, rep.InitializeResult)
	}
	if init.Capabilities.PositionEncoding != enc || rep.Encoding != enc {
		t.Errorf("position encoding: server chose %q, client uses %q; want %q", init.Capabilities.PositionEncoding, rep.Encoding, enc)
	}
}

func checkContract(t *testing.T, r *run, enc string, line, cursorChar, selStartChar int) {
	t.Helper()
	rep := r.report
	defer func() {
		if t.Failed() {
			t.Log(r.logs())
		}
	}()

	// initialize
	var init struct {
		Capabilities struct {
			TextDocumentSync struct {
				OpenClose bool `json:"openClose"`
				Change    int  `json:"change"`
			} `json:"textDocumentSync"`
			CodeActionProvider struct {
				CodeActionKinds []string `json:"codeActionKinds"`
			} `json:"codeActionProvider"`
			ExecuteCommandProvider struct {
				Commands []string `json:"commands"`
			} `json:"executeCommandProvider"`
		} `json:"capabilities"`
		ServerInfo struct {
			Name string `json:"name"`
		} `json:"serverInfo"`
	}
	if err := json.Unmarshal(rep.InitializeResult, &init); err != nil {
		t.Fatalf("initialize result: %v: %s", err, rep.InitializeResult)
	}
	caps := init.Capabilities
	checkEncoding(t, rep, enc)
	if init.ServerInfo.Name != "opencode-lsp" {
		t.Errorf("serverInfo.name = %q", init.ServerInfo.Name)
	}
	if !caps.TextDocumentSync.OpenClose || caps.TextDocumentSync.Change != 1 {
		t.Errorf("textDocumentSync = %+v, want open/close and full sync", caps.TextDocumentSync)
	}
	for _, k := range []string{"quickfix", "refactor.opencode", "source.opencode.run"} {
		if !slices.Contains(caps.CodeActionProvider.CodeActionKinds, k) {
			t.Errorf("codeActionKinds %v lack %q", caps.CodeActionProvider.CodeActionKinds, k)
		}
	}
	for _, name := range []string{command.Status, command.Cancel} {
		if !slices.Contains(caps.ExecuteCommandProvider.Commands, name) {
			t.Errorf("executeCommandProvider.commands %v lack %s", caps.ExecuteCommandProvider.Commands, name)
		}
	}
	for _, name := range caps.ExecuteCommandProvider.Commands {
		if !slices.Contains(command.All, name) {
			t.Errorf("executeCommandProvider advertises %q, which is not a contract command", name)
		}
	}

	uri := fileURI(filepath.Join(r.ws, "emoji.go"))
	at := Position{line, cursorChar}
	// code actions at the cursor after é😀: the range is what the client computed; the server echoes it
	checkActions(t, "cursor", rep.Results["cursor"], uri, Range{at, at}, false)
	// and on a selection from `return` to the cursor
	checkActions(t, "selection", rep.Results["selection"], uri, Range{Position{line, selStartChar}, at}, true)

	// opencode.status round trip
	st := rep.Results["status"]
	if st.Error != nil {
		t.Fatalf("opencode.status failed: %+v", st.Error)
	}
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(st.Result, &shape); err != nil {
		t.Fatalf("opencode.status result %s: %v", st.Result, err)
	}
	for key, open := range map[string]byte{"sandboxes": '[', "usage": '{', "runs": '['} {
		if v := shape[key]; len(v) == 0 || v[0] != open {
			t.Errorf("opencode.status result %s: %q is %s, want a JSON %c…", st.Result, key, v, open)
		}
	}
	var status command.StatusResult
	if err := json.Unmarshal(st.Result, &status); err != nil {
		t.Errorf("opencode.status result does not decode as command.StatusResult: %v", err)
	}
	if len(status.Sandboxes) != 0 || len(status.Runs) != 0 {
		t.Errorf("a fresh server reports sandboxes %v and runs %v", status.Sandboxes, status.Runs)
	}

	// opencode.cancel with nothing running
	cr := rep.Results["cancel"]
	var cancelled command.CancelResult
	if cr.Error != nil || json.Unmarshal(cr.Result, &cancelled) != nil || cancelled.Cancelled == nil || len(cancelled.Cancelled) != 0 {
		t.Errorf("opencode.cancel {} = %s, error %+v; want {\"cancelled\":[]}", cr.Result, cr.Error)
	}

	// a bad argument comes back as InvalidParams naming the field
	ba := rep.Results["badArgument"]
	if ba.Error == nil || ba.Error.Code == nil || *ba.Error.Code != -32602 || !strings.Contains(ba.Error.Message, "bogus") {
		t.Errorf("opencode.status {bogus:true}: result %s, error %+v; want InvalidParams naming \"bogus\"", ba.Result, ba.Error)
	}

	// nothing was edited, and the server left after shutdown + exit
	want := readFile(filepath.Join(repoRoot, "test", "e2e", "testdata", "ws", "emoji.go.in"))
	if got, ok := rep.Documents["emoji.go"]; !ok || got != want {
		t.Errorf("emoji.go buffer changed:\n%q\nwant\n%q", got, want)
	}
	if rep.ServerExit == nil || rep.ServerExit.Code == nil || *rep.ServerExit.Code != 0 {
		t.Errorf("server exit after shutdown + exit: %+v, want code 0", rep.ServerExit)
	}
}

// checkActions checks one codeAction step: the contract's four actions with
// their kinds and commands, and the ranges in their arguments.
func checkActions(t *testing.T, id string, res StepResult, uri string, want Range, selection bool) {
	t.Helper()
	if res.Range == nil || *res.Range != want {
		t.Errorf("%s: the client sent range %+v, want %+v", id, res.Range, want)
	}
	if len(res.Actions) != len(contractActions) {
		t.Fatalf("%s: %d code actions %+v, want %d", id, len(res.Actions), res.Actions, len(contractActions))
	}
	for i, w := range contractActions {
		a := res.Actions[i]
		if a.Title != w.title || a.Kind != w.kind || a.IsCommand || a.Command == nil || a.Command.Command != w.command {
			t.Errorf("%s: action %d = %+v (command %+v), want %q kind %q running %s", id, i, a, a.Command, w.title, w.kind, w.command)
			continue
		}
		if len(a.Command.Arguments) != 1 {
			t.Errorf("%s: %s has %d arguments, want one object", id, w.command, len(a.Command.Arguments))
			continue
		}
		var arg struct {
			URI   string `json:"uri"`
			Range *Range `json:"range"`
		}
		if err := json.Unmarshal(a.Command.Arguments[0], &arg); err != nil {
			t.Errorf("%s: %s argument %s: %v", id, w.command, a.Command.Arguments[0], err)
			continue
		}
		if arg.URI != uri {
			t.Errorf("%s: %s uri = %q, want %q", id, w.command, arg.URI, uri)
		}
		switch {
		case w.command == command.Run:
			if arg.Range != nil {
				t.Errorf("%s: %s has a range %+v", id, w.command, arg.Range)
			}
		case w.command == command.Explain && !selection:
			if arg.Range != nil {
				t.Errorf("%s: explain at a bare cursor has range %+v, want none (whole file)", id, arg.Range)
			}
		default:
			if arg.Range == nil || *arg.Range != want {
				t.Errorf("%s: %s range = %+v, want %+v (the é😀 mapping)", id, w.command, arg.Range, want)
			}
		}
	}
}

// fileURI is the file:// URI of an absolute path as clients spell it (the
// test paths have no characters that need escaping).
func fileURI(path string) string { return "file://" + filepath.ToSlash(path) }

// TestNeverReply runs scenarios/never-reply.json with a client that never
// answers a server→client request (like Vim + ALE) and then vanishes without
// shutdown: the server must keep answering, finish a chat without the
// progress it could not create, and exit on stdin EOF.
func TestNeverReply(t *testing.T) {
	t.Parallel()
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: chatKey})
	fake.SetHandler(func(fakeopenrouter.ChatRequest) fakeopenrouter.Reply { return fakeopenrouter.Reply{Chunks: chatAnswer} })
	r := runClient(t, clientNamed("node"), "never-reply.json", runOpts{mode: "never-reply", env: []string{
		"OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL,
	}})
	rep := r.report
	defer func() {
		if t.Failed() {
			t.Log(r.logs())
		}
	}()
	for _, m := range []string{"workspace/configuration", "window/workDoneProgress/create"} {
		if rep.ServerRequests[m] == 0 {
			t.Errorf("the server sent no %s the client could leave unanswered (server→client requests: %v)", m, rep.ServerRequests)
		}
	}
	line, text := emojiLine(t)
	at := Position{line, units(text[:strings.Index(text, "é😀")+len("é😀")], "utf-16")}
	checkActions(t, "cursor", rep.Results["cursor"], fileURI(filepath.Join(r.ws, "emoji.go")), Range{at, at}, false)
	var cr command.ChatResult
	if res := rep.Results["chat"]; res.Error != nil || json.Unmarshal(res.Result, &cr) != nil || cr.Text != strings.Join(chatAnswer, "") {
		t.Errorf("opencode.chat with progress creation unanswered: %s %+v", res.Result, res.Error)
	}
	if len(rep.Progress) != 0 {
		t.Errorf("the server reported progress on a token the client never accepted: %+v", rep.Progress)
	}
	if st := rep.Results["status"]; st.Error != nil || len(st.Result) == 0 {
		t.Errorf("opencode.status with unanswered requests pending: %s %+v", st.Result, st.Error)
	}
	if rep.ServerExit == nil || rep.ServerExit.Code == nil || *rep.ServerExit.Code != 1 {
		t.Errorf("server exit after stdin EOF without shutdown: %+v, want code 1", rep.ServerExit)
	}
}

// TestMinimalClient runs the chat scenario with a client that advertises
// nothing but text sync and plain code actions: code actions come back as
// Command[], commands still run (no progress, no configuration pull), and
// every answer, long ones included, arrives as window/showMessage.
func TestMinimalClient(t *testing.T) {
	t.Parallel()
	fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: chatKey})
	fake.SetHandler(answerFor)
	r := runClient(t, clientNamed("node"), "chat.json", runOpts{env: []string{
		"E2E_CAPS=minimal", "OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL,
	}})
	rep := r.report // checkChat prints the logs on failure
	for _, id := range []string{"explain", "ask"} {
		acts := rep.Results[id].Actions
		if len(acts) != len(contractActions) {
			t.Errorf("%s: %d code actions %+v, want %d", id, len(acts), acts, len(contractActions))
			continue
		}
		for i, w := range contractActions {
			if a := acts[i]; !a.IsCommand || a.Title != w.title || a.Command == nil || a.Command.Command != w.command {
				t.Errorf("%s: action %d = %+v, want the Command %q running %s", id, i, a, w.title, w.command)
			}
		}
	}
	if len(rep.ServerRequests) != 1 || rep.ServerRequests["window/showMessageRequest"] != 1 {
		t.Errorf("server→client requests %v: want only the one showMessageRequest", rep.ServerRequests)
	}
	line, text := emojiLine(t)
	checkChat(t, r, fake, "utf-16", line, text)
}

// TestEditing runs scenarios/edit.json in every client: text typed into the
// buffer (with ç and 😀) reaches the server, so Explain on exactly the typed
// text sends exactly that to the model; the buffer is then saved and closed.
func TestEditing(t *testing.T) {
	line, _ := emojiLine(t)
	typed := "_ = \"ça 😀\"\n\t"
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: chatKey})
			fake.SetHandler(answerFor)
			r := runClient(t, c, "edit.json", runOpts{env: []string{"OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL}})
			defer func() {
				if t.Failed() {
					t.Log(r.logs())
				}
			}()
			res := r.report.Results["typed"]
			var cr command.ChatResult
			if res.Command != command.Explain || res.Error != nil || json.Unmarshal(res.Result, &cr) != nil || cr.Text != strings.Join(chatAnswer, "") {
				t.Errorf("Explain on the typed text: command %q, result %s, error %+v", res.Command, res.Result, res.Error)
			}
			var sels []string
			for _, req := range fake.ChatRequests() {
				if n := len(req.Messages); n > 0 {
					if sel, ok := selectionIn(req.Messages[n-1].Text(), line+1); ok {
						sels = append(sels, sel)
					}
				}
			}
			if len(sels) != 1 || sels[0] != "ça 😀" {
				t.Errorf("the model got the selections %q, want exactly [\"ça 😀\"] (the typed text, on line %d)", sels, line+1)
			}
			orig := readFile(filepath.Join(repoRoot, "test", "e2e", "testdata", "ws", "emoji.go.in"))
			want := strings.Replace(orig, "return", typed+"return", 1)
			if got := readFile(filepath.Join(r.ws, "emoji.go")); got != want {
				t.Errorf("emoji.go on disk after save:\n%s\nwant\n%s", got, want)
			}
			if st := r.report.Results["status"]; st.Error != nil || len(st.Result) == 0 {
				t.Errorf("opencode.status after didClose: %s %+v", st.Result, st.Error)
			}
		})
	}
}
