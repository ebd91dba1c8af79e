package daytona

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// DefaultAPIURL is the management API base the official SDK uses
// (spec §1).
const DefaultAPIURL = "https://app.daytona.io/api"

// sdkVersion is sent as X-Daytona-SDK-Version: the daemon answers session
// logs as JSON only for SDK versions >= 0.167.0 (spec §2, corrections §6).
const sdkVersion = "0.218.0"

// Options configure a [Client] and a [Provider].
type Options struct {
	// APIKey is the Daytona API key (DAYTONA_API_KEY). It is sent as a bearer
	// token to the management API and the toolbox proxy and nowhere else.
	APIKey string
	// APIURL is the management API base (DAYTONA_API_URL); DefaultAPIURL
	// when empty. Plain http:// is accepted (loopback fakes).
	APIURL string
	// ToolboxURL overrides the toolbox proxy base (DAYTONA_TOOLBOX_URL) that
	// is otherwise taken from the API's own answer (the Sandbox DTO's
	// toolboxProxyUrl, or GET /sandbox/{id}/toolbox-proxy-url). The toolbox
	// of a sandbox is <ToolboxURL>/<sandboxId>.
	ToolboxURL string
	// Snapshot and Target are sent with every create ("" = Daytona's
	// defaults).
	Snapshot string
	Target   string
	// HTTPClient is used for every request; a client without a timeout when
	// nil (contexts bound every call).
	HTTPClient *http.Client
	// Logger receives debug lines (operation, sandbox, status; never a key
	// or a request body). Nil discards.
	Logger *slog.Logger
	// StartTimeout bounds the wait for a sandbox to reach "started" after a
	// create or a start; 0 means 2 minutes.
	StartTimeout time.Duration
	// MaxRetries is how many times a request answered 429 or 503 is retried
	// (honouring Retry-After); 0 means 5, a negative value disables retries.
	MaxRetries int
	// MaxRetryWait is the longest Retry-After that is waited for; a longer
	// one fails the request at once. 0 means 1 minute.
	MaxRetryWait time.Duration
}

// OptionsFromEnv reads, through getenv (os.Getenv when nil), the variables
// the official SDKs read: DAYTONA_API_KEY, DAYTONA_API_URL (or the legacy
// DAYTONA_SERVER_URL), DAYTONA_TOOLBOX_URL and DAYTONA_TARGET.
func OptionsFromEnv(getenv func(string) string) Options {
	if getenv == nil {
		getenv = os.Getenv
	}
	o := Options{
		APIKey:     getenv("DAYTONA_API_KEY"),
		APIURL:     getenv("DAYTONA_API_URL"),
		ToolboxURL: getenv("DAYTONA_TOOLBOX_URL"),
		Target:     getenv("DAYTONA_TARGET"),
	}
	if o.APIURL == "" {
		o.APIURL = getenv("DAYTONA_SERVER_URL")
	}
	return o
}

// Client speaks Daytona's management API (spec §3) and the toolbox API of
// its sandboxes (spec §4). It is safe for concurrent use.
type Client struct {
	key        string
	apiURL     string
	toolboxURL string
	snapshot   string
	target     string
	hc         *http.Client
	log        *slog.Logger
	startWait  time.Duration
	maxRetries int
	maxWait    time.Duration
	listLimit  int // page size of List
	// sleep waits for d or until ctx is done; tests replace it to observe
	// the waits without spending them.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient checks o and returns a client.
func NewClient(o Options) (*Client, error) {
	if strings.TrimSpace(o.APIKey) == "" {
		return nil, errors.New("daytona: no API key (set DAYTONA_API_KEY or the daytona apiKey setting)")
	}
	api := o.APIURL
	if api == "" {
		api = DefaultAPIURL
	}
	api, err := checkBaseURL("API URL", api)
	if err != nil {
		return nil, err
	}
	tb := ""
	if o.ToolboxURL != "" {
		if tb, err = checkBaseURL("toolbox URL", o.ToolboxURL); err != nil {
			return nil, err
		}
	}
	c := &Client{
		key: o.APIKey, apiURL: api, toolboxURL: tb, snapshot: o.Snapshot, target: o.Target,
		hc: o.HTTPClient, log: o.Logger, startWait: o.StartTimeout,
		maxRetries: o.MaxRetries, maxWait: o.MaxRetryWait, listLimit: 100, sleep: sleepCtx,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.startWait <= 0 {
		c.startWait = 2 * time.Minute
	}
	if c.maxRetries == 0 {
		c.maxRetries = 5
	} else if c.maxRetries < 0 {
		c.maxRetries = 0
	}
	if c.maxWait <= 0 {
		c.maxWait = time.Minute
	}
	return c, nil
}

func checkBaseURL(what, s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("daytona: %s %q is not an http(s) URL", what, s)
	}
	if u.User != nil {
		return "", fmt.Errorf("daytona: %s must not carry credentials", what)
	}
	return strings.TrimRight(u.String(), "/"), nil
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

// Error is a failed Daytona call. Its message names the operation and the
// sandbox, for example
//
//	daytona: create sandbox: 401 Unauthorized: invalid API key
//	daytona: execute command in sandbox 0626a08c: 408 Request Timeout: Command execution timed out after 5 seconds
//
// and never contains the API key.
type Error struct {
	// Op is what was being done ("create sandbox", "upload files to sandbox").
	Op string
	// Sandbox is the sandbox id, when there is one.
	Sandbox string
	// StatusCode is the HTTP status; 0 when no answer arrived.
	StatusCode int
	// Code is the error code of the body (daemon codes such as
	// FILE_NOT_FOUND or SANDBOX_NOT_STARTED, or the API's code/error_code).
	Code string
	// Message is the body's message (or its text when it is not JSON).
	Message string
	// Err is the transport error when no answer arrived.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("daytona: ")
	b.WriteString(e.Op)
	if e.Sandbox != "" {
		b.WriteString(" ")
		b.WriteString(e.Sandbox)
	}
	b.WriteString(": ")
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Message)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, sandbox.ErrNotFound) true for a missing file
// (FILE_NOT_FOUND), and errors.Is(err, sandbox.ErrClosed) true when the
// toolbox proxy says the sandbox is not started or not there (it stopped:
// opencode-lsp's sandboxes are deleted when they stop).
func (e *Error) Is(target error) bool {
	switch target {
	case sandbox.ErrNotFound:
		return e.Code == "FILE_NOT_FOUND"
	case sandbox.ErrClosed:
		return e.notStarted() || e.Code == "SANDBOX_NOT_FOUND"
	}
	return false
}

// notStarted reports whether the toolbox proxy refused a call because the
// sandbox is not started (corrections §7).
func (e *Error) notStarted() bool {
	return e.StatusCode == http.StatusBadGateway && e.Code == "SANDBOX_NOT_STARTED"
}

// request is one HTTP call. body, when set, is called for every attempt so
// that a retried request sends its body again.
type request struct {
	op, sandbox string
	method      string
	url         string
	body        func() (io.Reader, error)
	contentType string
	accept      string
}

// do sends r, retrying 429 and 503 answers as Retry-After says, and returns
// the response when its status is 2xx (the caller closes the body) or an
// *Error otherwise.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if r.body != nil {
			b, err := r.body()
			if err != nil {
				return nil, &Error{Op: r.op, Sandbox: r.sandbox, Err: err}
			}
			body = b
		}
		req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
		if err != nil {
			return nil, &Error{Op: r.op, Sandbox: r.sandbox, Err: err}
		}
		c.setHeaders(req.Header)
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
		if r.accept != "" {
			req.Header.Set("Accept", r.accept)
		} else {
			req.Header.Set("Accept", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if rc, ok := body.(io.Closer); ok {
				rc.Close()
			}
			return nil, &Error{Op: r.op, Sandbox: r.sandbox, Err: c.redactErr(err)}
		}
		c.log.Debug("daytona request", "op", r.op, "sandbox", r.sandbox, "method", r.method, "status", resp.StatusCode)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := c.readError(r, resp)
		if (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) &&
			attempt < c.maxRetries {
			wait, ok := retryAfter(resp.Header.Get("Retry-After"), attempt)
			if !ok || wait > c.maxWait {
				return nil, apiErr
			}
			c.log.Debug("daytona retry", "op", r.op, "sandbox", r.sandbox, "status", resp.StatusCode, "wait", wait)
			if err := c.sleep(ctx, wait); err != nil {
				return nil, &Error{Op: r.op, Sandbox: r.sandbox, Err: err}
			}
			continue
		}
		return nil, apiErr
	}
}

func (c *Client) setHeaders(h http.Header) {
	h.Set("Authorization", "Bearer "+c.key)
	h.Set("X-Daytona-Source", "opencode-lsp")
	h.Set("X-Daytona-SDK-Version", sdkVersion)
	h.Set("User-Agent", "opencode-lsp")
}

// retryAfter turns a Retry-After value (seconds or an HTTP date) into a
// wait; without one it backs off exponentially from 500 ms.
func retryAfter(v string, attempt int) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return min(500*time.Millisecond<<attempt, 8*time.Second), true
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// readError turns a non-2xx answer into an *Error, reading both the
// management API's NestJS shape ({statusCode, error, message, code}) and the
// daemon's ErrorResponse ({message, code, source}); a non-JSON body becomes
// the message as text.
func (c *Client) readError(r request, resp *http.Response) *Error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Op: r.op, Sandbox: r.sandbox, StatusCode: resp.StatusCode}
	var body struct {
		Message   json.RawMessage `json:"message"`
		Error     any             `json:"error"`
		Code      any             `json:"code"`
		ErrorCode string          `json:"error_code"`
		Errors    []string        `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Message = jsonMessage(body.Message)
		if e.Message == "" {
			if s, ok := body.Error.(string); ok && s != http.StatusText(resp.StatusCode) {
				e.Message = s
			}
		}
		if e.Message == "" && len(body.Errors) > 0 {
			e.Message = strings.Join(body.Errors, "; ")
		}
		if s, ok := body.Code.(string); ok {
			e.Code = s
		}
		if e.Code == "" {
			e.Code = body.ErrorCode
		}
	} else {
		e.Message = strings.TrimSpace(string(raw))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
	}
	e.Message = c.redact(e.Message)
	return e
}

func jsonMessage(m json.RawMessage) string {
	if len(m) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(m, &list) == nil {
		return strings.Join(list, "; ")
	}
	return string(bytes.TrimSpace(m))
}

// redact removes the API key from text that might quote a request.
func (c *Client) redact(s string) string {
	if c.key == "" || !strings.Contains(s, c.key) {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[REDACTED]")
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (c *Client) redactErr(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.key) {
		return err
	}
	return &redactedError{msg: c.redact(err.Error()), err: err}
}

// doJSON sends a JSON body (when in is not nil) and decodes a JSON answer
// into out (when not nil).
func (c *Client) doJSON(ctx context.Context, r request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &Error{Op: r.op, Sandbox: r.sandbox, Err: err}
		}
		r.body = func() (io.Reader, error) { return bytes.NewReader(b), nil }
		r.contentType = "application/json"
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return &Error{Op: r.op, Sandbox: r.sandbox, StatusCode: 0, Err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}
