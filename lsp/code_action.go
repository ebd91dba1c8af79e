package lsp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// Code action kinds the server offers. The OpenCode actions are refactor
// sub-kinds so that editors list them with other refactorings (VS Code's
// lightbulb, Neovim's code_action()); running the sandbox is a source action
// on the whole project; fixes are quickfixes.
const (
	codeActionKindOpenCode = "refactor.opencode"
	codeActionKindRun      = "source.opencode.run"
)

// Code action titles (all start with "OpenCode: ").
const (
	titleExplain  = "OpenCode: Explain selection"
	titleAsk      = "OpenCode: Ask about selection…"
	titleGenerate = "OpenCode: Generate…"
	titleRun      = "OpenCode: Run in sandbox"
	titleFix      = "OpenCode: Fix with OpenCode"
)

// codeAction lists the contract's actions. It is cheap by design: no
// network, no sandbox, no file I/O — every action is a command that does its
// work in workspace/executeCommand.
func (s *Server) codeAction(ctx context.Context, params json.RawMessage) (any, error) {
	var p protocolx.CodeActionParams
	if err := decodeParams("textDocument/codeAction", params, &p); err != nil {
		return nil, err
	}
	uri := p.TextDocument.URI
	rng := p.Range
	var sel *protocol.Range
	if rng.Start != rng.End {
		sel = &rng
	}
	type action struct {
		kind  string
		title string
		cmd   protocol.Command
		diags []protocol.Diagnostic
	}
	actions := []action{
		{codeActionKindOpenCode + ".explain", titleExplain, cmd(titleExplain, command.Explain, command.ExplainArgs{URI: uri, Range: sel}), nil},
		{codeActionKindOpenCode + ".ask", titleAsk, cmd(titleAsk, command.Chat, command.ChatArgs{URI: uri, Range: &rng}), nil},
		{codeActionKindOpenCode + ".generate", titleGenerate, cmd(titleGenerate, command.Generate, command.GenerateArgs{URI: uri, Range: &rng}), nil},
		{codeActionKindRun, titleRun, cmd(titleRun, command.Run, command.RunArgs{URI: uri}), nil},
	}
	var published []protocol.Diagnostic
	if len(p.Context.Diagnostics) > 0 {
		published = s.diags.Get(uri)
	}
	for _, d := range p.Context.Diagnostics {
		// Lines only: some clients (Neovim 0.7) send the context's
		// diagnostics with byte columns whatever the negotiated encoding.
		if d.Range.End.Line < rng.Start.Line || d.Range.Start.Line > rng.End.Line {
			continue
		}
		// One of ours: take the range we published, in the right encoding.
		for _, pd := range published {
			if pd.Message == d.Message && pd.Range.Start.Line == d.Range.Start.Line {
				d.Range = pd.Range
				break
			}
		}
		r := d.Range
		prompt := fixPrompt(d)
		actions = append(actions, action{string(protocol.QuickFix), titleFix,
			cmd(titleFix, command.Generate, command.GenerateArgs{Prompt: prompt, URI: uri, Range: &r}),
			[]protocol.Diagnostic{d}})
	}

	// An automatic request (the cursor moved) with no selection gets only
	// the quickfixes, so that editors do not show a lightbulb on every line;
	// with a selection, or when the user asks, every action is offered.
	automaticAtCursor := p.Context.TriggerKind == 2 && sel == nil
	var out []any
	for _, a := range actions {
		if !kindAllowed(a.kind, p.Context.Only) || (automaticAtCursor && a.kind != string(protocol.QuickFix)) {
			continue
		}
		if !s.caps.CodeActionLiterals {
			// LSP: clients without codeActionLiteralSupport take Command[].
			out = append(out, a.cmd)
			continue
		}
		out = append(out, protocol.CodeAction{Title: a.title, Kind: protocol.CodeActionKind(a.kind), Diagnostics: a.diags, Command: &a.cmd})
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// resolveCodeAction returns the action unchanged: every action is
// command-only, so there is nothing to resolve (some clients resolve every
// action eagerly; this must stay cheap).
func (s *Server) resolveCodeAction(ctx context.Context, params json.RawMessage) (any, error) {
	var a json.RawMessage
	if err := decodeParams("codeAction/resolve", params, &a); err != nil {
		return nil, err
	}
	return a, nil
}

func cmd(title, name string, args any) protocol.Command {
	return protocol.Command{Title: title, Command: name, Arguments: []any{args}}
}

// kindAllowed implements CodeActionContext.only: a kind matches an entry
// that equals it or is a dot-separated prefix of it.
func kindAllowed(kind string, only []protocol.CodeActionKind) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if o == "" || kind == string(o) || strings.HasPrefix(kind, string(o)+".") {
			return true
		}
	}
	return false
}

func overlaps(a, b protocol.Range) bool {
	return !before(a.End, b.Start) && !before(b.End, a.Start)
}

func before(p, q protocol.Position) bool {
	return p.Line < q.Line || (p.Line == q.Line && p.Character < q.Character)
}

// fixPrompt is the agent prompt for a diagnostic's quickfix.
func fixPrompt(d protocol.Diagnostic) string {
	src := d.Source
	if d.Code != nil {
		src = strings.TrimSpace(fmt.Sprintf("%s %v", src, d.Code))
	}
	if src != "" {
		src = " (" + src + ")"
	}
	return fmt.Sprintf("Fix this problem reported at line %d%s: %s", d.Range.Start.Line+1, src, d.Message)
}
