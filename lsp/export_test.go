package lsp

import (
	"context"
	"encoding/json"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/agent/changeset"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// Test hooks: commands and server internals reachable from package lsp_test.

// TestCommandFunc is the body of a test-only command.
type TestCommandFunc func(ctx context.Context, s *Server, args json.RawMessage) (any, error)

// RegisterTestCommand adds a command (advertised like the real ones) for
// the duration of the test binary.
func RegisterTestCommand(name string, fn TestCommandFunc) {
	commands[name] = func(s *Server, ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
		var arg json.RawMessage
		if len(p.Arguments) > 0 {
			arg = p.Arguments[0]
		}
		return fn(ctx, s, arg)
	}
}

// WithRun exposes withRun to test commands.
func (s *Server) WithRun(ctx context.Context, kind, title string, fn func(ctx context.Context, report func(string)) (any, error)) (any, error) {
	p := &protocolx.ExecuteCommandParams{Command: "test." + kind}
	return s.withRun(ctx, kind, title, p, func(ctx context.Context, r *run, wd *workDone) (any, string, error) {
		res, err := fn(ctx, wd.Report)
		return res, "done", err
	})
}

// SetDiagnostics exposes the diagnostics publisher.
func (s *Server) SetDiagnostics(ctx context.Context, producer string, byURI map[protocol.DocumentURI][]protocol.Diagnostic) int {
	return s.diags.Set(ctx, producer, byURI)
}

// TestChange is a change for ApplyChanges.
type TestChange struct {
	Rel, Path, Action string
	Base, New         []byte
	Version           *int32
}

// ApplyChanges exposes applyChanges.
func (s *Server) ApplyChanges(ctx context.Context, changes []TestChange) (applied bool, reason string, onDisk []string, err error) {
	var fc []fileChange
	for _, c := range changes {
		fc = append(fc, fileChange{Rel: c.Rel, Path: c.Path, URI: s.uriFor(c.Path), Action: c.Action, Base: c.Base, New: c.New, Version: c.Version})
	}
	out, err := s.applyChanges(ctx, "test", fc, false)
	return out.Applied, out.Reason, out.OnDisk, err
}

// DocumentVersion returns an open document's version (-1 when not open).
func (s *Server) DocumentVersion(uri protocol.DocumentURI) int32 {
	if d := s.docs.get(uri); d != nil {
		return d.Version
	}
	return -1
}

// Encoding returns the negotiated position encoding.
func (s *Server) Encoding() string { return string(s.encoding) }

// CurrentSettings returns the settings.
func (s *Server) CurrentSettings() Settings { return s.Settings() }

// AskUser exposes showMessageRequest.
func (s *Server) AskUser(ctx context.Context, msg string, actions ...string) (string, error) {
	return s.showMessageRequest(ctx, protocol.MessageTypeInfo, msg, actions...)
}

// ApplyHarvest exposes what opencode.generate does with harvested changes
// once the agent is idle: toFileChanges against the editor's open buffers
// (taken now; generate takes them at snapshot time), then one
// workspace/applyEdit through applyChanges, with needsConfirmation as a
// default generate run sets it. refused counts the changes left out.
func (s *Server) ApplyHarvest(ctx context.Context, root string, changes []changeset.Change) (applied bool, reason string, refused int, err error) {
	overlays, versions := s.overlays(root)
	fcs, conflicts := s.toFileChanges(root, changes, overlays, versions)
	out, err := s.applyChanges(ctx, "OpenCode: bench", fcs, true)
	return out.Applied, out.Reason, len(conflicts), err
}

// ReportOutput writes p to a run's progress line writer.
func (s *Server) ReportOutput(ctx context.Context, p []byte) {
	wd := s.progress.start(ctx, "Output", "", nil, nil)
	_, _ = wd.Writer().Write(p)
	wd.End("done")
}
