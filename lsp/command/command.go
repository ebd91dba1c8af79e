// Package command defines the editor contract's commands: their names, the
// one JSON object each takes as its single argument, and the JSON object
// each returns (see the "editor contract" of the product design). Editors and
// tests depend on these shapes; change them only together with the contract.
package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.lsp.dev/protocol"
)

// Command names (workspace/executeCommand).
const (
	Chat     = "opencode.chat"
	Explain  = "opencode.explain"
	Generate = "opencode.generate"
	Run      = "opencode.run"
	Ask      = "opencode.ask"
	Cancel   = "opencode.cancel"
	Status   = "opencode.status"
	// Apply re-applies a change set that was returned with apply:false or
	// that the editor refused earlier.
	Apply = "opencode.apply"
)

// All lists every command in contract order.
var All = []string{Chat, Explain, Generate, Run, Ask, Cancel, Status, Apply}

// ChatArgs are opencode.chat's argument.
type ChatArgs struct {
	// Prompt is the question. Required (an editor without an input box may
	// leave it empty: the server then offers canned questions).
	Prompt string `json:"prompt"`
	// URI and Range give the code the question is about (positions in the
	// negotiated encoding).
	URI      protocol.DocumentURI `json:"uri,omitempty"`
	Range    *protocol.Range      `json:"range,omitempty"`
	ThreadID string               `json:"threadId,omitempty"`
	Model    string               `json:"model,omitempty"`
}

// ExplainArgs are opencode.explain's argument; no range means the whole file.
type ExplainArgs struct {
	URI   protocol.DocumentURI `json:"uri"`
	Range *protocol.Range      `json:"range,omitempty"`
}

// Usage is token use and cost (OpenRouter's usage accounting).
type Usage struct {
	PromptTokens     int      `json:"promptTokens"`
	CompletionTokens int      `json:"completionTokens"`
	Cost             *float64 `json:"cost,omitempty"` // USD
}

// ChatResult is the result of opencode.chat and opencode.explain.
type ChatResult struct {
	ThreadID string `json:"threadId"`
	Text     string `json:"text"`
	Model    string `json:"model"`
	Usage    *Usage `json:"usage,omitempty"`
}

// GenerateArgs are opencode.generate's argument.
type GenerateArgs struct {
	Prompt  string               `json:"prompt"`
	URI     protocol.DocumentURI `json:"uri,omitempty"`
	Range   *protocol.Range      `json:"range,omitempty"`
	Sandbox string               `json:"sandbox,omitempty"` // "local" | "e2b" | "daytona"
	// Apply sends the edit to the editor (default true); false only returns
	// the change set.
	Apply *bool `json:"apply,omitempty"`
}

// FileChange is one file the agent changed.
type FileChange struct {
	Path   string               `json:"path"` // workspace-relative, "/"-separated
	URI    protocol.DocumentURI `json:"uri"`
	Action string               `json:"action"` // "created" | "modified" | "deleted"
}

// CommandRun is one command the agent ran.
type CommandRun struct {
	Command    string `json:"command"`
	ExitCode   *int   `json:"exitCode"`
	OutputTail string `json:"outputTail"`
}

// GenerateResult is opencode.generate's result.
type GenerateResult struct {
	RunID      string       `json:"runId"`
	Message    string       `json:"message"`
	Files      []FileChange `json:"files"`
	Commands   []CommandRun `json:"commands"`
	SandboxURL string       `json:"sandboxUrl,omitempty"`
	Applied    bool         `json:"applied"`
}

// RunArgs are opencode.run's argument; no command means the project's
// usual check, detected from its files.
type RunArgs struct {
	Command    string               `json:"command,omitempty"`
	URI        protocol.DocumentURI `json:"uri,omitempty"`
	Sandbox    string               `json:"sandbox,omitempty"`
	TimeoutSec int                  `json:"timeoutSec,omitempty"`
}

// RunResult is opencode.run's result.
type RunResult struct {
	RunID       string         `json:"runId"`
	Command     string         `json:"command"`
	ExitCode    int            `json:"exitCode"`
	DurationMs  int64          `json:"durationMs"`
	Diagnostics map[string]int `json:"diagnostics"` // URI -> count
	OutputTail  string         `json:"outputTail"`
	SandboxURL  string         `json:"sandboxUrl,omitempty"`
}

// AskArgs are opencode.ask's argument.
type AskArgs struct {
	Prompt string               `json:"prompt"`
	URI    protocol.DocumentURI `json:"uri,omitempty"`
	Range  *protocol.Range      `json:"range,omitempty"`
}

// AskResult is opencode.ask's result: the route taken and its result(s).
type AskResult struct {
	Route    string          `json:"route"` // "chat" | "generate" | "both"
	Chat     *ChatResult     `json:"chat,omitempty"`
	Generate *GenerateResult `json:"generate,omitempty"`
}

// CancelArgs are opencode.cancel's argument; no runId cancels every run.
type CancelArgs struct {
	RunID string `json:"runId,omitempty"`
}

// CancelResult lists the runs that were cancelled.
type CancelResult struct {
	Cancelled []string `json:"cancelled"`
}

// StatusArgs is opencode.status's (empty) argument.
type StatusArgs struct{}

// SandboxStatus describes one open sandbox.
type SandboxStatus struct {
	Provider  string  `json:"provider"`
	ID        string  `json:"id"`
	State     string  `json:"state"`
	CreatedAt string  `json:"createdAt"` // RFC 3339
	Seconds   float64 `json:"seconds"`
}

// RunStatus describes one run.
type RunStatus struct {
	RunID string `json:"runId"`
	Kind  string `json:"kind"`  // "chat" | "explain" | "generate" | "run" | "ask"
	State string `json:"state"` // "running" | "done" | "failed" | "cancelled"
}

// StatusResult is opencode.status's result.
type StatusResult struct {
	Sandboxes []SandboxStatus    `json:"sandboxes"`
	Usage     map[string]float64 `json:"usage"` // provider -> sandbox-seconds
	Runs      []RunStatus        `json:"runs"`
	// Isolation says how the local sandbox isolates commands.
	Isolation string `json:"isolation,omitempty"`
}

// ApplyArgs are opencode.apply's argument.
type ApplyArgs struct {
	RunID string `json:"runId"`
}

// ArgError is a bad argument: it names the command and the field.
type ArgError struct {
	Command string
	Field   string
	Reason  string
}

func (e *ArgError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Command, e.Reason)
	}
	return fmt.Sprintf("%s: field %q %s", e.Command, e.Field, e.Reason)
}

// Decode decodes a command's arguments (the raw `arguments` array of
// workspace/executeCommand) into v, a pointer to the command's Args struct.
// It accepts no argument or a null argument as an empty object, and rejects
// more than one argument, a non-object argument, unknown fields and values
// of the wrong type with an *ArgError naming the field.
func Decode(name string, args []json.RawMessage, v any) error {
	if len(args) > 1 {
		return &ArgError{Command: name, Reason: fmt.Sprintf("takes one object argument, got %d arguments", len(args))}
	}
	raw := json.RawMessage("{}")
	if len(args) == 1 && len(bytes.TrimSpace(args[0])) > 0 && string(bytes.TrimSpace(args[0])) != "null" {
		raw = args[0]
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return &ArgError{Command: name, Reason: "takes one JSON object as its argument"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return &ArgError{Command: name, Field: te.Field, Reason: "must be " + kind(te.Type.String()) + ", got " + te.Value}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &ArgError{Command: name, Field: f, Reason: "is not an argument of this command"}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &ArgError{Command: name, Reason: "argument is truncated JSON"}
		}
		return &ArgError{Command: name, Reason: err.Error()}
	}
	return nil
}

func kind(goType string) string {
	switch {
	case goType == "string" || goType == "uri.URI":
		return "a string"
	case goType == "bool" || goType == "*bool":
		return "a boolean"
	case strings.Contains(goType, "int") || strings.Contains(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// Require returns an *ArgError when a required string field is empty.
func Require(name, field, value string) error {
	if strings.TrimSpace(value) == "" {
		return &ArgError{Command: name, Field: field, Reason: "is required"}
	}
	return nil
}
