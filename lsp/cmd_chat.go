package lsp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/agent/chat"
	"github.com/opencode-lsp/opencode-lsp/agent/openrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

func init() {
	commands[command.Chat] = (*Server).cmdChat
	commands[command.Explain] = (*Server).cmdExplain
}

// longAnswer is the length from which an answer is opened as a document
// instead of being shown in a message.
const longAnswer = 400

// cannedQuestions are offered (window/showMessageRequest) when an editor
// without an input box runs "Ask about selection…" with no prompt.
var cannedQuestions = []string{"What does this code do?", "Are there bugs in this code?", "How could this code be improved?"}

func (s *Server) cmdChat(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.ChatArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	if strings.TrimSpace(a.Prompt) == "" {
		choice, err := s.showMessageRequest(ctx, protocol.MessageTypeInfo, "OpenCode: what do you want to ask about this code?", cannedQuestions...)
		if err != nil || choice == "" {
			return nil, &command.ArgError{Command: command.Chat, Field: "prompt", Reason: "is required (no question was chosen)"}
		}
		a.Prompt = choice
	}
	return s.withRun(ctx, "chat", "OpenCode: Chat", p, func(ctx context.Context, r *run, wd *workDone) (any, string, error) {
		res, err := s.chat(ctx, r, wd, a)
		return res, "answered", err
	})
}

func (s *Server) cmdExplain(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.ExplainArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	if err := command.Require(command.Explain, "uri", string(a.URI)); err != nil {
		return nil, err
	}
	return s.withRun(ctx, "explain", "OpenCode: Explain", p, func(ctx context.Context, r *run, wd *workDone) (any, string, error) {
		res, err := s.chat(ctx, r, wd, command.ChatArgs{Prompt: chat.ExplainPrompt, URI: a.URI, Range: a.Range})
		return res, "answered", err
	})
}

// openrouterConfig is OpenRouter's configuration: the settings, with the
// environment (OPENROUTER_API_KEY, OPENROUTER_BASE_URL) where they say
// nothing. Chat and the OpenCode agent both use it.
func (s *Server) openrouterConfig() (openrouter.Config, error) {
	st := s.Settings()
	cfg := openrouter.Config{
		APIKey: st.OpenRouter.APIKey, BaseURL: st.OpenRouter.BaseURL, Model: st.OpenRouter.Model,
		Logger: s.log.With("service", "openrouter"),
	}
	if cfg.APIKey != "" {
		cfg.KeySource = openrouter.KeySourceSetting
	}
	cfg = openrouter.ConfigFromEnv(cfg, s.getenv)
	if cfg.APIKey == "" {
		return cfg, errors.New("no OpenRouter API key: set the OPENROUTER_API_KEY environment variable or the opencode.openrouter.apiKey setting")
	}
	return cfg, nil
}

// chatClient builds an OpenRouter client from the settings and environment.
func (s *Server) chatClient() (*openrouter.Client, error) {
	cfg, err := s.openrouterConfig()
	if err != nil {
		return nil, err
	}
	return openrouter.New(cfg)
}

// chat answers one question, streaming deltas to the editor.
func (s *Server) chat(ctx context.Context, r *run, wd *workDone, a command.ChatArgs) (command.ChatResult, error) {
	client, err := s.chatClient()
	if err != nil {
		return command.ChatResult{}, err
	}
	var code *chat.Code
	if a.URI != "" {
		c, err := s.codeContext(a.URI, a.Range)
		if err != nil {
			return command.ChatResult{}, err
		}
		code = c
	}
	threadID := a.ThreadID
	if threadID == "" {
		threadID = s.threads.newID()
	}
	history := s.threads.get(threadID)
	msgs := chat.Messages(a.Prompt, code, history, s.Settings().OpenRouter.MaxContextTokens)
	req := openrouter.Request{Model: a.Model}
	for _, m := range msgs {
		req.Messages = append(req.Messages, openrouter.Message{Role: m.Role, Content: m.Content})
	}
	wd.Report("asking " + firstNonEmpty(a.Model, s.Settings().OpenRouter.Model, "the default model"))
	var chars int
	res, err := client.Stream(ctx, req, func(ev openrouter.Event) {
		switch ev.Kind {
		case openrouter.EventDelta:
			chars += len(ev.Delta)
			s.notify(ctx, protocolx.MethodChatDelta, protocolx.ChatDeltaParams{ThreadID: threadID, RunID: r.ID, Delta: ev.Delta})
			wd.Report(fmt.Sprintf("receiving (%d characters)", chars))
		case openrouter.EventWaiting:
			wd.Report("waiting for the model")
		case openrouter.EventRetry:
			wd.Report(fmt.Sprintf("retrying in %s (attempt %d)", ev.RetryIn.Round(time.Second), ev.Attempt))
		}
	})
	if err != nil {
		return command.ChatResult{}, err
	}
	// The thread keeps the question with its code, so follow-ups can refer to it.
	s.threads.append(threadID, chat.Turn{Role: "user", Content: msgs[len(msgs)-1].Content}, chat.Turn{Role: "assistant", Content: res.Text})
	out := command.ChatResult{ThreadID: threadID, Text: res.Text, Model: res.Model}
	if res.Usage != nil {
		out.Usage = &command.Usage{PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens, Cost: res.Usage.Cost}
	}
	s.presentAnswer(ctx, threadID, res.Text)
	return out, nil
}

// presentAnswer shows the answer to editors that do not render
// opencode/chatDelta themselves (the contract's fallback): a short answer in
// window/showMessage, a long one as a Markdown document opened with
// window/showDocument when the client supports it. Editor plugins that
// render answers set opencode.answers to "none".
func (s *Server) presentAnswer(ctx context.Context, threadID, text string) {
	if s.Settings().Answers == "none" || strings.TrimSpace(text) == "" {
		return
	}
	if len(text) >= longAnswer && s.caps.ShowDocument {
		if path, err := s.writeAnswer(threadID, text); err == nil {
			if s.showDocument(ctx, string(pathToURI(path)), false, nil) {
				return
			}
		} else {
			s.log.Warn("Writing the answer document failed", "err", err)
		}
	}
	msg := text
	if len(msg) > 2000 {
		msg = strings.ToValidUTF8(msg[:2000], "") + "… (answer truncated; the full text is in the command result)"
	}
	s.showMessage(ctx, protocol.MessageTypeInfo, msg)
}

// writeAnswer stores an answer as Markdown under the user's cache dir.
func (s *Server) writeAnswer(threadID, text string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "opencode-lsp", "answers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// Answers are for reading now: ones older than a week are removed.
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 7*24*time.Hour {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	path := filepath.Join(dir, sanitizeKey(threadID)+".md")
	return path, os.WriteFile(path, []byte(text), 0o600)
}

// codeContext gathers what a question about uri (and rng) needs.
func (s *Server) codeContext(uri protocol.DocumentURI, rng *protocol.Range) (*chat.Code, error) {
	d, err := s.requireDocument("", uri) // the run's error names the command
	if err != nil {
		return nil, err
	}
	if looksBinary(d.Text) {
		return nil, fmt.Errorf("%s looks like a binary file; ask about text", uri)
	}
	c := &chat.Code{Path: string(uri), Language: d.LanguageID, Text: string(d.Text), StartLine: 1}
	if d.Path != "" {
		if root, err := s.rootFor(uri); err == nil && within(root, d.Path) {
			if rel, err := filepath.Rel(root, d.Path); err == nil {
				c.Path = filepath.ToSlash(rel)
			}
		}
	}
	if rng != nil {
		m := d.Mapper()
		start, err1 := m.Offset(int(rng.Start.Line), int(rng.Start.Character), s.encoding)
		end, err2 := m.Offset(int(rng.End.Line), int(rng.End.Character), s.encoding)
		if err1 == nil && err2 == nil {
			c.SelStart, c.SelEnd, c.StartLine = start, end, int(rng.Start.Line)+1
		}
	}
	for _, diag := range s.diags.Get(d.URI) {
		if rng != nil && rng.Start != rng.End && !overlaps(diag.Range, *rng) {
			continue
		}
		sev := severityWords[diag.Severity]
		c.Problems = append(c.Problems, fmt.Sprintf("%d:%d %s: %s", diag.Range.Start.Line+1, diag.Range.Start.Character+1, firstNonEmpty(sev, "problem"), diag.Message))
	}
	return c, nil
}

// severityWords name LSP's diagnostic severities.
var severityWords = map[protocol.DiagnosticSeverity]string{1: "error", 2: "warning", 3: "info", 4: "hint"}

// threadStore keeps chat threads (threadId → turns) for follow-ups, bounded:
// at most maxThreads threads of maxTurns turns each.
type threadStore struct {
	mu      sync.Mutex
	seq     int
	threads map[string][]chat.Turn
	order   []string
}

const (
	maxThreads = 64
	maxTurns   = 20
)

func newThreadStore() *threadStore { return &threadStore{threads: map[string][]chat.Turn{}} }

func (t *threadStore) newID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	return fmt.Sprintf("thread-%d-%d", time.Now().Unix(), t.seq)
}

func (t *threadStore) get(id string) []chat.Turn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]chat.Turn(nil), t.threads[id]...)
}

func (t *threadStore) append(id string, turns ...chat.Turn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.threads[id]; !ok {
		t.order = append(t.order, id)
		if len(t.order) > maxThreads {
			delete(t.threads, t.order[0])
			t.order = t.order[1:]
		}
	}
	all := append(t.threads[id], turns...)
	if len(all) > maxTurns {
		all = all[len(all)-maxTurns:]
	}
	t.threads[id] = all
}
