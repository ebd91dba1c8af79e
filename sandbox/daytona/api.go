package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SandboxInfo is the management API's Sandbox DTO (spec §3.1), the fields
// opencode-lsp reads. State and DesiredState are open enums (spec §3.2).
type SandboxInfo struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	OrganizationID      string            `json:"organizationId"`
	Snapshot            string            `json:"snapshot"`
	User                string            `json:"user"`
	Env                 map[string]string `json:"env"`
	Labels              map[string]string `json:"labels"`
	Public              bool              `json:"public"`
	Target              string            `json:"target"`
	CPU                 float64           `json:"cpu"`
	GPU                 float64           `json:"gpu"`
	Memory              float64           `json:"memory"`
	Disk                float64           `json:"disk"`
	State               string            `json:"state"`
	DesiredState        string            `json:"desiredState"`
	ErrorReason         string            `json:"errorReason"`
	Recoverable         bool              `json:"recoverable"`
	AutoStopInterval    int               `json:"autoStopInterval"`
	AutoArchiveInterval int               `json:"autoArchiveInterval"`
	AutoDeleteInterval  int               `json:"autoDeleteInterval"`
	CreatedAt           time.Time         `json:"createdAt"`
	UpdatedAt           time.Time         `json:"updatedAt"`
	// ToolboxProxyURL is the toolbox proxy base; the sandbox's toolbox is
	// <ToolboxProxyURL>/<ID>. Empty on older APIs.
	ToolboxProxyURL string `json:"toolboxProxyUrl"`
}

// CreateParams is the CreateSandbox body (spec §3.1); zero fields are left
// out so that Daytona's defaults apply.
type CreateParams struct {
	Name     string            `json:"name,omitempty"`
	Snapshot string            `json:"snapshot,omitempty"`
	User     string            `json:"user,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Public   bool              `json:"public,omitempty"`
	Target   string            `json:"target,omitempty"`
	// AutoStopInterval is in minutes (0 disables auto-stop; nil = 15).
	AutoStopInterval *int `json:"autoStopInterval,omitempty"`
	// AutoArchiveInterval is in minutes (nil = 7 days).
	AutoArchiveInterval *int `json:"autoArchiveInterval,omitempty"`
	// AutoDeleteInterval is in minutes: negative disables, 0 deletes the
	// sandbox as soon as it stops (nil = disabled).
	AutoDeleteInterval *int `json:"autoDeleteInterval,omitempty"`
}

func (c *Client) api(path string) string { return c.apiURL + path }

// Create creates a sandbox (POST /sandbox). The answer usually is not
// "started" yet; see [Client.WaitStarted].
func (c *Client) Create(ctx context.Context, p CreateParams) (*SandboxInfo, error) {
	if p.Snapshot == "" {
		p.Snapshot = c.snapshot
	}
	if p.Target == "" {
		p.Target = c.target
	}
	var sb SandboxInfo
	err := c.doJSON(ctx, request{op: "create sandbox", method: http.MethodPost, url: c.api("/sandbox")}, p, &sb)
	if err != nil {
		return nil, err
	}
	if sb.ID == "" {
		return nil, &Error{Op: "create sandbox", Message: "the answer has no sandbox id"}
	}
	return &sb, nil
}

// Get reads one sandbox (GET /sandbox/{idOrName}).
func (c *Client) Get(ctx context.Context, id string) (*SandboxInfo, error) {
	var sb SandboxInfo
	err := c.doJSON(ctx, request{op: "get sandbox", sandbox: id, method: http.MethodGet,
		url: c.api("/sandbox/" + url.PathEscape(id))}, nil, &sb)
	if err != nil {
		return nil, err
	}
	return &sb, nil
}

// List returns every sandbox whose labels include all of labels (nil = all),
// following nextCursor across pages (GET /sandbox, corrections §3). A bare
// array answer (older APIs) is accepted as a single page.
func (c *Client) List(ctx context.Context, labels map[string]string) ([]SandboxInfo, error) {
	var all []SandboxInfo
	cursor := ""
	seen := map[string]bool{}
	for {
		q := url.Values{"limit": {strconv.Itoa(c.listLimit)}}
		if len(labels) > 0 {
			b, _ := json.Marshal(labels)
			q.Set("labels", string(b))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var raw json.RawMessage
		err := c.doJSON(ctx, request{op: "list sandboxes", method: http.MethodGet,
			url: c.api("/sandbox?" + q.Encode())}, nil, &raw)
		if err != nil {
			return nil, err
		}
		var page struct {
			Items      []SandboxInfo `json:"items"`
			NextCursor *string       `json:"nextCursor"`
		}
		if len(raw) > 0 && raw[0] == '[' {
			if err := json.Unmarshal(raw, &page.Items); err != nil {
				return nil, &Error{Op: "list sandboxes", Err: fmt.Errorf("decode answer: %w", err)}
			}
		} else if err := json.Unmarshal(raw, &page); err != nil {
			return nil, &Error{Op: "list sandboxes", Err: fmt.Errorf("decode answer: %w", err)}
		}
		all = append(all, page.Items...)
		if page.NextCursor == nil || *page.NextCursor == "" || seen[*page.NextCursor] || len(page.Items) == 0 {
			return all, nil
		}
		cursor = *page.NextCursor
		seen[cursor] = true
	}
}

// Start starts a stopped, archived or paused sandbox (POST
// /sandbox/{id}/start) and waits until it is started.
func (c *Client) Start(ctx context.Context, id string) (*SandboxInfo, error) {
	var sb SandboxInfo
	err := c.doJSON(ctx, request{op: "start sandbox", sandbox: id, method: http.MethodPost,
		url: c.api("/sandbox/" + url.PathEscape(id) + "/start")}, nil, &sb)
	if err != nil {
		return nil, err
	}
	if sb.State == "started" {
		return &sb, nil
	}
	return c.WaitStarted(ctx, id)
}

// Stop stops a sandbox (POST /sandbox/{id}/stop?force=...) and waits until
// it is stopped (or gone: an ephemeral sandbox is destroyed on stop). force
// kills its processes with SIGKILL.
func (c *Client) Stop(ctx context.Context, id string, force bool) error {
	err := c.doJSON(ctx, request{op: "stop sandbox", sandbox: id, method: http.MethodPost,
		url: c.api("/sandbox/" + url.PathEscape(id) + "/stop?force=" + strconv.FormatBool(force))}, nil, nil)
	if err != nil {
		return err
	}
	return c.waitState(ctx, id, "stop sandbox", func(sb *SandboxInfo) (bool, error) {
		switch sb.State {
		case "stopped", "destroyed", "archived":
			return true, nil
		case "error", "build_failed":
			return false, &Error{Op: "stop sandbox", Sandbox: id, Message: "sandbox is in state " + sb.State + reason(sb)}
		}
		return false, nil
	})
}

// Delete deletes a sandbox (DELETE /sandbox/{id}); any 2xx answer is
// success, and so is a sandbox that no longer exists.
func (c *Client) Delete(ctx context.Context, id string) error {
	err := c.doJSON(ctx, request{op: "delete sandbox", sandbox: id, method: http.MethodDelete,
		url: c.api("/sandbox/" + url.PathEscape(id))}, nil, nil)
	var e *Error
	if errors.As(err, &e) && e.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}

// KeepAlive refreshes a sandbox's idle timer (POST
// /sandbox/{id}/last-activity).
func (c *Client) KeepAlive(ctx context.Context, id string) error {
	return c.doJSON(ctx, request{op: "refresh activity of sandbox", sandbox: id, method: http.MethodPost,
		url: c.api("/sandbox/" + url.PathEscape(id) + "/last-activity")}, nil, nil)
}

// WaitStarted polls GET /sandbox/{id} until the sandbox is started
// (corrections §2: every 100 ms for 5 s, then backing off to 1 s), for at
// most Options.StartTimeout. It fails at once on error, build_failed,
// destroyed and destroying, and on a sandbox that stopped instead of
// starting.
func (c *Client) WaitStarted(ctx context.Context, id string) (*SandboxInfo, error) {
	var last *SandboxInfo
	err := c.waitState(ctx, id, "wait for sandbox", func(sb *SandboxInfo) (bool, error) {
		last = sb
		switch sb.State {
		case "started":
			return true, nil
		case "error", "build_failed", "destroyed", "destroying":
			return false, &Error{Op: "start sandbox", Sandbox: id, Message: "sandbox is in state " + sb.State + reason(sb)}
		case "stopped", "archived":
			if sb.DesiredState != "" && sb.DesiredState != "started" {
				return false, &Error{Op: "start sandbox", Sandbox: id, Message: "sandbox is " + sb.State + " instead of starting"}
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

func reason(sb *SandboxInfo) string {
	if sb.ErrorReason == "" {
		return ""
	}
	return ": " + sb.ErrorReason
}

func (c *Client) waitState(ctx context.Context, id, op string, done func(*SandboxInfo) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, c.startWait)
	defer cancel()
	start := time.Now()
	delay := 100 * time.Millisecond
	for {
		sb, err := c.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return &Error{Op: op, Sandbox: id, Message: fmt.Sprintf("timed out after %s", c.startWait.Round(time.Second))}
			}
			return err
		}
		ok, err := done(sb)
		if err != nil || ok {
			return err
		}
		if time.Since(start) > 5*time.Second {
			delay = min(delay*2, time.Second)
		}
		if err := c.sleep(ctx, delay); err != nil {
			if ctx.Err() != nil {
				return &Error{Op: op, Sandbox: id, Message: fmt.Sprintf("timed out after %s in state %s", c.startWait.Round(time.Second), sb.State)}
			}
			return err
		}
	}
}

// PreviewLink is the answer of GET /sandbox/{id}/ports/{port}/preview-url
// (spec §5). A private sandbox wants the token in the
// x-daytona-preview-token header.
type PreviewLink struct {
	SandboxID string `json:"sandboxId"`
	URL       string `json:"url"`
	Token     string `json:"token"`
}

// PreviewHeader is the request header that carries a preview token.
const PreviewHeader = "x-daytona-preview-token"

// Preview returns the preview URL and token of a port of a sandbox.
func (c *Client) Preview(ctx context.Context, id string, port int) (*PreviewLink, error) {
	if port < 1 || port > 65535 {
		return nil, &Error{Op: "get preview URL of sandbox", Sandbox: id, Message: fmt.Sprintf("port %d out of range", port)}
	}
	var p PreviewLink
	err := c.doJSON(ctx, request{op: "get preview URL of sandbox", sandbox: id, method: http.MethodGet,
		url: c.api(fmt.Sprintf("/sandbox/%s/ports/%d/preview-url", url.PathEscape(id), port))}, nil, &p)
	if err != nil {
		return nil, err
	}
	if p.URL == "" {
		return nil, &Error{Op: "get preview URL of sandbox", Sandbox: id, Message: "the answer has no url"}
	}
	return &p, nil
}

// ToolboxBase returns the toolbox API base of a sandbox:
// <proxy>/<sandboxId>, where proxy is Options.ToolboxURL when set, else the
// DTO's toolboxProxyUrl, else the answer of GET
// /sandbox/{id}/toolbox-proxy-url (spec §1, §4).
func (c *Client) ToolboxBase(ctx context.Context, sb *SandboxInfo) (string, error) {
	proxy := c.toolboxURL
	if proxy == "" && sb.ToolboxProxyURL != "" {
		p, err := checkBaseURL("toolbox proxy URL", sb.ToolboxProxyURL)
		if err != nil {
			return "", err
		}
		proxy = p
	}
	if proxy == "" {
		var ans struct {
			URL string `json:"url"`
		}
		err := c.doJSON(ctx, request{op: "get toolbox proxy URL of sandbox", sandbox: sb.ID, method: http.MethodGet,
			url: c.api("/sandbox/" + url.PathEscape(sb.ID) + "/toolbox-proxy-url")}, nil, &ans)
		if err != nil {
			return "", err
		}
		p, err := checkBaseURL("toolbox proxy URL", ans.URL)
		if err != nil {
			return "", err
		}
		proxy = p
	}
	return proxy + "/" + url.PathEscape(sb.ID), nil
}
