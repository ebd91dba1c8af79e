package lsp

import (
	"context"
	"errors"

	"github.com/sourcegraph/conc"
	"go.lsp.dev/protocol"

	askroute "github.com/opencode-lsp/opencode-lsp/agent/route"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

func init() {
	commands[command.Ask] = (*Server).cmdAsk
}

// cmdAsk implements opencode.ask: smart routing to chat, generate, or both
// in parallel (the result names the route taken).
func (s *Server) cmdAsk(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.AskArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	if err := command.Require(command.Ask, "prompt", a.Prompt); err != nil {
		return nil, err
	}
	d := askroute.Decide(a.Prompt, s.Settings().Routing.BuildKeywords)
	s.log.Info("Routing", "route", d.Route, "reason", d.Reason)
	if d.Prompt == "" {
		return nil, &command.ArgError{Command: command.Ask, Field: "prompt", Reason: "has nothing after " + d.Reason}
	}
	res := command.AskResult{Route: d.Route}
	return s.withRun(ctx, "ask", "OpenCode: Ask ("+d.Route+")", p, func(ctx context.Context, r *run, wd *workDone) (any, string, error) {
		chatArgs := command.ChatArgs{Prompt: d.Prompt, URI: a.URI, Range: a.Range}
		genArgs := command.GenerateArgs{Prompt: d.Prompt, URI: a.URI, Range: a.Range}
		switch d.Route {
		case askroute.Chat:
			c, err := s.chat(ctx, r, wd, chatArgs)
			if err != nil {
				return nil, "", err
			}
			res.Chat = &c
		case askroute.Generate:
			g, err := s.generate(ctx, r, wd, genArgs)
			if err != nil {
				return nil, "", err
			}
			res.Generate = &g
		case askroute.Both:
			// Both at once; an error in one does not hide the other's result.
			var chatErr, genErr error
			var wg conc.WaitGroup
			wg.Go(func() {
				c, err := s.chat(ctx, r, wd, chatArgs)
				res.Chat, chatErr = &c, err
			})
			wg.Go(func() {
				g, err := s.generate(ctx, r, wd, genArgs)
				res.Generate, genErr = &g, err
			})
			wg.Wait()
			switch {
			case chatErr != nil && genErr != nil:
				return nil, "", errors.Join(chatErr, genErr)
			case chatErr != nil:
				res.Chat = nil
				s.showMessage(ctx, protocol.MessageTypeWarning, "OpenCode: the chat answer failed: "+chatErr.Error())
			case genErr != nil:
				res.Generate = nil
				s.showMessage(ctx, protocol.MessageTypeWarning, "OpenCode: the agent failed: "+genErr.Error())
			}
		}
		return res, "route: " + d.Route, nil
	})
}
