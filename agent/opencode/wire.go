package opencode

import (
	"encoding/json"
)

// Wire shapes of OpenCode's server API (shared/specs/opencode-server.md §3-6),
// only the fields the driver reads. Unknown fields and event types are
// ignored.

type event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Properties json.RawMessage `json:"properties"`
}

type sessionInfo struct {
	ID        string `json:"id"`
	ParentID  string `json:"parentID"`
	Directory string `json:"directory"`
}

type tokens struct {
	Input     int `json:"input"`
	Output    int `json:"output"`
	Reasoning int `json:"reasoning"`
	Cache     struct {
		Read  int `json:"read"`
		Write int `json:"write"`
	} `json:"cache"`
}

type messageError struct {
	Name string `json:"name"`
	Data struct {
		Message string `json:"message"`
	} `json:"data"`
}

type messageInfo struct {
	ID        string `json:"id"`
	SessionID string `json:"sessionID"`
	Role      string `json:"role"`
	ParentID  string `json:"parentID"`
	Time      struct {
		Created   int64 `json:"created"`
		Completed int64 `json:"completed"`
	} `json:"time"`
	Finish string        `json:"finish"`
	Error  *messageError `json:"error"`
	Cost   float64       `json:"cost"`
	Tokens tokens        `json:"tokens"`
}

type message struct {
	Info  messageInfo `json:"info"`
	Parts []part      `json:"parts"`
}

type part struct {
	ID        string `json:"id"`
	SessionID string `json:"sessionID"`
	MessageID string `json:"messageID"`
	Type      string `json:"type"`
	// text, reasoning
	Text      string `json:"text"`
	Synthetic bool   `json:"synthetic"`
	Ignored   bool   `json:"ignored"`
	Time      *struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
	} `json:"time"`
	// tool
	CallID string     `json:"callID"`
	Tool   string     `json:"tool"`
	State  *toolState `json:"state"`
	// patch
	Files []string `json:"files"`
}

type toolState struct {
	Status   string          `json:"status"` // pending, running, completed, error
	Input    json.RawMessage `json:"input"`
	Output   string          `json:"output"`
	Title    string          `json:"title"`
	Error    string          `json:"error"`
	Metadata json.RawMessage `json:"metadata"`
}

// toolInput holds the input fields of the tools the driver reads (write,
// edit: filePath; bash: command).
type toolInput struct {
	FilePath string `json:"filePath"`
	Command  string `json:"command"`
}

// toolMetadata: bash {output, exit}, write/edit {filepath}.
type toolMetadata struct {
	Output   string `json:"output"`
	Exit     *int   `json:"exit"`
	Filepath string `json:"filepath"`
}

// decodeLoose decodes what it can: a tool's input or metadata is not part
// of OpenCode's API contract, so a shape change must not break a run.
func decodeLoose(raw json.RawMessage, v any) {
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, v)
	}
}

type sessionStatus struct {
	Type    string `json:"type"` // idle, busy, retry
	Attempt int    `json:"attempt"`
	Message string `json:"message"`
}

// Event properties.
type (
	sessionEventProps struct {
		SessionID string       `json:"sessionID"`
		Info      *sessionInfo `json:"info"`
	}
	statusEventProps struct {
		SessionID string        `json:"sessionID"`
		Status    sessionStatus `json:"status"`
	}
	errorEventProps struct {
		SessionID string        `json:"sessionID"`
		Error     *messageError `json:"error"`
	}
	messageEventProps struct {
		Info messageInfo `json:"info"`
	}
	partEventProps struct {
		Part part `json:"part"`
		// Delta is the legacy streamed-text field of message.part.updated.
		Delta string `json:"delta"`
	}
	deltaEventProps struct {
		SessionID string `json:"sessionID"`
		MessageID string `json:"messageID"`
		PartID    string `json:"partID"`
		Field     string `json:"field"`
		Delta     string `json:"delta"`
	}
	permissionAsked struct {
		ID         string          `json:"id"`
		SessionID  string          `json:"sessionID"`
		Permission string          `json:"permission"`
		Patterns   []string        `json:"patterns"`
		Always     []string        `json:"always"`
		Metadata   json.RawMessage `json:"metadata"`
	}
	questionAsked struct {
		ID        string `json:"id"`
		SessionID string `json:"sessionID"`
	}
	permissionReplied struct {
		SessionID    string `json:"sessionID"`
		RequestID    string `json:"requestID"`
		PermissionID string `json:"permissionID"` // legacy
	}
)

// permissionMetadata: edit {filepath, diff}, bash {command}.
type permissionMetadata struct {
	Filepath string `json:"filepath"`
	Diff     string `json:"diff"`
	Command  string `json:"command"`
}

// promptBody is POST /session/{id}/prompt_async's body.
type promptBody struct {
	Parts []promptPart `json:"parts"`
	Model struct {
		ProviderID string `json:"providerID"`
		ModelID    string `json:"modelID"`
	} `json:"model"`
	Agent string `json:"agent,omitempty"`
	// Tools switches tools on or off for this prompt.
	Tools map[string]bool `json:"tools,omitempty"`
}

type promptPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}
