package protocolx

import (
	"encoding/json"
	"testing"

	"go.lsp.dev/protocol"
)

func TestDocumentChangeUnionRoundTrip(t *testing.T) {
	v := int32(7)
	edit := WorkspaceEdit{
		DocumentChanges: []DocumentChange{
			{CreateFile: &CreateFile{URI: "file:///w/new.txt", Options: &CreateFileOptions{IgnoreIfExists: true}, AnnotationID: "opencode"}},
			{TextDocumentEdit: &TextDocumentEdit{
				TextDocument: OptionalVersionedTextDocumentIdentifier{URI: "file:///w/a.go", Version: &v},
				Edits:        []AnnotatedTextEdit{{Range: protocol.Range{Start: protocol.Position{Line: 1}}, NewText: "x", AnnotationID: "opencode"}},
			}},
			{TextDocumentEdit: &TextDocumentEdit{TextDocument: OptionalVersionedTextDocumentIdentifier{URI: "file:///w/new.txt"}, Edits: []AnnotatedTextEdit{}}},
			{RenameFile: &RenameFile{OldURI: "file:///w/a", NewURI: "file:///w/b"}},
			{DeleteFile: &DeleteFile{URI: "file:///w/old.txt"}},
		},
		ChangeAnnotations: map[string]ChangeAnnotation{"opencode": {Label: "OpenCode", NeedsConfirmation: true}},
	}
	data, err := json.Marshal(edit)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"documentChanges":[{"kind":"create","uri":"file:///w/new.txt","options":{"ignoreIfExists":true},"annotationId":"opencode"},` +
		`{"textDocument":{"uri":"file:///w/a.go","version":7},"edits":[{"range":{"start":{"line":1,"character":0},"end":{"line":0,"character":0}},"newText":"x","annotationId":"opencode"}]},` +
		`{"textDocument":{"uri":"file:///w/new.txt","version":null},"edits":[]},` +
		`{"kind":"rename","oldUri":"file:///w/a","newUri":"file:///w/b"},` +
		`{"kind":"delete","uri":"file:///w/old.txt"}],` +
		`"changeAnnotations":{"opencode":{"label":"OpenCode","needsConfirmation":true}}}`
	if string(data) != want {
		t.Fatalf("marshal:\n got %s\nwant %s", data, want)
	}
	var back WorkspaceEdit
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != want {
		t.Fatalf("round trip:\n got %s\nwant %s", again, want)
	}
	if err := json.Unmarshal([]byte(`{"documentChanges":[{"kind":"explode"}]}`), &back); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if _, err := json.Marshal(DocumentChange{}); err == nil {
		t.Fatal("empty change marshalled")
	}
}

func TestProgressToken(t *testing.T) {
	for _, in := range []string{`"abc"`, `42`, `4294967296`} {
		var tok ProgressToken
		if err := json.Unmarshal([]byte(in), &tok); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, _ := json.Marshal(tok)
		if string(out) != in {
			t.Errorf("%s round-tripped to %s", in, out)
		}
	}
	for _, in := range []string{`{}`, `[1]`, `true`, `null`} {
		var tok ProgressToken
		if err := json.Unmarshal([]byte(in), &tok); err == nil {
			t.Errorf("%s accepted as a token", in)
		}
	}
}

func TestParseClientCapabilitiesLenient(t *testing.T) {
	raw := json.RawMessage(`{
	  "general": {"positionEncodings": ["utf-8", 3, "utf-16"]},
	  "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true, "resourceOperations": ["create","delete"]},
	                "configuration": "yes"},
	  "window": {"workDoneProgress": true, "showDocument": {"support": true}},
	  "textDocument": {"codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix"]}}}}
	}`)
	c, err := ParseClientCapabilities(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.PositionEncodings) != 2 || !c.ApplyEdit || !c.DocumentChanges || c.Configuration ||
		!c.WorkDoneProgress || !c.ShowDocument || !c.CodeActionLiterals || c.CodeActionKinds[0] != "quickfix" {
		t.Fatalf("parsed %+v", c)
	}
	if !c.SupportsResourceOperation("create") || c.SupportsResourceOperation("rename") {
		t.Fatalf("resource operations %+v", c.ResourceOperations)
	}
	if _, err := ParseClientCapabilities(json.RawMessage(`[1]`)); err == nil {
		t.Fatal("array accepted as capabilities")
	}
}
