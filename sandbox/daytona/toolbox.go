package daytona

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// toolbox is the toolbox API of one sandbox (spec §4), reached through the
// proxy at base = <toolboxProxyUrl>/<sandboxId>.
type toolbox struct {
	c    *Client
	id   string
	base string
}

func (t *toolbox) url(path string, q url.Values) string {
	u := t.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// homeDir asks the daemon for the sandbox user's home (GET /user-home-dir).
func (t *toolbox) homeDir(ctx context.Context) (string, error) {
	var ans struct {
		Dir string `json:"dir"`
	}
	err := t.c.doJSON(ctx, request{op: "read home directory of sandbox", sandbox: t.id, method: http.MethodGet,
		url: t.url("/user-home-dir", nil)}, nil, &ans)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(ans.Dir, "/") {
		return "", &Error{Op: "read home directory of sandbox", Sandbox: t.id, Message: fmt.Sprintf("not an absolute path: %q", ans.Dir)}
	}
	return strings.TrimRight(ans.Dir, "/"), nil
}

// execute runs command with process/execute (spec §4.1, corrections §4) and
// returns its exit code and combined output. The daemon runs no shell: the
// command is split on spaces, so callers pass a wrapped script (see
// shellScript). A timeout is always sent; the HTTP wait exceeds it.
func (t *toolbox) execute(ctx context.Context, op, command, cwd string, timeout time.Duration) (int, string, error) {
	secs := max(int((timeout+time.Second-1)/time.Second), 1)
	body := map[string]any{"command": command, "timeout": secs}
	if cwd != "" {
		body["cwd"] = cwd
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	var ans struct {
		ExitCode *int   `json:"exitCode"`
		Code     *int   `json:"code"`
		Result   string `json:"result"`
	}
	err := t.c.doJSON(ctx, request{op: op, sandbox: t.id, method: http.MethodPost, url: t.url("/process/execute", nil)}, body, &ans)
	if err != nil {
		return 0, "", err
	}
	code := ans.ExitCode
	if code == nil {
		code = ans.Code // older daemons
	}
	if code == nil {
		return 0, "", &Error{Op: op, Sandbox: t.id, Message: "the answer has no exit code"}
	}
	return *code, ans.Result, nil
}

// createSession creates a session (POST /process/session, 201).
func (t *toolbox) createSession(ctx context.Context, sid string) error {
	return t.c.doJSON(ctx, request{op: "create session in sandbox", sandbox: t.id, method: http.MethodPost,
		url: t.url("/process/session", nil)}, map[string]string{"sessionId": sid}, nil)
}

// deleteSession deletes a session (DELETE /process/session/{id}, 204).
func (t *toolbox) deleteSession(ctx context.Context, sid string) error {
	return t.c.doJSON(ctx, request{op: "delete session in sandbox", sandbox: t.id, method: http.MethodDelete,
		url: t.url("/process/session/"+url.PathEscape(sid), nil)}, nil, nil)
}

// execAsync runs command in a session without waiting (202 {cmdId}).
func (t *toolbox) execAsync(ctx context.Context, sid, command string) (string, error) {
	var ans struct {
		CmdID string `json:"cmdId"`
	}
	err := t.c.doJSON(ctx, request{op: "run command in sandbox", sandbox: t.id, method: http.MethodPost,
		url: t.url("/process/session/"+url.PathEscape(sid)+"/exec", nil)},
		map[string]any{"command": command, "runAsync": true}, &ans)
	if err != nil {
		return "", err
	}
	if ans.CmdID == "" {
		return "", &Error{Op: "run command in sandbox", Sandbox: t.id, Message: "the answer has no cmdId"}
	}
	return ans.CmdID, nil
}

// commandExit reads a session command; the exit code is nil while it runs.
func (t *toolbox) commandExit(ctx context.Context, sid, cid string) (*int, error) {
	var ans struct {
		ExitCode *int `json:"exitCode"`
	}
	err := t.c.doJSON(ctx, request{op: "read command status in sandbox", sandbox: t.id, method: http.MethodGet,
		url: t.url("/process/session/"+url.PathEscape(sid)+"/command/"+url.PathEscape(cid), nil)}, nil, &ans)
	return ans.ExitCode, err
}

// commandLogs reads a session command's output so far: JSON {stdout,
// stderr} from current daemons, combined plain text (returned as stdout)
// from older ones.
func (t *toolbox) commandLogs(ctx context.Context, sid, cid string) (stdout, stderr []byte, err error) {
	resp, err := t.c.do(ctx, request{op: "read command output in sandbox", sandbox: t.id, method: http.MethodGet,
		url:    t.url("/process/session/"+url.PathEscape(sid)+"/command/"+url.PathEscape(cid)+"/logs", nil),
		accept: "application/json,text/plain"})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, &Error{Op: "read command output in sandbox", Sandbox: t.id, Err: err}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" {
		var ans struct {
			Output string  `json:"output"`
			Stdout *string `json:"stdout"`
			Stderr *string `json:"stderr"`
		}
		if json.Unmarshal(raw, &ans) == nil {
			if ans.Stdout == nil && ans.Stderr == nil {
				return []byte(ans.Output), nil, nil
			}
			return []byte(deref(ans.Stdout)), []byte(deref(ans.Stderr)), nil
		}
	}
	return raw, nil, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// errNoFollow means the follow-logs WebSocket could not be opened for a
// reason other than the sandbox refusing (the caller falls back to polling).
var errNoFollow = errors.New("follow logs over WebSocket not available")

// followLogs streams a session command's output over the follow-logs
// WebSocket (spec §4.2, corrections §6) into d until the server closes the
// socket (the command finished) or ctx ends. Text and binary frames are both
// accepted.
func (t *toolbox) followLogs(ctx context.Context, sid, cid string, d *demux) error {
	u := t.url("/process/session/"+url.PathEscape(sid)+"/command/"+url.PathEscape(cid)+"/logs", url.Values{"follow": {"true"}})
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	h := http.Header{}
	t.c.setHeaders(h)
	hc := t.c.hc
	if hc.Timeout != 0 {
		// A whole-request timeout would cut the socket; ctx bounds it.
		cp := *hc
		cp.Timeout = 0
		hc = &cp
	}
	var conn *websocket.Conn
	for attempt := 0; ; attempt++ {
		c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
		if err == nil {
			conn = c
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if resp == nil {
			return fmt.Errorf("%w: %v", errNoFollow, t.c.redactErr(err))
		}
		r := request{op: "follow command output in sandbox", sandbox: t.id}
		if resp.Body == nil {
			resp.Body = http.NoBody
		}
		apiErr := t.c.readError(r, resp)
		if (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) &&
			attempt < t.c.maxRetries {
			wait, ok := retryAfter(resp.Header.Get("Retry-After"), attempt)
			if ok && wait <= t.c.maxWait {
				if err := t.c.sleep(ctx, wait); err != nil {
					return err
				}
				continue
			}
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadGateway:
			return apiErr
		}
		return fmt.Errorf("%w: %v", errNoFollow, apiErr)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	for {
		_, r, err := conn.Reader(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure || errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Op: "follow command output in sandbox", Sandbox: t.id, Err: t.c.redactErr(err)}
		}
		if _, err := io.Copy(d, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Op: "follow command output in sandbox", Sandbox: t.id, Err: t.c.redactErr(err)}
		}
	}
}

// uploadFile is one file of a bulk upload: its absolute destination and a
// way to (re)open its content, so that a retried request can send it again.
type uploadFile struct {
	Path string
	Open func() (io.ReadCloser, error)
}

// bulkUpload sends files with POST /files/bulk-upload (corrections §1): for
// each i a text part files[i].path with the exact destination, then a file
// part files[i].file whose filename is the destination too. The body is
// streamed (chunked), so memory stays bounded whatever the files weigh.
func (t *toolbox) bulkUpload(ctx context.Context, files []uploadFile) error {
	if len(files) == 0 {
		return nil
	}
	// One boundary for every attempt, so the content type is known before
	// the body is produced.
	boundary := multipart.NewWriter(io.Discard).Boundary()
	body := func() (io.Reader, error) {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		if err := mw.SetBoundary(boundary); err != nil {
			return nil, err
		}
		go func() { pw.CloseWithError(writeBulk(mw, files)) }()
		return pr, nil
	}
	resp, err := t.c.do(ctx, request{op: "upload files to sandbox", sandbox: t.id, method: http.MethodPost,
		url: t.url("/files/bulk-upload", nil), body: body, contentType: "multipart/form-data; boundary=" + boundary})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

func writeBulk(mw *multipart.Writer, files []uploadFile) error {
	for i, f := range files {
		if err := mw.WriteField(fmt.Sprintf("files[%d].path", i), f.Path); err != nil {
			return err
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="files[%d].file"; filename="%s"`, i, escapeQuotes(f.Path)))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Path, err)
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Path, err)
		}
	}
	return mw.Close()
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "%0D", "\n", "%0A")

func escapeQuotes(s string) string { return quoteEscaper.Replace(s) }

// bulkDownload fetches files with POST /files/bulk-download (corrections
// §1). Parts are matched to the requested paths by their exact path: the
// filename* (RFC 5987) parameter when present, else filename. A failed path
// comes back as a part named "error" whose body is an ErrorResponse (JSON)
// or, from older daemons, text; it is returned in failed.
func (t *toolbox) bulkDownload(ctx context.Context, paths []string) (files map[string][]byte, failed map[string]*Error, err error) {
	op := "download files from sandbox"
	b, _ := json.Marshal(map[string][]string{"paths": paths})
	resp, err := t.c.do(ctx, request{op: op, sandbox: t.id, method: http.MethodPost, url: t.url("/files/bulk-download", nil),
		body: func() (io.Reader, error) { return bytes.NewReader(b), nil }, contentType: "application/json",
		accept: "multipart/form-data"})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, nil, &Error{Op: op, Sandbox: t.id, Message: "the answer is not multipart: " + resp.Header.Get("Content-Type")}
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	files, failed = map[string][]byte{}, map[string]*Error{}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, &Error{Op: op, Sandbox: t.id, Err: err}
		}
		_, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		name, path := dp["name"], dp["filename"] // ParseMediaType decodes filename* into filename
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, &Error{Op: op, Sandbox: t.id, Err: err}
		}
		if !want[path] {
			switch {
			case want[name]:
				// Older daemons: name="<path>", filename="<basename>".
				path, name = name, "file"
			case len(paths) == 1 && (name == "file" || name == "error"):
				path = paths[0]
			default:
				continue
			}
		}
		switch name {
		case "file":
			files[path] = data
		case "error":
			e := &Error{Op: op, Sandbox: t.id}
			var body struct {
				StatusCode int    `json:"statusCode"`
				Message    string `json:"message"`
				Code       string `json:"code"`
			}
			if json.Unmarshal(data, &body) == nil {
				e.StatusCode, e.Message, e.Code = body.StatusCode, body.Message, body.Code
			} else {
				e.Message = strings.TrimSpace(string(data))
				if strings.Contains(strings.ToLower(e.Message), "not found") || strings.Contains(e.Message, "no such file") {
					e.StatusCode, e.Code = http.StatusNotFound, "FILE_NOT_FOUND"
				}
			}
			failed[path] = e
		}
	}
	return files, failed, nil
}
