package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.lsp.dev/jsonrpc2"

	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// commandHandler runs one contract command with its raw arguments.
type commandHandler func(s *Server, ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error)

// commands maps the contract's command names to their handlers. Every name
// here is advertised in executeCommandProvider.
var commands = map[string]commandHandler{
	command.Cancel: (*Server).cmdCancel,
	command.Status: (*Server).cmdStatus,
}

// commandNames lists the advertised commands in contract order.
func (s *Server) commandNames() []string {
	var out []string
	for _, name := range command.All {
		if _, ok := commands[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// executeCommand dispatches workspace/executeCommand. It always answers:
// with the command's result, with InvalidParams naming the command and the
// field for bad arguments, or with the run's error.
func (s *Server) executeCommand(ctx context.Context, params json.RawMessage) (any, error) {
	var p protocolx.ExecuteCommandParams
	if err := decodeParams("workspace/executeCommand", params, &p); err != nil {
		return nil, err
	}
	h, ok := commands[p.Command]
	if !ok {
		for _, name := range command.All {
			if name == p.Command {
				return nil, rpcError(jsonrpc2.InvalidParams, "%s: not available yet in this version of opencode-lsp", p.Command)
			}
		}
		known := s.commandNames()
		sort.Strings(known)
		return nil, rpcError(jsonrpc2.InvalidParams, "unknown command %q (known: %v)", p.Command, known)
	}
	// Commands sent right after initialized wait (briefly) for the
	// editor's settings.
	select {
	case <-s.configReady:
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
	res, err := h(s, ctx, &p)
	var ae *command.ArgError
	if errors.As(err, &ae) {
		return nil, rpcError(jsonrpc2.InvalidParams, "%s", ae.Error())
	}
	return res, err
}

// decodeArgs decodes a command's single object argument into v.
func decodeArgs(p *protocolx.ExecuteCommandParams, v any) error {
	return command.Decode(p.Command, p.Arguments, v)
}

// withRun runs fn as a registered, cancellable run with progress. fn's
// string result is the progress end message. Errors end the progress with
// "failed: …" (or "cancelled") and are returned as the command's error.
func (s *Server) withRun(ctx context.Context, kind, title string, p *protocolx.ExecuteCommandParams,
	fn func(ctx context.Context, r *run, wd *workDone) (any, string, error)) (any, error) {
	rctx, r := s.runs.start(ctx, kind)
	wd := s.progress.start(rctx, title, fmt.Sprintf("started %s (opencode.cancel {\"runId\": %q} stops it)", r.ID, r.ID), p.WorkDoneToken, r.cancel)
	res, endMsg, err := fn(rctx, r, wd)
	switch {
	case err == nil:
		wd.End(endMsg)
		s.runs.finish(r, runDone)
		return res, nil
	case rctx.Err() != nil && ctx.Err() == nil:
		// Cancelled through progress or opencode.cancel, not by the client's
		// $/cancelRequest: answer RequestFailed, because clients take
		// RequestCancelled as the acknowledgement of their own cancel and
		// drop it (Neovim does).
		wd.End("cancelled")
		s.runs.finish(r, runCancelled)
		return nil, rpcError(codeRequestFailed, "%s: %s was cancelled", p.Command, r.ID)
	case ctx.Err() != nil:
		wd.End("cancelled")
		s.runs.finish(r, runCancelled)
		return nil, rpcError(codeRequestCancelled, "%s: %s was cancelled", p.Command, r.ID)
	default:
		wd.End("failed: " + s.redactor.String(err.Error()))
		s.runs.finish(r, runFailed)
		return nil, fmt.Errorf("%s: %s", p.Command, s.redactor.String(err.Error()))
	}
}

func (s *Server) cmdCancel(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.CancelArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	res := command.CancelResult{Cancelled: []string{}}
	if a.RunID == "" {
		res.Cancelled = append(res.Cancelled, s.runs.cancelAll()...)
		return res, nil
	}
	if s.runs.cancel(a.RunID) {
		res.Cancelled = append(res.Cancelled, a.RunID)
	}
	return res, nil
}

func (s *Server) cmdStatus(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.StatusArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	res := command.StatusResult{Runs: s.runs.list()}
	res.Sandboxes, res.Usage = s.sandboxes.status()
	res.Isolation = s.sandboxes.isolation()
	return res, nil
}
