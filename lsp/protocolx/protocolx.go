// Package protocolx holds the LSP 3.17 wire types that go.lsp.dev/protocol
// v0.12.0 lacks or gets wrong, so that the server can speak the protocol
// exactly as the specification (microsoft.github.io/language-server-protocol,
// version 3.17) defines it:
//
//   - [WorkspaceEdit] with a real union of document changes (protocol's
//     DocumentChanges holds only TextDocumentEdit, so a CreateFile entry
//     silently becomes empty);
//   - [ApplyWorkspaceEditResult] (protocol's Client.ApplyEdit decodes the
//     reply into a bool and fails against real clients);
//   - position encodings, showDocument, and the client capabilities the server
//     negotiates on ([InitializeParams], decoded leniently so that one odd
//     field from a client never fails initialize).
//
// Everything else (Range, Diagnostic, TextEdit, ...) is taken from
// go.lsp.dev/protocol.
package protocolx

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.lsp.dev/protocol"
)

// Method names the protocol package does not define.
const (
	MethodShowDocument        = "window/showDocument"
	MethodCodeActionResolve   = "codeAction/resolve"
	MethodWorkDoneProgressNew = "window/workDoneProgress/create"
	// MethodChatDelta is opencode-lsp's streaming notification (editor
	// contract): params [ChatDeltaParams].
	MethodChatDelta = "opencode/chatDelta"
)

// ResourceOperationKind is one of "create", "rename", "delete" (LSP 3.13).
type ResourceOperationKind = string

// Resource operation kinds.
const (
	ResourceCreate ResourceOperationKind = "create"
	ResourceRename ResourceOperationKind = "rename"
	ResourceDelete ResourceOperationKind = "delete"
)

// WorkspaceEdit mirrors LSP's WorkspaceEdit. Exactly one of Changes and
// DocumentChanges is set by the server; ChangeAnnotations requires
// DocumentChanges.
type WorkspaceEdit struct {
	Changes           map[protocol.DocumentURI][]protocol.TextEdit `json:"changes,omitempty"`
	DocumentChanges   []DocumentChange                             `json:"documentChanges,omitempty"`
	ChangeAnnotations map[string]ChangeAnnotation                  `json:"changeAnnotations,omitempty"`
}

// ChangeAnnotation mirrors LSP's ChangeAnnotation (3.16).
type ChangeAnnotation struct {
	Label             string `json:"label"`
	NeedsConfirmation bool   `json:"needsConfirmation,omitempty"`
	Description       string `json:"description,omitempty"`
}

// DocumentChange is one entry of WorkspaceEdit.documentChanges: exactly one
// of its fields is set. It marshals as the bare variant, as LSP's union
// `TextDocumentEdit | CreateFile | RenameFile | DeleteFile` requires.
type DocumentChange struct {
	TextDocumentEdit *TextDocumentEdit
	CreateFile       *CreateFile
	RenameFile       *RenameFile
	DeleteFile       *DeleteFile
}

// TextDocumentEdit mirrors LSP's TextDocumentEdit. Version is the document
// version the edits were computed against, or nil for "the file on disk".
type TextDocumentEdit struct {
	TextDocument OptionalVersionedTextDocumentIdentifier `json:"textDocument"`
	Edits        []AnnotatedTextEdit                     `json:"edits"`
}

// OptionalVersionedTextDocumentIdentifier mirrors the LSP type; a nil
// Version marshals as null, which LSP defines as "not open / any version".
type OptionalVersionedTextDocumentIdentifier struct {
	URI     protocol.DocumentURI `json:"uri"`
	Version *int32               `json:"version"`
}

// AnnotatedTextEdit is a TextEdit with an optional change annotation id.
type AnnotatedTextEdit struct {
	Range        protocol.Range `json:"range"`
	NewText      string         `json:"newText"`
	AnnotationID string         `json:"annotationId,omitempty"`
}

// CreateFileOptions mirrors LSP's CreateFileOptions.
type CreateFileOptions struct {
	Overwrite      bool `json:"overwrite,omitempty"`
	IgnoreIfExists bool `json:"ignoreIfExists,omitempty"`
}

// CreateFile mirrors LSP's CreateFile resource operation.
type CreateFile struct {
	Kind         string               `json:"kind"` // "create"
	URI          protocol.DocumentURI `json:"uri"`
	Options      *CreateFileOptions   `json:"options,omitempty"`
	AnnotationID string               `json:"annotationId,omitempty"`
}

// RenameFile mirrors LSP's RenameFile resource operation.
type RenameFile struct {
	Kind         string               `json:"kind"` // "rename"
	OldURI       protocol.DocumentURI `json:"oldUri"`
	NewURI       protocol.DocumentURI `json:"newUri"`
	Options      *CreateFileOptions   `json:"options,omitempty"`
	AnnotationID string               `json:"annotationId,omitempty"`
}

// DeleteFileOptions mirrors LSP's DeleteFileOptions.
type DeleteFileOptions struct {
	Recursive         bool `json:"recursive,omitempty"`
	IgnoreIfNotExists bool `json:"ignoreIfNotExists,omitempty"`
}

// DeleteFile mirrors LSP's DeleteFile resource operation.
type DeleteFile struct {
	Kind         string               `json:"kind"` // "delete"
	URI          protocol.DocumentURI `json:"uri"`
	Options      *DeleteFileOptions   `json:"options,omitempty"`
	AnnotationID string               `json:"annotationId,omitempty"`
}

// MarshalJSON writes the one variant that is set.
func (c DocumentChange) MarshalJSON() ([]byte, error) {
	switch {
	case c.TextDocumentEdit != nil:
		return json.Marshal(c.TextDocumentEdit)
	case c.CreateFile != nil:
		cf := *c.CreateFile
		cf.Kind = ResourceCreate
		return json.Marshal(cf)
	case c.RenameFile != nil:
		rf := *c.RenameFile
		rf.Kind = ResourceRename
		return json.Marshal(rf)
	case c.DeleteFile != nil:
		df := *c.DeleteFile
		df.Kind = ResourceDelete
		return json.Marshal(df)
	}
	return nil, fmt.Errorf("protocolx: empty DocumentChange")
}

// UnmarshalJSON decodes a variant by its "kind" (absent for TextDocumentEdit).
func (c *DocumentChange) UnmarshalJSON(data []byte) error {
	var probe struct {
		Kind *string `json:"kind"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	*c = DocumentChange{}
	if probe.Kind == nil {
		c.TextDocumentEdit = new(TextDocumentEdit)
		return json.Unmarshal(data, c.TextDocumentEdit)
	}
	switch *probe.Kind {
	case ResourceCreate:
		c.CreateFile = new(CreateFile)
		return json.Unmarshal(data, c.CreateFile)
	case ResourceRename:
		c.RenameFile = new(RenameFile)
		return json.Unmarshal(data, c.RenameFile)
	case ResourceDelete:
		c.DeleteFile = new(DeleteFile)
		return json.Unmarshal(data, c.DeleteFile)
	}
	return fmt.Errorf("protocolx: unknown document change kind %q", *probe.Kind)
}

// ApplyWorkspaceEditParams mirrors LSP's ApplyWorkspaceEditParams.
type ApplyWorkspaceEditParams struct {
	Label string        `json:"label,omitempty"`
	Edit  WorkspaceEdit `json:"edit"`
}

// ApplyWorkspaceEditResult mirrors LSP's ApplyWorkspaceEditResult, the reply
// to workspace/applyEdit.
type ApplyWorkspaceEditResult struct {
	Applied       bool   `json:"applied"`
	FailureReason string `json:"failureReason,omitempty"`
	FailedChange  *int   `json:"failedChange,omitempty"`
}

// ShowDocumentParams mirrors LSP's ShowDocumentParams (3.16).
type ShowDocumentParams struct {
	URI       string          `json:"uri"`
	External  bool            `json:"external,omitempty"`
	TakeFocus bool            `json:"takeFocus,omitempty"`
	Selection *protocol.Range `json:"selection,omitempty"`
}

// ShowDocumentResult mirrors LSP's ShowDocumentResult.
type ShowDocumentResult struct {
	Success bool `json:"success"`
}

// ChatDeltaParams are the params of the opencode/chatDelta notification
// (editor contract): one chunk of streamed text, in order.
type ChatDeltaParams struct {
	ThreadID string `json:"threadId"`
	RunID    string `json:"runId"`
	Delta    string `json:"delta"`
}

// CodeActionParams is protocol.CodeActionParams with LSP 3.17's
// context.triggerKind.
type CodeActionParams struct {
	TextDocument  protocol.TextDocumentIdentifier `json:"textDocument"`
	Range         protocol.Range                  `json:"range"`
	Context       CodeActionContext               `json:"context"`
	WorkDoneToken json.RawMessage                 `json:"workDoneToken,omitempty"`
}

// CodeActionContext mirrors LSP 3.17's CodeActionContext.
type CodeActionContext struct {
	Diagnostics []protocol.Diagnostic     `json:"diagnostics"`
	Only        []protocol.CodeActionKind `json:"only,omitempty"`
	// TriggerKind is 1 (Invoked) or 2 (Automatic); 0 when the client is
	// older than 3.17.
	TriggerKind int `json:"triggerKind,omitempty"`
}

// ExecuteCommandParams mirrors LSP's ExecuteCommandParams with the arguments
// kept raw, so that each command decodes them into its own typed struct.
type ExecuteCommandParams struct {
	Command       string            `json:"command"`
	Arguments     []json.RawMessage `json:"arguments,omitempty"`
	WorkDoneToken *ProgressToken    `json:"workDoneToken,omitempty"`
}

// ProgressToken is LSP's `integer | string` progress token, kept as its JSON
// form so that it round-trips exactly (numbers beyond int32 included).
type ProgressToken struct {
	raw json.RawMessage
}

// NewStringProgressToken returns a string token.
func NewStringProgressToken(s string) *ProgressToken {
	b, _ := json.Marshal(s)
	return &ProgressToken{raw: b}
}

// String is the token's JSON form (a quoted string or a number).
func (t *ProgressToken) String() string {
	if t == nil {
		return ""
	}
	return string(t.raw)
}

// MarshalJSON writes the token as it was received.
func (t ProgressToken) MarshalJSON() ([]byte, error) {
	if len(t.raw) == 0 {
		return []byte("null"), nil
	}
	return t.raw, nil
}

// UnmarshalJSON accepts a JSON string or number.
func (t *ProgressToken) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || (data[0] != '"' && data[0] != '-' && (data[0] < '0' || data[0] > '9')) {
		return fmt.Errorf("progress token must be a string or an integer, got %s", truncate(data))
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	t.raw = append(json.RawMessage(nil), data...)
	return nil
}

// WorkDoneProgressCreateParams mirrors LSP's window/workDoneProgress/create params.
type WorkDoneProgressCreateParams struct {
	Token *ProgressToken `json:"token"`
}

// WorkDoneProgressCancelParams mirrors window/workDoneProgress/cancel params.
type WorkDoneProgressCancelParams struct {
	Token *ProgressToken `json:"token"`
}

// ProgressParams mirrors $/progress params.
type ProgressParams struct {
	Token *ProgressToken `json:"token"`
	Value any            `json:"value"`
}

// WorkDoneProgressBegin mirrors LSP's WorkDoneProgressBegin.
type WorkDoneProgressBegin struct {
	Kind        string `json:"kind"` // "begin"
	Title       string `json:"title"`
	Cancellable bool   `json:"cancellable,omitempty"`
	Message     string `json:"message,omitempty"`
	Percentage  *int   `json:"percentage,omitempty"`
}

// WorkDoneProgressReport mirrors LSP's WorkDoneProgressReport.
type WorkDoneProgressReport struct {
	Kind        string `json:"kind"` // "report"
	Cancellable bool   `json:"cancellable,omitempty"`
	Message     string `json:"message,omitempty"`
	Percentage  *int   `json:"percentage,omitempty"`
}

// WorkDoneProgressEnd mirrors LSP's WorkDoneProgressEnd.
type WorkDoneProgressEnd struct {
	Kind    string `json:"kind"` // "end"
	Message string `json:"message,omitempty"`
}

// CancelParams mirrors $/cancelRequest params: the id is an integer or a
// string, kept raw.
type CancelParams struct {
	ID json.RawMessage `json:"id"`
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
