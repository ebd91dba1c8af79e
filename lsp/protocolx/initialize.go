package protocolx

import (
	"encoding/json"
	"fmt"

	"go.lsp.dev/protocol"
)

// InitializeParams is the part of LSP's InitializeParams the server uses.
// Capabilities are decoded leniently by [ParseClientCapabilities]: a field of
// an unexpected type counts as absent instead of failing initialize.
type InitializeParams struct {
	// ProcessID is the editor's process id, or nil (null) when it has none.
	ProcessID             *int64                     `json:"processId"`
	ClientInfo            *protocol.ClientInfo       `json:"clientInfo,omitempty"`
	RootPath              string                     `json:"rootPath,omitempty"`
	RootURI               protocol.DocumentURI       `json:"rootUri,omitempty"`
	InitializationOptions json.RawMessage            `json:"initializationOptions,omitempty"`
	Capabilities          json.RawMessage            `json:"capabilities"`
	WorkspaceFolders      []protocol.WorkspaceFolder `json:"workspaceFolders,omitempty"`
	Trace                 string                     `json:"trace,omitempty"`
	WorkDoneToken         *ProgressToken             `json:"workDoneToken,omitempty"`
}

// ClientCapabilities is what the server negotiates on, read from the
// client's capabilities (LSP 3.17 names in the comments).
type ClientCapabilities struct {
	PositionEncodings []string // general.positionEncodings

	ApplyEdit              bool     // workspace.applyEdit
	DocumentChanges        bool     // workspace.workspaceEdit.documentChanges
	ResourceOperations     []string // workspace.workspaceEdit.resourceOperations
	ChangeAnnotations      bool     // workspace.workspaceEdit.changeAnnotationSupport present
	Configuration          bool     // workspace.configuration
	WorkspaceFolders       bool     // workspace.workspaceFolders
	DidChangeConfigDynamic bool     // workspace.didChangeConfiguration.dynamicRegistration

	WorkDoneProgress bool // window.workDoneProgress
	ShowDocument     bool // window.showDocument.support
	ShowMessageItems bool // window.showMessage present (showMessageRequest with items)

	CodeActionLiterals bool     // textDocument.codeAction.codeActionLiteralSupport present
	CodeActionKinds    []string // ...codeActionLiteralSupport.codeActionKind.valueSet
	RelatedInformation bool     // textDocument.publishDiagnostics.relatedInformation
}

// SupportsResourceOperation reports whether the client applies the given
// resource operation ("create", "rename", "delete") in a workspace edit.
func (c ClientCapabilities) SupportsResourceOperation(kind string) bool {
	if !c.DocumentChanges {
		return false
	}
	for _, k := range c.ResourceOperations {
		if k == kind {
			return true
		}
	}
	return false
}

// ParseClientCapabilities reads the capabilities the server negotiates on. It
// never fails on a field of an unexpected type; it only fails when raw is not
// a JSON object (or null).
func ParseClientCapabilities(raw json.RawMessage) (ClientCapabilities, error) {
	var c ClientCapabilities
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return c, fmt.Errorf("capabilities must be an object: %w", err)
	}
	c.PositionEncodings = stringList(m, "general", "positionEncodings")
	c.ApplyEdit = boolean(m, "workspace", "applyEdit")
	c.DocumentChanges = boolean(m, "workspace", "workspaceEdit", "documentChanges")
	c.ResourceOperations = stringList(m, "workspace", "workspaceEdit", "resourceOperations")
	c.ChangeAnnotations = present(m, "workspace", "workspaceEdit", "changeAnnotationSupport")
	c.Configuration = boolean(m, "workspace", "configuration")
	c.WorkspaceFolders = boolean(m, "workspace", "workspaceFolders")
	c.DidChangeConfigDynamic = boolean(m, "workspace", "didChangeConfiguration", "dynamicRegistration")
	c.WorkDoneProgress = boolean(m, "window", "workDoneProgress")
	c.ShowDocument = boolean(m, "window", "showDocument", "support")
	c.ShowMessageItems = present(m, "window", "showMessage")
	c.CodeActionLiterals = present(m, "textDocument", "codeAction", "codeActionLiteralSupport")
	c.CodeActionKinds = stringList(m, "textDocument", "codeAction", "codeActionLiteralSupport", "codeActionKind", "valueSet")
	c.RelatedInformation = boolean(m, "textDocument", "publishDiagnostics", "relatedInformation")
	return c, nil
}

func lookup(m map[string]any, path ...string) (any, bool) {
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func present(m map[string]any, path ...string) bool {
	v, ok := lookup(m, path...)
	return ok && v != nil
}

func boolean(m map[string]any, path ...string) bool {
	v, _ := lookup(m, path...)
	b, _ := v.(bool)
	return b
}

func stringList(m map[string]any, path ...string) []string {
	v, _ := lookup(m, path...)
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ServerCapabilities is the subset of LSP's ServerCapabilities the server
// announces, with 3.17's positionEncoding.
type ServerCapabilities struct {
	PositionEncoding       string                  `json:"positionEncoding,omitempty"`
	TextDocumentSync       TextDocumentSyncOptions `json:"textDocumentSync"`
	CodeActionProvider     any                     `json:"codeActionProvider,omitempty"`
	ExecuteCommandProvider *ExecuteCommandOptions  `json:"executeCommandProvider,omitempty"`
	Workspace              *ServerWorkspace        `json:"workspace,omitempty"`
}

// TextDocumentSyncOptions mirrors LSP's TextDocumentSyncOptions.
type TextDocumentSyncOptions struct {
	OpenClose bool `json:"openClose"`
	// Change is 1 (Full) or 2 (Incremental).
	Change int  `json:"change"`
	Save   bool `json:"save,omitempty"`
}

// CodeActionOptions mirrors LSP's CodeActionOptions.
type CodeActionOptions struct {
	CodeActionKinds []string `json:"codeActionKinds,omitempty"`
	ResolveProvider bool     `json:"resolveProvider,omitempty"`
}

// ExecuteCommandOptions mirrors LSP's ExecuteCommandOptions.
type ExecuteCommandOptions struct {
	Commands []string `json:"commands"`
}

// ServerWorkspace mirrors ServerCapabilities.workspace.
type ServerWorkspace struct {
	WorkspaceFolders *WorkspaceFoldersServerCapabilities `json:"workspaceFolders,omitempty"`
}

// WorkspaceFoldersServerCapabilities mirrors the LSP type.
type WorkspaceFoldersServerCapabilities struct {
	Supported           bool `json:"supported"`
	ChangeNotifications bool `json:"changeNotifications,omitempty"`
}

// InitializeResult mirrors LSP's InitializeResult.
type InitializeResult struct {
	Capabilities ServerCapabilities   `json:"capabilities"`
	ServerInfo   *protocol.ServerInfo `json:"serverInfo,omitempty"`
}
