package lsp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// routes maps every method the server serves to its handler.
var routes = map[string]route{
	"initialize":                          {fn: (*Server).initialize, inline: true},
	"initialized":                         {fn: (*Server).initialized, inline: true},
	"shutdown":                            {fn: (*Server).shutdown, inline: true},
	"exit":                                {fn: (*Server).exit, inline: true},
	"textDocument/didOpen":                {fn: (*Server).didOpen, inline: true},
	"textDocument/didChange":              {fn: (*Server).didChange, inline: true},
	"textDocument/didClose":               {fn: (*Server).didClose, inline: true},
	"textDocument/didSave":                {fn: (*Server).didSave, inline: true},
	"workspace/didChangeConfiguration":    {fn: (*Server).didChangeConfiguration, inline: true},
	"workspace/didChangeWorkspaceFolders": {fn: (*Server).didChangeWorkspaceFolders, inline: true},
	"window/workDoneProgress/cancel":      {fn: (*Server).workDoneProgressCancel, inline: true},
	"textDocument/codeAction":             {fn: (*Server).codeAction},
	protocolx.MethodCodeActionResolve:     {fn: (*Server).resolveCodeAction},
	"workspace/executeCommand":            {fn: (*Server).executeCommand},
}

func (s *Server) initialize(ctx context.Context, params json.RawMessage) (any, error) {
	if !s.state.CompareAndSwap(int32(stateUninitialized), int32(stateInitializing)) {
		return nil, rpcError(jsonrpc2.InvalidRequest, "initialize: the server is already initialized")
	}
	var p protocolx.InitializeParams
	if err := decodeParams("initialize", params, &p); err != nil {
		s.state.Store(int32(stateUninitialized))
		return nil, err
	}
	caps, err := protocolx.ParseClientCapabilities(p.Capabilities)
	if err != nil {
		s.state.Store(int32(stateUninitialized))
		return nil, rpcError(jsonrpc2.InvalidParams, "initialize: %v", err)
	}
	s.caps = caps
	if p.ClientInfo != nil {
		s.clientName = strings.TrimSpace(p.ClientInfo.Name + " " + p.ClientInfo.Version)
	}
	var pid int64
	if p.ProcessID != nil {
		pid = *p.ProcessID
	}
	s.rootsMu.Lock()
	s.roots = workspaceRoots(p)
	s.rootsMu.Unlock()

	s.settingsMu.Lock()
	st, problems := ParseSettings(s.settings, p.InitializationOptions)
	s.settings = st
	s.baseSettings = st
	s.refreshSecrets(st)
	s.settingsMu.Unlock()

	s.encoding = negotiateEncoding(caps.PositionEncodings, st.PositionEncoding)
	if len(problems) > 0 {
		go s.reportSettingProblems(s.ctx, "initializationOptions", problems)
	}
	if pid > 0 {
		go s.watchProcess(s.ctx, int(pid))
	}
	s.log.Info("Initialize", "client", s.clientName, "roots", s.workspaceRoots(), "positionEncoding", s.encoding,
		"workDoneProgress", caps.WorkDoneProgress, "documentChanges", caps.DocumentChanges,
		"resourceOperations", caps.ResourceOperations, "showDocument", caps.ShowDocument)

	kinds := []string{string(protocol.QuickFix), codeActionKindOpenCode, codeActionKindRun}
	var codeActionProvider any = protocolx.CodeActionOptions{CodeActionKinds: kinds}
	return protocolx.InitializeResult{
		Capabilities: protocolx.ServerCapabilities{
			PositionEncoding:       string(s.encoding),
			TextDocumentSync:       protocolx.TextDocumentSyncOptions{OpenClose: true, Change: 1, Save: true},
			CodeActionProvider:     codeActionProvider,
			ExecuteCommandProvider: &protocolx.ExecuteCommandOptions{Commands: s.commandNames()},
			Workspace: &protocolx.ServerWorkspace{WorkspaceFolders: &protocolx.WorkspaceFoldersServerCapabilities{
				Supported: true, ChangeNotifications: true,
			}},
		},
		ServerInfo: &protocol.ServerInfo{Name: "opencode-lsp", Version: s.opts.Version},
	}, nil
}

// negotiateEncoding picks the position encoding: the forced setting when
// the client offers it (or it is UTF-16, which every client supports), else
// the client's first preference (all three are supported), else UTF-16, the
// LSP default.
func negotiateEncoding(offered []string, forced string) position.Encoding {
	if e := position.Encoding(forced); e.Valid() && (e == position.UTF16 || slices.Contains(offered, forced)) {
		return e
	}
	for _, o := range offered {
		if e := position.Encoding(o); e.Valid() {
			return e
		}
	}
	return position.UTF16
}

func workspaceRoots(p protocolx.InitializeParams) []string {
	var roots []string
	add := func(u string) {
		if path, ok := uriToPath(protocol.DocumentURI(u)); ok {
			for _, r := range roots {
				if r == path {
					return
				}
			}
			roots = append(roots, path)
		}
	}
	for _, f := range p.WorkspaceFolders {
		add(f.URI)
	}
	if len(roots) == 0 && p.RootURI != "" {
		add(string(p.RootURI))
	}
	if len(roots) == 0 && p.RootPath != "" {
		if abs, err := filepath.Abs(p.RootPath); err == nil {
			roots = append(roots, abs)
		}
	}
	return roots
}

func (s *Server) initialized(ctx context.Context, _ json.RawMessage) (any, error) {
	s.state.CompareAndSwap(int32(stateInitializing), int32(stateInitialized))
	s.sandboxes.startup(s.ctx) // kill orphan cloud sandboxes, in the background
	if s.caps.Configuration {
		go func() {
			s.pullConfiguration(s.ctx)
			s.configOnce.Do(func() { close(s.configReady) })
		}()
	} else {
		s.configOnce.Do(func() { close(s.configReady) })
	}
	return nil, nil
}

func (s *Server) shutdown(ctx context.Context, _ json.RawMessage) (any, error) {
	s.state.Store(int32(stateShutdown))
	s.releaseAll("shutdown")
	return nil, nil
}

func (s *Server) exit(ctx context.Context, _ json.RawMessage) (any, error) {
	code := int32(1)
	if s.State() == stateShutdown {
		code = 0
	}
	s.exitCode.CompareAndSwap(-1, code)
	s.exitOnce.Do(func() { close(s.exited) })
	return nil, nil
}

// pullConfiguration asks the client for the `opencode` section and applies it.
func (s *Server) pullConfiguration(ctx context.Context) {
	seq := s.pullSeq.Add(1)
	var result []json.RawMessage
	params := map[string]any{"items": []map[string]any{{"section": "opencode"}}}
	if err := s.call(ctx, "workspace/configuration", params, &result, 10*time.Second); err != nil {
		s.log.Info("workspace/configuration failed; keeping current settings", "err", err)
		return
	}
	if s.pullSeq.Load() != seq {
		return // a newer request is on its way; its answer wins
	}
	if len(result) == 1 {
		if problems := s.applySettings("workspace/configuration", result[0]); len(problems) > 0 {
			s.reportSettingProblems(ctx, "workspace/configuration", problems)
		}
	}
}

// applySettings replaces the settings with raw applied over the base
// settings (defaults, Options.Settings, initializationOptions) and returns
// the keys it could not use.
func (s *Server) applySettings(origin string, raw json.RawMessage) []SettingProblem {
	if len(raw) == 0 {
		return nil
	}
	s.settingsMu.Lock()
	st, problems := ParseSettings(s.baseSettings, raw)
	s.settings = st
	s.refreshSecrets(st)
	s.settingsMu.Unlock()
	s.log.Info("Settings updated", "from", origin, "problems", len(problems))
	return problems
}

func (s *Server) reportSettingProblems(ctx context.Context, origin string, problems []SettingProblem) {
	var lines []string
	for _, p := range problems {
		s.log.Warn("Ignoring setting", "from", origin, "key", p.Key, "reason", p.Reason)
		lines = append(lines, p.String())
	}
	s.showMessage(ctx, protocol.MessageTypeWarning,
		fmt.Sprintf("OpenCode: ignored settings (defaults kept): %s", strings.Join(lines, "; ")))
}

func (s *Server) didChangeConfiguration(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		Settings json.RawMessage `json:"settings"`
	}
	_ = json.Unmarshal(params, &p)
	// Push model: the settings are in the notification.
	var probe map[string]json.RawMessage
	if json.Unmarshal(p.Settings, &probe) == nil {
		if sec, ok := probe["opencode"]; ok {
			// Applied here, in notification order; only the report waits.
			if problems := s.applySettings("workspace/didChangeConfiguration", sec); len(problems) > 0 {
				go s.reportSettingProblems(s.ctx, "workspace/didChangeConfiguration", problems)
			}
			return nil, nil
		}
	}
	// Pull model: the notification only says "something changed".
	if s.caps.Configuration {
		go s.pullConfiguration(s.ctx)
	}
	return nil, nil
}

func (s *Server) didChangeWorkspaceFolders(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		Event struct {
			Added   []protocol.WorkspaceFolder `json:"added"`
			Removed []protocol.WorkspaceFolder `json:"removed"`
		} `json:"event"`
	}
	if json.Unmarshal(params, &p) != nil {
		return nil, nil
	}
	s.rootsMu.Lock()
	defer s.rootsMu.Unlock()
	keep := s.roots[:0:0]
	for _, r := range s.roots {
		removed := false
		for _, f := range p.Event.Removed {
			if path, ok := uriToPath(protocol.DocumentURI(f.URI)); ok && path == r {
				removed = true
			}
		}
		if !removed {
			keep = append(keep, r)
		}
	}
	for _, f := range p.Event.Added {
		if path, ok := uriToPath(protocol.DocumentURI(f.URI)); ok && !slices.Contains(keep, path) {
			keep = append(keep, path)
		}
	}
	s.roots = keep
	return nil, nil
}

// uriToPath returns the local path of a file:// URI; false for any other
// scheme (untitled:, git:, ...) or a malformed URI. It never panics, unlike
// uri.URI.Filename.
func uriToPath(u protocol.DocumentURI) (string, bool) {
	parsed, err := url.Parse(string(u))
	if err != nil || parsed.Scheme != "file" || parsed.Path == "" {
		return "", false
	}
	if parsed.Host != "" && parsed.Host != "localhost" {
		return "", false // UNC paths are not local
	}
	return filepath.Clean(filepath.FromSlash(parsed.Path)), true
}

// pathToURI returns the file:// URI of an absolute path, escaped as editors
// expect (spaces as %20, non-ASCII percent-encoded).
func pathToURI(path string) protocol.DocumentURI {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	return protocol.DocumentURI(u.String())
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
