package e2e

import (
	"encoding/json"
	"fmt"
	"os"
)

// Report is what a driver writes (the same shape for every client; see
// clients/client.js).
type Report struct {
	Client struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Mode    string `json:"mode"`
	} `json:"client"`
	// Encoding is the position encoding the client uses after initialize.
	Encoding         string          `json:"encoding"`
	InitializeResult json.RawMessage `json:"initializeResult"`
	// Results of the steps that have an id.
	Results map[string]StepResult `json:"results"`
	// Diagnostics per workspace-relative file as the client holds them
	// (positions converted by the client itself).
	Diagnostics map[string][]SeenDiagnostic `json:"diagnostics"`
	// PublishedDiagnostics is the last publishDiagnostics per file, as sent.
	PublishedDiagnostics map[string][]WireDiagnostic `json:"publishedDiagnostics"`
	ServerRequests       map[string]int              `json:"serverRequests"`
	ServerNotifications  map[string]int              `json:"serverNotifications"`
	Progress             []Progress                  `json:"progress"`
	// Notifications holds the params of other notifications (opencode/…) by method.
	Notifications       map[string][]json.RawMessage `json:"notifications"`
	ShowMessages        []ShowMessage                `json:"showMessages"`
	ShowMessageRequests []ShowMessageRequest         `json:"showMessageRequests"`
	ShowDocuments       []ShowDocument               `json:"showDocuments"`
	ApplyEdits          []ApplyEdit                  `json:"applyEdits"`
	// Documents are the texts of the client's open buffers at the end.
	Documents  map[string]string `json:"documents"`
	StepsDone  int               `json:"stepsDone"`
	Error      string            `json:"error"`
	ServerExit *struct {
		Code *int `json:"code"`
	} `json:"serverExit"`
	ElapsedMs int `json:"elapsedMs"`
}

// StepResult is the result of a codeAction, executeCommand or waitDiagnostics step.
type StepResult struct {
	// codeAction: the range the client sent and the actions it received.
	Range   *Range         `json:"range"`
	Actions []ActionRecord `json:"actions"`
	// executeCommand (and codeAction with "choose"): the command and its answer.
	Command string          `json:"command"`
	Result  json.RawMessage `json:"result"`
	Error   *RPCError       `json:"error"`
	// waitDiagnostics
	Diagnostics []SeenDiagnostic `json:"diagnostics"`
}

// ActionRecord is one code action as the client listed it.
type ActionRecord struct {
	Title     string          `json:"title"`
	Kind      string          `json:"kind"`
	IsCommand bool            `json:"isCommand"`
	Command   *Command        `json:"command"`
	Extra     json.RawMessage `json:"-"`
}

// Command is an LSP Command.
type Command struct {
	Title     string            `json:"title"`
	Command   string            `json:"command"`
	Arguments []json.RawMessage `json:"arguments"`
}

// RPCError is a JSON-RPC error answer.
type RPCError struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
}

// Position and Range are LSP's.
type Position struct {
	Line      int `json:"line"`
	Character int `json:"character"`
}

// Range is an LSP range.
type Range struct {
	Start Position `json:"start"`
	End   Position `json:"end"`
}

// SeenDiagnostic is a diagnostic as the client holds it: Prefix is the text
// of its line before its start and Text the text it covers, both found by the
// client's own position conversion.
type SeenDiagnostic struct {
	Line     int             `json:"line"`
	EndLine  int             `json:"endLine"`
	Prefix   string          `json:"prefix"`
	Text     string          `json:"text"`
	Message  string          `json:"message"`
	Severity int             `json:"severity"`
	Source   json.RawMessage `json:"source"`
	Code     json.RawMessage `json:"code"`
}

// WireDiagnostic is a diagnostic as the server sent it.
type WireDiagnostic struct {
	Range    Range           `json:"range"`
	Severity int             `json:"severity"`
	Source   string          `json:"source"`
	Code     json.RawMessage `json:"code"`
	Message  string          `json:"message"`
}

// Progress is one $/progress value.
type Progress struct {
	Token      json.RawMessage `json:"token"`
	Kind       string          `json:"kind"`
	Title      string          `json:"title"`
	Message    string          `json:"message"`
	Percentage json.RawMessage `json:"percentage"`
}

// ShowMessage is a window/showMessage notification.
type ShowMessage struct {
	Type    int    `json:"type"`
	Message string `json:"message"`
}

// ShowMessageRequest is a window/showMessageRequest and the scripted answer.
type ShowMessageRequest struct {
	Message string   `json:"message"`
	Actions []string `json:"actions"`
	Chosen  *string  `json:"chosen"`
}

// ShowDocument is a window/showDocument request.
type ShowDocument struct {
	URI      string `json:"uri"`
	External bool   `json:"external"`
}

// ApplyEdit is a workspace/applyEdit request and whether the client applied it.
type ApplyEdit struct {
	Label         *string         `json:"label"`
	Applied       bool            `json:"applied"`
	FailureReason *string         `json:"failureReason"`
	Edit          json.RawMessage `json:"edit"`
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	return &r, nil
}
