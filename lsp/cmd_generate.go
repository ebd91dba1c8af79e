package lsp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/agent/changeset"
	"github.com/opencode-lsp/opencode-lsp/agent/chat"
	"github.com/opencode-lsp/opencode-lsp/agent/opencode"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/outputdiag"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

func init() {
	commands[command.Generate] = (*Server).cmdGenerate
	commands[command.Apply] = (*Server).cmdApply
}

// cannedTasks are offered when an editor without an input box runs
// "Generate…" with no prompt.
var cannedTasks = []string{"Write tests for this code", "Add documentation comments to this code", "Fix the problems reported in this file"}

// Permission prompt choices (window/showMessageRequest).
const (
	choiceOnce   = "Allow once"
	choiceAlways = "Always"
	choiceReject = "Reject"
)

func (s *Server) cmdGenerate(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.GenerateArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	if strings.TrimSpace(a.Prompt) == "" {
		choice, err := s.showMessageRequest(ctx, protocol.MessageTypeInfo, "OpenCode: what should the agent do?", cannedTasks...)
		if err != nil || choice == "" {
			return nil, &command.ArgError{Command: command.Generate, Field: "prompt", Reason: "is required (no task was chosen)"}
		}
		a.Prompt = choice
	}
	return s.withRun(ctx, "generate", "OpenCode: Generate", p, func(ctx context.Context, r *run, wd *workDone) (any, string, error) {
		res, err := s.generate(ctx, r, wd, a)
		if err != nil {
			return nil, "", err
		}
		end := fmt.Sprintf("%d files", len(res.Files))
		if !res.Applied && len(res.Files) > 0 {
			end += ", not applied"
		}
		return res, end, nil
	})
}

// opencodeConfig builds the agent's configuration from the settings.
func (s *Server) opencodeConfig() (opencode.Config, error) {
	st := s.Settings()
	or, err := s.openrouterConfig()
	if err != nil {
		return opencode.Config{}, fmt.Errorf("the OpenCode agent: %w", err)
	}
	return opencode.Config{
		Binary: st.Generate.OpenCodePath, BaseURL: or.BaseURL, APIKey: or.APIKey, Model: or.Model,
		Permissions: opencode.Policy{
			Edit: opencode.Action(st.Generate.EditPermission), Bash: opencode.Action(st.Generate.BashPermission),
			WebFetch: opencode.Action("deny"), Other: opencode.Action("ask"),
		},
		Logger: s.log.With("agent", "opencode"),
	}, nil
}

// generate runs the agent in the sandbox's working copy and brings its work
// back as one workspace edit.
func (s *Server) generate(ctx context.Context, r *run, wd *workDone, a command.GenerateArgs) (command.GenerateResult, error) {
	res := command.GenerateResult{RunID: r.ID, Files: []command.FileChange{}, Commands: []command.CommandRun{}}
	root, err := s.rootFor(a.URI)
	if err != nil {
		return res, err
	}
	st := s.Settings()
	cfg, err := s.opencodeConfig()
	if err != nil {
		return res, err
	}
	providerName := firstNonEmpty(a.Sandbox, st.Sandbox, "local")

	wd.Report("opening the " + providerName + " sandbox")
	ps, release, err := s.sandboxes.acquire(ctx, providerName, root)
	if err != nil {
		return res, err
	}
	defer release()
	sb := ps.sb

	// Snapshot: the unsaved buffers (and their versions) the agent sees.
	overlays, versions := s.overlays(root)
	wd.Report("syncing the workspace")
	wc, err := s.prepareWorkingCopy(ctx, sb, sandbox.Source{Root: root, Overlays: overlays, Excludes: st.Sync.Excludes, IncludeGit: true})
	if err != nil {
		return res, fmt.Errorf("%s sandbox: %w", providerName, err)
	}

	wd.Report("starting OpenCode")
	srv, err := s.sandboxes.startAgent(ctx, ps, cfg, wd.Report)
	if err != nil {
		return res, err
	}
	task := opencode.Task{Prompt: a.Prompt}
	if a.URI != "" {
		if code, err := s.codeContext(a.URI, a.Range); err == nil {
			task.Context = codeContextText(code)
		}
	}
	h := &generateHandler{s: s, ctx: ctx, wd: wd, runID: r.ID}
	out, err := srv.Run(ctx, task, h)
	var agentErr *opencode.AgentError
	switch {
	case err == nil:
	case errors.As(err, &agentErr) && ctx.Err() == nil && out != nil:
		// The agent's turn failed part-way (a model error): whatever it
		// wrote is still harvested, but kept for review rather than applied.
		s.showMessage(ctx, protocol.MessageTypeError, "OpenCode: the agent stopped with an error: "+err.Error())
		no := false
		a.Apply = &no
	default:
		return res, err
	}
	for _, c := range out.Commands {
		res.Commands = append(res.Commands, command.CommandRun{Command: c.Command, ExitCode: c.ExitCode, OutputTail: c.OutputTail})
	}

	wd.Report("collecting the changes")
	changes, refused, err := changeset.Harvest(ctx, sb, wc.Snapshot, changeset.Limits{MaxFileSize: st.Generate.MaxFileBytes, Ignore: opencode.NoisePaths})
	if err != nil {
		return res, fmt.Errorf("collecting the agent's changes: %w", err)
	}
	changes, ignored := dropIgnored(changes, wc.Ignored)
	if len(ignored) > 0 {
		refused = append(refused, changeset.Refusal{Reason: fmt.Sprintf("%d files git ignores (build outputs, dependencies such as %s) left out", len(ignored), ignored[0])})
	}
	if unseen, unreported := changeset.CrossCheck(changes, refused, out.ToolFiles); len(unseen)+len(unreported) > 0 {
		s.log.Info("Harvest and tool reports differ", "run", r.ID, "toolOnly", unseen, "diffOnly", unreported)
	}
	fcs, conflicts := s.toFileChanges(root, changes, overlays, versions)
	refused = append(refused, conflicts...)
	for _, c := range fcs {
		res.Files = append(res.Files, command.FileChange{Path: c.Rel, URI: c.URI, Action: c.Action})
	}
	s.publishCommandDiagnostics(ctx, out.Commands, sb, root, providerName)

	var notes []string
	for _, rf := range refused {
		if rf.Path == "" {
			notes = append(notes, rf.Reason)
		} else {
			notes = append(notes, fmt.Sprintf("%s: %s", rf.Path, rf.Reason))
		}
	}
	label := "OpenCode: " + firstLine(a.Prompt)
	if len(fcs) > 0 {
		apply := a.Apply == nil || *a.Apply
		if apply {
			wd.Report("applying " + summarizeChanges(fcs))
			needsConfirmation := st.Generate.NeedsConfirmation == nil || *st.Generate.NeedsConfirmation
			outcome, err := s.applyChanges(ctx, label, fcs, needsConfirmation)
			switch {
			case err != nil:
				notes = append(notes, "not applied: "+err.Error())
			case !outcome.Applied:
				notes = append(notes, "not applied: "+outcome.Reason)
			default:
				res.Applied = true
				applyModes(fcs)
				if len(outcome.OnDisk) > 0 {
					notes = append(notes, "written to disk by the server (the editor cannot create or delete files): "+strings.Join(outcome.OnDisk, ", "))
					for _, c := range fcs {
						if c.Action == actionCreated && s.caps.ShowDocument {
							s.showDocument(ctx, string(c.URI), false, nil) // the first file the server created
							break
						}
					}
				}
			}
		}
		if !res.Applied {
			s.runs.keepChanges(r.ID, &pendingChanges{Label: label, Changes: fcs})
			notes = append(notes, fmt.Sprintf("the changes are kept: run opencode.apply {\"runId\": %q} to apply them", r.ID))
			if apply {
				s.showMessage(ctx, protocol.MessageTypeWarning, "OpenCode: the agent's changes were not applied ("+notes[len(notes)-2]+"); nothing was overwritten. The changes are kept: opencode.apply applies them once the files match what the agent saw.")
			}
		}
	}
	res.Message = strings.TrimSpace(out.Text)
	if agentErr != nil {
		notes = append([]string{"the agent stopped with an error: " + agentErr.Error()}, notes...)
	}
	if len(notes) > 0 {
		res.Message = strings.TrimSpace(res.Message + "\n\n" + strings.Join(notes, "\n"))
	}
	return res, nil
}

// toFileChanges turns harvested changes into changes against what the
// editor had at snapshot time. A file whose disk content changed since the
// snapshot (and is not open) is refused rather than overwritten.
func (s *Server) toFileChanges(root string, changes []changeset.Change, overlays map[string][]byte, versions map[string]int32) ([]fileChange, []changeset.Refusal) {
	var out []fileChange
	var refused []changeset.Refusal
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		realRoot = root
	}
	for _, c := range changes {
		abs := filepath.Join(root, filepath.FromSlash(c.Path))
		// The workspace may have a symlinked directory the sandbox never
		// showed the agent (it points outside): a file "in" it would be
		// written outside the workspace.
		if !staysInside(realRoot, abs) {
			refused = append(refused, changeset.Refusal{Path: c.Path, Reason: "leads outside the workspace through a symlink in it; left out"})
			continue
		}
		fc := fileChange{Rel: c.Path, Path: abs, URI: s.uriFor(abs), Action: string(c.Action), New: c.Content, Mode: c.Mode}
		if text, open := overlays[c.Path]; open {
			fc.Base = text
			v := versions[c.Path]
			fc.Version = &v
		} else if c.Action != changeset.Created {
			disk, err := os.ReadFile(abs)
			if err != nil || hashHex(disk) != c.OldHash {
				refused = append(refused, changeset.Refusal{Path: c.Path, Reason: "changed on disk since the run started; left out"})
				continue
			}
			fc.Base = disk
		} else if _, err := os.Lstat(abs); err == nil {
			refused = append(refused, changeset.Refusal{Path: c.Path, Reason: "was created in the workspace meanwhile; left out"})
			continue
		}
		out = append(out, fc)
	}
	return out, refused
}

// dropIgnored splits off the changes to files git ignores in the workspace
// (an `npm install` the agent ran fills node_modules/): they stay in the
// sandbox and are not brought into the editor.
func dropIgnored(changes []changeset.Change, ignored *sandbox.Excluder) (kept []changeset.Change, dropped []string) {
	for _, c := range changes {
		if ignored.Excluded(c.Path) {
			dropped = append(dropped, c.Path)
			continue
		}
		kept = append(kept, c)
	}
	return kept, dropped
}

// staysInside reports whether path, with every symlink in its existing part
// resolved, is inside realRoot (itself resolved).
func staysInside(realRoot, path string) bool {
	existing, rest := path, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return false
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return false
	}
	return within(realRoot, filepath.Join(resolved, rest))
}

// publishCommandDiagnostics parses the output the agent's commands printed
// into diagnostics, as opencode.run would.
func (s *Server) publishCommandDiagnostics(ctx context.Context, cmds []opencode.Command, sb sandbox.Sandbox, root, provider string) {
	for _, c := range cmds {
		if strings.TrimSpace(c.OutputTail) == "" {
			continue
		}
		text := func(rel string) ([]byte, bool) {
			b, err := sb.ReadFile(ctx, rel)
			return b, err == nil
		}
		pr, err := outputdiag.Parse(ctx, strings.NewReader(c.OutputTail), outputdiag.Spec{
			Command: c.Command, SandboxRoot: sb.Root(), WorkspaceRoot: root, Encoding: s.encoding,
		}, text)
		if err != nil || len(pr.ByURI) == 0 {
			continue
		}
		byURI := map[protocol.DocumentURI][]protocol.Diagnostic{}
		s.addEditorURIs(byURI, pr.ByURI)
		s.diags.Set(ctx, "run:"+root+":"+c.Command, byURI)
	}
}

func (s *Server) cmdApply(ctx context.Context, p *protocolx.ExecuteCommandParams) (any, error) {
	var a command.ApplyArgs
	if err := decodeArgs(p, &a); err != nil {
		return nil, err
	}
	if err := command.Require(command.Apply, "runId", a.RunID); err != nil {
		return nil, err
	}
	pc := s.runs.takeChanges(a.RunID)
	if pc == nil {
		return nil, &command.ArgError{Command: command.Apply, Field: "runId", Reason: fmt.Sprintf("%q has no pending changes", a.RunID)}
	}
	st := s.Settings()
	changes, problems := s.revalidate(pc.Changes)
	if len(problems) > 0 {
		s.runs.keepChanges(a.RunID, pc) // nothing is lost
		return nil, fmt.Errorf("%s: not applied: %s (the changes are kept; they apply once the files match what the agent saw)", command.Apply, strings.Join(problems, "; "))
	}
	outcome, err := s.applyChanges(ctx, pc.Label, changes, st.Generate.NeedsConfirmation == nil || *st.Generate.NeedsConfirmation)
	if err != nil || !outcome.Applied {
		s.runs.keepChanges(a.RunID, pc) // nothing is lost
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: not applied: %s", command.Apply, outcome.Reason)
	}
	applyModes(changes)
	res := command.GenerateResult{RunID: a.RunID, Message: summarizeChanges(pc.Changes), Files: []command.FileChange{}, Commands: []command.CommandRun{}, Applied: true}
	for _, c := range pc.Changes {
		res.Files = append(res.Files, command.FileChange{Path: c.Rel, URI: c.URI, Action: c.Action})
	}
	return res, nil
}

// revalidate checks a kept change set against the workspace as it is now:
// every file must still hold the text the agent's change was computed
// against (then an open document's edit carries its current version, so a
// change refused earlier applies once the user undid their typing); a file
// to create must not exist. It returns the updated changes, or why not.
func (s *Server) revalidate(changes []fileChange) ([]fileChange, []string) {
	out := make([]fileChange, len(changes))
	var problems []string
	for i, c := range changes {
		out[i] = c
		d := s.docs.byPath(c.Path)
		switch {
		case c.Action == actionCreated:
			if _, err := os.Lstat(c.Path); err == nil {
				problems = append(problems, c.Rel+" exists now")
			}
		case d != nil:
			if string(d.Text) != string(c.Base) {
				problems = append(problems, c.Rel+" changed in the editor since the run")
				continue
			}
			v := d.Version
			out[i].Version = &v
		default:
			disk, err := os.ReadFile(c.Path)
			if err != nil || string(disk) != string(c.Base) {
				problems = append(problems, c.Rel+" changed on disk since the run")
				continue
			}
			out[i].Version = nil
		}
	}
	return out, problems
}

// generateHandler connects an agent run to the editor.
type generateHandler struct {
	s     *Server
	ctx   context.Context
	wd    *workDone
	runID string
}

func (h *generateHandler) Progress(msg string) { h.wd.Report(msg) }

func (h *generateHandler) TextDelta(delta string) {
	h.s.notify(h.ctx, protocolx.MethodChatDelta, protocolx.ChatDeltaParams{ThreadID: h.runID, RunID: h.runID, Delta: delta})
}

// Permission asks the user with window/showMessageRequest; no answer (a
// dismissed prompt, a client that never answers) rejects.
func (h *generateHandler) Permission(ctx context.Context, req opencode.PermissionRequest) (opencode.Reply, error) {
	msg := "OpenCode asks for permission: " + req.Kind
	if r, size := utf8.DecodeRuneInString(req.Title); req.Title != "" {
		msg = "OpenCode asks to " + string(unicode.ToLower(r)) + req.Title[size:]
	}
	choice, err := h.s.showMessageRequest(ctx, protocol.MessageTypeWarning, msg, choiceOnce, choiceAlways, choiceReject)
	if err != nil {
		return opencode.ReplyReject, err
	}
	switch choice {
	case choiceOnce:
		return opencode.ReplyOnce, nil
	case choiceAlways:
		return opencode.Reply("always"), nil
	}
	return opencode.ReplyReject, nil
}

// codeContextText renders a question's code context as plain text for the
// agent's prompt.
func codeContextText(c *chat.Code) string {
	return strings.TrimSpace(chat.Question("", c, 4000))
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
