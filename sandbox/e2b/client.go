package e2b

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultDomain is E2B's domain when neither Config.Domain nor E2B_DOMAIN is
// set.
const DefaultDomain = "e2b.app"

// DefaultTemplate is the template sandboxes are created from by default.
const DefaultTemplate = "base"

// envdPort is the port of the in-sandbox daemon (spec §3.1).
const envdPort = 49983

// Config configures a [Client]. The zero value plus an APIKey talks to E2B's
// public endpoints.
type Config struct {
	// APIKey is sent as X-API-KEY to the control plane only (E2B_API_KEY).
	APIKey string
	// Domain is the E2B domain (E2B_DOMAIN; default "e2b.app"). Sandboxes
	// whose create answer carries a domain use that one instead.
	Domain string
	// APIURL is the control-plane base URL (E2B_API_URL; default
	// "https://api.<domain>"). Plain http:// is accepted.
	APIURL string
	// SandboxURL, when set, is the envd base URL used for every sandbox
	// instead of "https://49983-<id>.<domain>"; the sandbox is then named by
	// the E2b-Sandbox-Id and E2b-Sandbox-Port headers (E2B_SANDBOX_URL).
	SandboxURL string
	// Template is the template ID or alias sandboxes are created from
	// (default "base").
	Template string
	// HTTPClient carries every request (default: a client without an overall
	// timeout, since command streams are long-lived).
	HTTPClient *http.Client
}

// ConfigFromEnv reads E2B_API_KEY, E2B_DOMAIN, E2B_API_URL and
// E2B_SANDBOX_URL through getenv (os.Getenv when nil).
func ConfigFromEnv(getenv func(string) string) Config {
	if getenv == nil {
		getenv = osGetenv
	}
	return Config{
		APIKey:     getenv("E2B_API_KEY"),
		Domain:     getenv("E2B_DOMAIN"),
		APIURL:     getenv("E2B_API_URL"),
		SandboxURL: getenv("E2B_SANDBOX_URL"),
	}
}

// Client talks to E2B's control plane (create, get, list, kill and set the
// timeout of sandboxes) and opens envd connections to sandboxes. It is safe
// for concurrent use.
type Client struct {
	cfg     Config
	apiURL  *url.URL
	sbURL   *url.URL // nil: per-sandbox host
	http    *http.Client
	retry   retryPolicy
	sleep   func(ctx context.Context, d time.Duration) error
	redactK string
	// listLimit is the page size List asks for (tests lower it).
	listLimit int
}

// NewClient checks cfg and returns a client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("e2b: no API key (set E2B_API_KEY)")
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.APIURL == "" {
		cfg.APIURL = "https://api." + cfg.Domain
	}
	if cfg.Template == "" {
		cfg.Template = DefaultTemplate
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, retry: defaultRetry, sleep: sleepCtx, redactK: cfg.APIKey, listLimit: 100}
	if c.http == nil {
		c.http = &http.Client{}
	}
	var err error
	if c.apiURL, err = parseBase(cfg.APIURL); err != nil {
		return nil, fmt.Errorf("e2b: API URL: %w", err)
	}
	if cfg.SandboxURL != "" {
		if c.sbURL, err = parseBase(cfg.SandboxURL); err != nil {
			return nil, fmt.Errorf("e2b: sandbox URL: %w", err)
		}
	}
	return c, nil
}

func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	return u, nil
}

// Domain returns the domain used for sandboxes whose create answer names
// none.
func (c *Client) Domain() string { return c.cfg.Domain }

// CreateParams is the body of POST /v2/sandboxes (spec §2.1, NewSandboxV2).
type CreateParams struct {
	// TemplateID is a template ID or alias ("" = the client's template).
	TemplateID string `json:"templateID"`
	// Timeout is the sandbox's time to live from now, sent in whole seconds
	// (rounded up); 0 leaves the service default (300 s).
	Timeout time.Duration `json:"-"`
	// Metadata tags the sandbox; List filters on it.
	Metadata map[string]string `json:"metadata,omitempty"`
	// EnvVars is the default environment of every process in the sandbox.
	EnvVars map[string]string `json:"envVars,omitempty"`
}

// SandboxInfo is the Sandbox schema answered by create (spec §2.1).
type SandboxInfo struct {
	TemplateID         string  `json:"templateID"`
	SandboxID          string  `json:"sandboxID"`
	Alias              string  `json:"alias,omitempty"`
	ClientID           string  `json:"clientID"`
	EnvdVersion        string  `json:"envdVersion"`
	EnvdAccessToken    string  `json:"envdAccessToken,omitempty"`
	TrafficAccessToken *string `json:"trafficAccessToken,omitempty"`
	Domain             *string `json:"domain,omitempty"`
}

// SandboxDetail is GET /sandboxes/{id}'s answer (spec §2.2); fields this
// client does not use are left out.
type SandboxDetail struct {
	TemplateID      string            `json:"templateID"`
	Alias           string            `json:"alias,omitempty"`
	SandboxID       string            `json:"sandboxID"`
	ClientID        string            `json:"clientID"`
	StartedAt       time.Time         `json:"startedAt"`
	EndAt           time.Time         `json:"endAt"`
	State           string            `json:"state"` // "running" or "paused"
	CPUCount        int               `json:"cpuCount"`
	MemoryMB        int               `json:"memoryMB"`
	DiskSizeMB      int               `json:"diskSizeMB"`
	EnvdVersion     string            `json:"envdVersion"`
	EnvdAccessToken string            `json:"envdAccessToken,omitempty"`
	Domain          *string           `json:"domain,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

// ListedSandbox is one item of GET /v2/sandboxes (spec §2.5).
type ListedSandbox struct {
	TemplateID  string            `json:"templateID"`
	Alias       string            `json:"alias,omitempty"`
	SandboxID   string            `json:"sandboxID"`
	ClientID    string            `json:"clientID"`
	StartedAt   time.Time         `json:"startedAt"`
	EndAt       time.Time         `json:"endAt"`
	CPUCount    int               `json:"cpuCount"`
	MemoryMB    int               `json:"memoryMB"`
	DiskSizeMB  int               `json:"diskSizeMB"`
	EnvdVersion string            `json:"envdVersion"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	State       string            `json:"state"`
}

// Create creates a sandbox (POST /v2/sandboxes, 201).
func (c *Client) Create(ctx context.Context, p CreateParams) (*SandboxInfo, error) {
	if p.TemplateID == "" {
		p.TemplateID = c.cfg.Template
	}
	body := struct {
		CreateParams
		Timeout int `json:"timeout,omitempty"`
	}{p, ceilSeconds(p.Timeout)}
	var out SandboxInfo
	op := fmt.Sprintf("create sandbox (template %q)", p.TemplateID)
	if err := c.do(ctx, op, http.MethodPost, "/v2/sandboxes", nil, body, &out, http.StatusCreated); err != nil {
		return nil, err
	}
	if out.SandboxID == "" {
		return nil, fmt.Errorf("e2b: %s: answer has no sandboxID", op)
	}
	return &out, nil
}

// Get returns a sandbox's details (GET /sandboxes/{id}); an unknown sandbox
// gives an error matching [ErrSandboxNotFound].
func (c *Client) Get(ctx context.Context, id string) (*SandboxDetail, error) {
	var out SandboxDetail
	err := c.do(ctx, fmt.Sprintf("get sandbox %s", id), http.MethodGet, "/sandboxes/"+url.PathEscape(id), nil, nil, &out, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Kill kills a sandbox (DELETE /sandboxes/{id}, 204); a sandbox that is
// already gone gives an error matching [ErrSandboxNotFound].
func (c *Client) Kill(ctx context.Context, id string) error {
	return c.do(ctx, fmt.Sprintf("kill sandbox %s", id), http.MethodDelete, "/sandboxes/"+url.PathEscape(id), nil, nil, nil, http.StatusNoContent)
}

// SetTimeout makes a sandbox expire d from now (POST
// /sandboxes/{id}/timeout; d is sent in whole seconds, rounded up).
func (c *Client) SetTimeout(ctx context.Context, id string, d time.Duration) error {
	body := map[string]int{"timeout": ceilSeconds(d)}
	return c.do(ctx, fmt.Sprintf("set timeout of sandbox %s", id), http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/timeout", nil, body, nil, http.StatusNoContent)
}

// ListParams filter [Client.List].
type ListParams struct {
	// Metadata keeps sandboxes whose metadata holds every pair.
	Metadata map[string]string
	// State keeps sandboxes in these states ("running", "paused"; nil = both).
	State []string
}

// List returns the sandboxes matching p, following X-Next-Token across pages
// (GET /v2/sandboxes).
func (c *Client) List(ctx context.Context, p ListParams) ([]ListedSandbox, error) {
	q := url.Values{}
	if len(p.Metadata) > 0 {
		m := url.Values{}
		for k, v := range p.Metadata {
			m.Set(k, v)
		}
		q.Set("metadata", m.Encode())
	}
	if len(p.State) > 0 {
		q.Set("state", strings.Join(p.State, ","))
	}
	q.Set("limit", strconv.Itoa(c.listLimit))
	var all []ListedSandbox
	for page := 0; ; page++ {
		var items []ListedSandbox
		hdr, err := c.doHeader(ctx, "list sandboxes", http.MethodGet, "/v2/sandboxes", q, nil, &items, http.StatusOK)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		next := hdr.Get("X-Next-Token")
		if next == "" || page > 1000 {
			return all, nil
		}
		q.Set("nextToken", next)
	}
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Errors an [APIError] or a sandbox error can be matched against with
// errors.Is.
var (
	// ErrSandboxNotFound: the control plane answered 404 for the sandbox.
	ErrSandboxNotFound = errors.New("sandbox not found")
	// ErrUnauthorized: the API key was refused (401/403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: 429 or 503 persisted through the retries.
	ErrRateLimited = errors.New("rate limited or service busy")
)

// APIError is a control-plane error answer: the Error schema
// {"code": <int>, "message": ..., "error_code": ...} (spec §2) plus the
// operation that failed. It never holds the API key.
type APIError struct {
	Op         string // e.g. `create sandbox (template "base")`
	StatusCode int    // HTTP status
	Code       int    // the body's numeric code (usually the status)
	Message    string
	ErrorCode  string // optional machine code, e.g. "sandbox_capacity_unavailable"
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("e2b: %s: %d %s", e.Op, e.StatusCode, msg)
	if e.ErrorCode != "" {
		s += " (" + e.ErrorCode + ")"
	}
	return s
}

// Is matches [ErrSandboxNotFound] (404), [ErrUnauthorized] (401, 403) and
// [ErrRateLimited] (429, 503).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrSandboxNotFound:
		return e.StatusCode == http.StatusNotFound || e.Code == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
	}
	return false
}

func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, body, out any, okStatus int) error {
	_, err := c.doHeader(ctx, op, method, path, q, body, out, okStatus)
	return err
}

// doHeader sends one control-plane request with retries (see retryPolicy)
// and decodes a JSON answer into out.
func (c *Client) doHeader(ctx context.Context, op, method, path string, q url.Values, body, out any, okStatus int) (http.Header, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("e2b: %s: %w", op, err)
		}
	}
	u := *c.apiURL
	u.Path += path
	u.RawQuery = q.Encode()
	// POST /sandboxes/{id}/timeout sets an absolute expiry: repeating it is
	// harmless. Create is not idempotent and is retried only when the
	// request never left (dial errors) or the service refused it (429/503).
	idempotent := method != http.MethodPost || strings.HasSuffix(path, "/timeout")
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(payload))
		if err != nil {
			return nil, fmt.Errorf("e2b: %s: %w", op, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", userAgent)
		req.Header.Set("X-API-KEY", c.cfg.APIKey)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("e2b: %s: %w", op, ctx.Err())
			}
			if (idempotent || isDialError(err)) && attempt < c.retry.attempts {
				if serr := c.sleep(ctx, c.retry.backoff(attempt)); serr == nil {
					continue
				}
			}
			if msg := fmt.Sprintf("e2b: %s: %s", op, err); c.redact(msg) != msg {
				return nil, errors.New(c.redact(msg))
			}
			return nil, fmt.Errorf("e2b: %s: %w", op, err)
		}
		if resp.StatusCode == okStatus {
			defer resp.Body.Close()
			if out != nil {
				if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
					return nil, fmt.Errorf("e2b: %s: decoding the answer: %w", op, err)
				}
			} else {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			}
			return resp.Header, nil
		}
		apiErr := c.readAPIError(op, resp)
		if retryable(resp.StatusCode) && attempt < c.retry.attempts {
			if wait, ok := c.retry.wait(ctx, attempt, resp.Header.Get("Retry-After")); ok {
				if serr := c.sleep(ctx, wait); serr != nil {
					return nil, fmt.Errorf("%w (%w)", apiErr, serr)
				}
				continue
			}
		}
		return nil, apiErr
	}
}

// readAPIError decodes the Error schema; a body that is not one becomes the
// message (trimmed), so proxies' HTML pages still say something.
func (c *Client) readAPIError(op string, resp *http.Response) *APIError {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Op: c.redact(op), StatusCode: resp.StatusCode}
	var body struct {
		Code      int    `json:"code"`
		Message   string `json:"message"`
		ErrorCode string `json:"error_code"`
	}
	if json.Unmarshal(raw, &body) == nil && (body.Message != "" || body.Code != 0) {
		e.Code, e.Message, e.ErrorCode = body.Code, body.Message, body.ErrorCode
	} else {
		e.Message = strings.TrimSpace(string(raw))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	e.Message = c.redact(e.Message)
	return e
}

// redact removes the API key from text that came from elsewhere (a server
// that echoes it, a transport error).
func (c *Client) redact(s string) string {
	if c.redactK == "" {
		return s
	}
	return strings.ReplaceAll(s, c.redactK, "[REDACTED]")
}

const userAgent = "opencode-lsp-e2b/1"

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryPolicy bounds retries of 429/503 answers and connection errors:
// attempts in total, exponential backoff from base up to max when the answer
// has no Retry-After, and a Retry-After longer than maxRetryAfter (or past
// the context's deadline) is not waited for.
type retryPolicy struct {
	attempts      int
	base, max     time.Duration
	maxRetryAfter time.Duration
}

var defaultRetry = retryPolicy{attempts: 4, base: 250 * time.Millisecond, max: 4 * time.Second, maxRetryAfter: 30 * time.Second}

func (p retryPolicy) backoff(attempt int) time.Duration {
	d := p.base << (attempt - 1)
	if d > p.max || d <= 0 {
		d = p.max
	}
	return d
}

// wait returns how long to wait before the next attempt, honouring
// Retry-After (delay-seconds or an HTTP date), and false when that wait is
// too long to be worth it.
func (p retryPolicy) wait(ctx context.Context, attempt int, retryAfter string) (time.Duration, bool) {
	d := p.backoff(attempt)
	if retryAfter != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && secs >= 0 {
			d = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(retryAfter); err == nil {
			d = max(time.Until(t), 0)
		}
		if d > p.maxRetryAfter {
			return 0, false
		}
	}
	if dl, ok := ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
		return 0, false
	}
	return d, true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
