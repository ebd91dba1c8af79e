package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
)

// chatKey is the OpenRouter key the server gets from its environment; it must
// never show up in a log, a report or a message.
const chatKey = "sk-or-v1-e2e-secret-0123456789abcdef"

// chatAnswer is what the fake model streams, in these chunks.
var chatAnswer = []string{"Short answer: ", "é😀 takes ", "six bytes in UTF-8."}

// longAnswer is streamed to questions asking for detail: long enough (over
// 400 bytes) for the server to open it as a document.
var longAnswer = func() []string {
	var chunks []string
	for i := range 12 {
		chunks = append(chunks, fmt.Sprintf("Paragraph %d: é is two bytes in UTF-8 and 😀 is four, one and two units in UTF-16.\n", i+1))
	}
	return chunks
}()

// answerFor is the fake model: a long answer when asked for detail.
func answerFor(req fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
	if n := len(req.Messages); n > 0 && strings.Contains(req.Messages[n-1].Text(), "in detail") {
		return fakeopenrouter.Reply{Chunks: longAnswer}
	}
	return fakeopenrouter.Reply{Chunks: chatAnswer}
}

// TestChat runs scenarios/chat.json in every client (in its own encoding;
// TestRun goes through the others) against the spec-faithful OpenRouter
// fake: code actions chosen in the client's own menu run opencode.explain and
// opencode.chat, a question comes from window/showMessageRequest, and the
// answer streams as opencode/chatDelta with progress. The selections the
// client computed must reach the model as exactly the selected text.
func TestChat(t *testing.T) {
	line, text := emojiLine(t)
	for _, c := range clients {
		enc := c.encodings[0]
		t.Run(c.name+"/"+enc, func(t *testing.T) {
			t.Parallel()
			fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: chatKey})
			fake.SetHandler(answerFor)
			r := runClient(t, c, "chat.json", runOpts{env: []string{
				"OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL,
			}})
			checkEncoding(t, r.report, enc)
			checkChat(t, r, fake, enc, line, text)
		})
	}
}

func checkChat(t *testing.T, r *run, fake *fakeopenrouter.Server, enc string, line int, lineText string) {
	t.Helper()
	rep := r.report
	defer func() {
		if t.Failed() {
			t.Log(r.logs())
		}
	}()
	answer, long := strings.Join(chatAnswer, ""), strings.Join(longAnswer, "")

	// the four commands answered with the streamed text, each in a thread of its own
	threads := map[string]string{}
	answers := map[string]string{}
	for id, cmd := range map[string]string{"explain": command.Explain, "ask": command.Chat, "chat": command.Chat, "long": command.Chat} {
		want := answer
		if id == "long" {
			want = long
		}
		res := rep.Results[id]
		if res.Command != cmd {
			t.Errorf("%s ran %q, want %s", id, res.Command, cmd)
		}
		if res.Error != nil {
			t.Errorf("%s failed: %+v", id, res.Error)
			continue
		}
		var cr command.ChatResult
		if err := json.Unmarshal(res.Result, &cr); err != nil || cr.Text != want || cr.ThreadID == "" || cr.Model == "" {
			t.Errorf("%s result %s (%v): want text %q, a threadId and the model", id, res.Result, err, want)
			continue
		}
		threads[cr.ThreadID] = id
		answers[cr.ThreadID] = want
	}
	if len(threads) != 4 {
		t.Errorf("thread ids %v: want four distinct threads", threads)
	}

	// every answer streamed as opencode/chatDelta, in order
	streamed := map[string]string{}
	for _, raw := range rep.Notifications["opencode/chatDelta"] {
		var d struct {
			ThreadID string `json:"threadId"`
			RunID    string `json:"runId"`
			Delta    string `json:"delta"`
		}
		if err := json.Unmarshal(raw, &d); err != nil || d.RunID == "" {
			t.Errorf("opencode/chatDelta %s: %v (want threadId, runId, delta)", raw, err)
			continue
		}
		streamed[d.ThreadID] += d.Delta
	}
	for thread, id := range threads {
		if streamed[thread] != answers[thread] {
			t.Errorf("%s: deltas of thread %s add up to %q, want %q", id, thread, streamed[thread], answers[thread])
		}
	}

	// Ask had no prompt: the question came from window/showMessageRequest
	if len(rep.ShowMessageRequests) != 1 || rep.ShowMessageRequests[0].Chosen == nil ||
		*rep.ShowMessageRequests[0].Chosen != "Are there bugs in this code?" {
		t.Errorf("showMessageRequests = %+v, want one, answered with a canned question", rep.ShowMessageRequests)
	} else if smr := rep.ShowMessageRequests[0]; !slices.Contains(smr.Actions, "What does this code do?") {
		t.Errorf("showMessageRequest actions %v lack the canned questions", smr.Actions)
	}

	// what reached the model: the selections exactly as the user made them in the client
	var explainSel, askSel, whole []string
	for _, req := range fake.ChatRequests() {
		if len(req.Messages) == 0 {
			continue
		}
		user := req.Messages[len(req.Messages)-1].Text()
		sel, hasSel := selectionIn(user, line+1)
		switch {
		case strings.Contains(user, "Are there bugs in this code?"):
			askSel = append(askSel, sel)
		case strings.Contains(user, "How many bytes does the string on line 6 take?"), strings.Contains(user, "in detail"):
			if hasSel || !strings.Contains(user, "The whole file:") {
				t.Errorf("opencode.chat without a range sent %q, want the whole file", user)
			}
			whole = append(whole, user)
		case hasSel:
			explainSel = append(explainSel, sel)
		}
	}
	wantAsk := lineText[strings.Index(lineText, "return") : strings.Index(lineText, "missing")+len("missing")]
	if len(explainSel) != 1 || explainSel[0] != "é😀" {
		t.Errorf("Explain on é😀 (%s) sent the selections %q, want exactly [\"é😀\"]", enc, explainSel)
	}
	if len(askSel) != 1 || askSel[0] != wantAsk {
		t.Errorf("Ask on %q (%s) sent the selections %q", wantAsk, enc, askSel)
	}
	if len(whole) != 2 {
		t.Errorf("%d opencode.chat requests about the whole file, want 2", len(whole))
	}

	// progress for clients that support it, begun and ended for every run
	if reportsProgress(r) {
		begun := map[string]int{}
		ended := 0
		for _, p := range rep.Progress {
			switch p.Kind {
			case "begin":
				begun[p.Title]++
			case "end":
				ended++
			}
		}
		if begun["OpenCode: Explain"] != 1 || begun["OpenCode: Chat"] != 3 || ended != 4 {
			t.Errorf("progress begun %v, ended %d; want Explain once, Chat three times, four ends", begun, ended)
		}
	}

	// clients that do not render chatDelta still see the answers: short ones as messages, a long one as a
	// document opened with window/showDocument where the client supports it, else as a message too
	shown := map[string]int{}
	for _, m := range rep.ShowMessages {
		shown[m.Message]++
	}
	if shown[answer] != 3 {
		t.Errorf("the short answer was shown %d times in window/showMessage (%+v), want 3", shown[answer], rep.ShowMessages)
	}
	if showsDocuments(r) {
		if len(rep.ShowDocuments) != 1 || rep.ShowDocuments[0].External || shown[long] != 0 {
			t.Fatalf("long answer: showDocument %+v and %d messages, want one document and no message", rep.ShowDocuments, shown[long])
		}
		path := strings.TrimPrefix(rep.ShowDocuments[0].URI, "file://")
		if got := readFile(path); got != long || !strings.HasPrefix(path, r.home+"/") {
			t.Errorf("the document %s (want it under the user's cache dir %s) holds %q, want the long answer", path, r.home, got)
		}
		if doc, ok := rep.Documents[filepath.Base(path)]; ok && doc != long {
			t.Errorf("the client opened the answer as %q", doc)
		}
	} else if len(rep.ShowDocuments) != 0 || shown[long] != 1 {
		t.Errorf("long answer to a client without showDocument: documents %+v, shown %d times; want one message", rep.ShowDocuments, shown[long])
	}

	// the key went to OpenRouter only
	for _, req := range fake.Requests() {
		if got := req.Header.Get("Authorization"); got != "Bearer "+chatKey {
			t.Errorf("request to %s carried Authorization %q", req.Path, got)
		}
	}
	for name, s := range map[string]string{"server log": r.serverLog(), "client log": r.clientLog(), "report": r.reportText()} {
		if strings.Contains(s, chatKey) {
			t.Errorf("the OpenRouter key appears in the %s", name)
		}
	}
}

// showsDocuments reports whether the client advertises window.showDocument
// (Neovim 0.10+, eglot 1.17, the node driver; not Neovim 0.7 or eglot 1.9).
func showsDocuments(r *run) bool {
	v := r.report.Client.Version
	return !strings.HasPrefix(v, "0.7.") && !strings.Contains(v, "eglot 1.9") && !minimal(r)
}

// reportsProgress reports whether the client advertises window.workDoneProgress
// (all but eglot 1.9 and the node driver's minimal capabilities).
func reportsProgress(r *run) bool {
	return !strings.Contains(r.report.Client.Version, "eglot 1.9") && !minimal(r)
}

func minimal(r *run) bool { return strings.HasSuffix(r.report.Client.Mode, " minimal") }

// selectionIn returns the selection the chat context shows for a selection
// starting on (1-based) line, and whether there is one.
func selectionIn(user string, line int) (string, bool) {
	head := "The selection (from line " + itoa(line) + "):\n"
	i := strings.Index(user, head)
	if i < 0 {
		return "", false
	}
	rest := user[i+len(head):]
	nl := strings.IndexByte(rest, '\n') // the opening fence
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

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestCancel runs scenarios/cancel.json in every client: while a chat's
// stream is stalled after its first chunk the server answers opencode.status
// (the run is running), and opencode.cancel stops it: the model's stream is
// closed and the run is listed as cancelled. The chat's own request answers
// RequestFailed (-32803) "… was cancelled" — not RequestCancelled, which
// clients (Neovim) take for the acknowledgement of a $/cancelRequest of their
// own and drop — so every client sees its request end.
func TestCancel(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := fakeopenrouter.New(t, fakeopenrouter.Options{APIKey: chatKey})
			fake.SetHandler(func(fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
				return fakeopenrouter.Reply{Chunks: chatAnswer, Hang: fakeopenrouter.HangAfterFirstChunk}
			})
			r := runClient(t, c, "cancel.json", runOpts{env: []string{"OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL}})
			rep := r.report
			defer func() {
				if t.Failed() {
					t.Log(r.logs())
				}
			}()
			runs := func(id string) []command.RunStatus {
				var st command.StatusResult
				if res := rep.Results[id]; res.Error != nil || json.Unmarshal(res.Result, &st) != nil {
					t.Fatalf("%s: opencode.status answered %s, error %+v", id, res.Result, res.Error)
				}
				return st.Runs
			}
			running := runs("running")
			if len(running) != 1 || running[0].Kind != "chat" || running[0].State != "running" {
				t.Fatalf("opencode.status during the chat: runs %+v, want one running chat", running)
			}
			var cr command.CancelResult
			if res := rep.Results["cancel"]; res.Error != nil || json.Unmarshal(res.Result, &cr) != nil ||
				len(cr.Cancelled) != 1 || cr.Cancelled[0] != running[0].RunID {
				t.Fatalf("opencode.cancel {}: %s %+v, want [%s]", res.Result, res.Error, running[0].RunID)
			}
			if after := runs("status"); !slices.Contains(after, command.RunStatus{RunID: cr.Cancelled[0], Kind: "chat", State: "cancelled"}) {
				t.Errorf("opencode.status after the cancel: runs %+v, want %s cancelled", after, cr.Cancelled[0])
			}
			select {
			case <-fake.Disconnected():
			case <-time.After(10 * time.Second):
				t.Errorf("the model's stream was still open 10 s after the cancel")
			}
			slow := rep.Results["slow"]
			if slow.Error == nil || slow.Error.Code == nil || *slow.Error.Code != -32803 || !strings.Contains(slow.Error.Message, "was cancelled") {
				t.Errorf("the cancelled chat answered %s, error %+v; want RequestFailed (-32803) \"… was cancelled\"", slow.Result, slow.Error)
			}
		})
	}
}
