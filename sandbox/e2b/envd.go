package e2b

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/filesystem/filesystemconnect"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process/processconnect"
)

var osGetenv = os.Getenv

// envd is a connection to one sandbox's daemon: Connect clients for
// process.Process and filesystem.Filesystem (JSON codec) and the plain HTTP
// endpoints /health and /files. Its requests carry X-Access-Token and the
// E2b-Sandbox-* routing headers, never the API key.
type envd struct {
	id      string
	base    *url.URL
	http    *http.Client // envdTransport over the client's transport
	process processconnect.ProcessClient
	fs      filesystemconnect.FilesystemClient
}

// envdFor opens the envd connection of a sandbox.
func (c *Client) envdFor(id, accessToken string, domain *string) *envd {
	base := c.sbURL
	if base == nil {
		d := c.cfg.Domain
		if domain != nil && *domain != "" {
			d = *domain
		}
		base = &url.URL{Scheme: "https", Host: fmt.Sprintf("%d-%s.%s", envdPort, id, d)}
	}
	inner := c.http.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	hc := &http.Client{
		Transport: &envdTransport{
			inner: inner, id: id, token: accessToken, retry: c.retry, sleep: c.sleep,
		},
		CheckRedirect: c.http.CheckRedirect,
		Jar:           c.http.Jar,
	}
	opts := []connect.ClientOption{connect.WithProtoJSON()}
	return &envd{
		id:      id,
		base:    base,
		http:    hc,
		process: processconnect.NewProcessClient(hc, base.String(), opts...),
		fs:      filesystemconnect.NewFilesystemClient(hc, base.String(), opts...),
	}
}

// envdTransport adds envd's headers, strips anything that must not reach
// envd, and retries 429/503 answers honouring Retry-After when the request
// body can be sent again.
type envdTransport struct {
	inner http.RoundTripper
	id    string
	token string
	retry retryPolicy
	sleep func(context.Context, time.Duration) error
}

// maxReplay is the largest request body buffered to be sent again.
const maxReplay = 1 << 20

func (t *envdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Del("X-API-KEY")
	req.Header.Del("Authorization")
	if t.token != "" {
		req.Header.Set("X-Access-Token", t.token)
	}
	req.Header.Set("E2b-Sandbox-Id", t.id)
	req.Header.Set("E2b-Sandbox-Port", strconv.Itoa(envdPort))
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Buffer small bodies (Connect requests are one message) so that a
		// 429/503 can be retried; a larger body is sent as is, once.
		buf, err := io.ReadAll(io.LimitReader(req.Body, maxReplay+1))
		if err != nil {
			req.Body.Close()
			return nil, err
		}
		if len(buf) > maxReplay {
			req.Body = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
		} else {
			req.Body.Close()
			req.Body = io.NopCloser(bytes.NewReader(buf))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
			req.ContentLength = int64(len(buf))
		}
	}
	for attempt := 1; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		if err != nil || !retryable(resp.StatusCode) || attempt >= t.retry.attempts || (req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		wait, ok := t.retry.wait(req.Context(), attempt, resp.Header.Get("Retry-After"))
		if !ok {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// health probes GET /health: nil when envd answers 204; errSandboxGone on
// the edge's 502.
func (e *envd) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base.String()+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusBadGateway:
		return errSandboxGone
	}
	return fmt.Errorf("health check answered %s", resp.Status)
}

var errSandboxGone = errors.New("the sandbox is no longer running (edge proxy answered 502)")

// httpError is an error answer of envd's plain HTTP endpoints:
// {"code": <int>, "message": ...} (spec §3.2).
type httpError struct {
	Status  int
	Message string
}

func (e *httpError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func readHTTPError(resp *http.Response) error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &body) == nil && body.Message != "" {
		msg = body.Message
	}
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if resp.StatusCode == http.StatusBadGateway {
		return fmt.Errorf("%w: %s", errSandboxGone, msg)
	}
	return &httpError{Status: resp.StatusCode, Message: msg}
}

// download reads a whole file (GET /files?path=).
func (e *envd) download(ctx context.Context, path string) ([]byte, error) {
	u := e.base.String() + "/files?" + url.Values{"path": {path}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, readHTTPError(resp)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// upload sends a multipart body whose parts parts writes (POST /files,
// parts named "file" whose filename is the destination path). The body is
// streamed (chunked, corrections §8); parts is called again if the request
// has to be resent.
func (e *envd) upload(ctx context.Context, parts func(mw *multipart.Writer) error) error {
	var rnd [16]byte
	rand.Read(rnd[:])
	boundary := hex.EncodeToString(rnd[:])
	open := func() io.ReadCloser {
		pr, pw := io.Pipe()
		go func() {
			mw := multipart.NewWriter(pw)
			mw.SetBoundary(boundary)
			err := parts(mw)
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base.String()+"/files", open())
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.GetBody = func() (io.ReadCloser, error) { return open(), nil }
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return readHTTPError(resp)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return nil
}
