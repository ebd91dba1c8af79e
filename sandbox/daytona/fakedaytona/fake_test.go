package fakedaytona

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const key = "dtn_fake_test_key"

type client struct {
	t *testing.T
	s *Server
}

func newServer(t *testing.T, o Options) *client {
	t.Helper()
	o.APIKey = key
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &client{t, s}
}

// do sends a request with the bearer key (auth false: without) and returns
// the status, headers and body.
func (c *client) do(method, u string, body any, auth bool, hdr ...string) (int, http.Header, []byte) {
	c.t.Helper()
	var r io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %q", b)
	}
	return m
}

// started creates a sandbox and returns its id and toolbox base.
func (c *client) started() (string, string) {
	c.t.Helper()
	code, _, b := c.do("POST", c.s.APIURL()+"/sandbox", map[string]any{"labels": map[string]string{"a": "1"}}, true)
	if code != 200 {
		c.t.Fatalf("create: %d %s", code, b)
	}
	id := decode(c.t, b)["id"].(string)
	code, _, b = c.do("GET", c.s.APIURL()+"/sandbox/"+id, nil, true)
	if code != 200 || decode(c.t, b)["state"] != "started" {
		c.t.Fatalf("get: %d %s", code, b)
	}
	return id, c.s.ToolboxURL() + "/" + id
}

func TestAuthAndErrorShapes(t *testing.T) {
	c := newServer(t, Options{})
	code, _, b := c.do("GET", c.s.APIURL()+"/sandbox", nil, false)
	m := decode(t, b)
	if code != 401 || m["statusCode"] != 401.0 || m["error"] != "Unauthorized" || m["message"] != "invalid API key" ||
		m["path"] != "/api/sandbox" || m["timestamp"] == nil {
		t.Errorf("management 401: %d %s", code, b)
	}
	code, _, b = c.do("GET", c.s.APIURL()+"/sandbox/nope", nil, true)
	if m := decode(t, b); code != 404 || m["message"] != "Sandbox with ID or name nope not found" || m["error"] != "Not Found" {
		t.Errorf("management 404: %d %s", code, b)
	}
	id, tb := c.started()
	code, _, b = c.do("GET", tb+"/user-home-dir", nil, false)
	if m := decode(t, b); code != 401 || m["code"] != "UNAUTHORIZED" || m["source"] != "DAYTONA_DAEMON" || m["path"] != "/user-home-dir" {
		t.Errorf("toolbox 401: %d %s", code, b)
	}
	code, _, b = c.do("GET", tb+"/files/download?path=missing.txt", nil, true)
	if m := decode(t, b); code != 404 || m["code"] != "FILE_NOT_FOUND" || m["method"] != "GET" || m["path"] != "/files/download" {
		t.Errorf("download of a missing file: %d %s", code, b)
	}
	code, _, b = c.do("GET", tb+"/files/download?path=/etc/passwd", nil, true)
	if code == 200 {
		t.Errorf("the fake served a host file outside the sandbox: %s", b)
	}
	// Legacy toolbox route.
	code, _, b = c.do("GET", c.s.APIURL()+"/toolbox/"+id+"/toolbox/user-home-dir", nil, true)
	if code != 200 || !strings.HasSuffix(decode(t, b)["dir"].(string), "/home/daytona") {
		t.Errorf("legacy route: %d %s", code, b)
	}
}

func TestStateMachine(t *testing.T) {
	c := newServer(t, Options{StartAfterPolls: 2})
	code, _, b := c.do("POST", c.s.APIURL()+"/sandbox", map[string]any{"autoStopInterval": 5, "env": map[string]string{"E": "1"}}, true)
	d := decode(t, b)
	if code != 200 || d["state"] != "creating" || d["desiredState"] != "started" || d["autoStopInterval"] != 5.0 ||
		d["toolboxProxyUrl"] != c.s.ToolboxURL() {
		t.Fatalf("create: %d %s", code, b)
	}
	id := d["id"].(string)
	var states []string
	for i := 0; i < 3; i++ {
		_, _, b = c.do("GET", c.s.APIURL()+"/sandbox/"+id, nil, true)
		states = append(states, decode(t, b)["state"].(string))
	}
	if !slices.Equal(states, []string{"creating", "started", "started"}) {
		t.Errorf("states while polling: %v", states)
	}
	code, _, b = c.do("POST", c.s.ToolboxURL()+"/"+id+"/process/execute", map[string]any{"command": "env"}, true)
	if code != 200 || !strings.Contains(string(b), "E=1") || strings.Contains(string(b), key) {
		t.Errorf("execute env: %d %s", code, b)
	}
	_, _, b = c.do("POST", c.s.APIURL()+"/sandbox/"+id+"/stop?force=false", nil, true)
	if decode(t, b)["state"] != "stopping" {
		t.Errorf("stop answered %s", b)
	}
	code, _, b = c.do("POST", c.s.ToolboxURL()+"/"+id+"/process/execute", map[string]any{"command": "true"}, true)
	if m := decode(t, b); code != 502 || m["code"] != "SANDBOX_NOT_STARTED" {
		t.Errorf("toolbox of a stopped sandbox: %d %s", code, b)
	}
	_, _, b = c.do("POST", c.s.APIURL()+"/sandbox/"+id+"/start", nil, true)
	if s := decode(t, b)["state"]; s != "starting" {
		t.Errorf("start answered state %v", s)
	}
	_, _, b = c.do("DELETE", c.s.APIURL()+"/sandbox/"+id, nil, true)
	if decode(t, b)["state"] != "destroying" {
		t.Errorf("delete answered %s", b)
	}
	if code, _, _ := c.do("GET", c.s.APIURL()+"/sandbox/"+id, nil, true); code != 404 {
		t.Errorf("get after delete: %d", code)
	}
}

func TestListAndFaults(t *testing.T) {
	c := newServer(t, Options{})
	for i := 0; i < 3; i++ {
		c.do("POST", c.s.APIURL()+"/sandbox", map[string]any{"labels": map[string]string{"k": "v"}}, true)
	}
	c.do("POST", c.s.APIURL()+"/sandbox", map[string]any{}, true)
	q := url.Values{"labels": {`{"k":"v"}`}, "limit": {"2"}}
	_, _, b := c.do("GET", c.s.APIURL()+"/sandbox?"+q.Encode(), nil, true)
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor *string          `json:"nextCursor"`
	}
	json.Unmarshal(b, &page)
	if len(page.Items) != 2 || page.NextCursor == nil {
		t.Fatalf("first page: %s", b)
	}
	q.Set("cursor", *page.NextCursor)
	_, _, b = c.do("GET", c.s.APIURL()+"/sandbox?"+q.Encode(), nil, true)
	page.NextCursor = nil
	json.Unmarshal(b, &page)
	if len(page.Items) != 1 || page.NextCursor != nil {
		t.Errorf("last page: %s", b)
	}
	if code, _, _ := c.do("GET", c.s.APIURL()+"/sandbox?limit=500", nil, true); code != 400 {
		t.Errorf("limit 500: %d", code)
	}
	c.s.InjectFault(Fault{Method: "GET", Path: "/api/sandbox", Status: 429, RetryAfter: "3"})
	code, h, b := c.do("GET", c.s.APIURL()+"/sandbox", nil, true)
	if code != 429 || h.Get("Retry-After") != "3" || decode(t, b)["statusCode"] != 429.0 {
		t.Errorf("injected 429: %d %v %s", code, h, b)
	}
	if code, _, _ := c.do("GET", c.s.APIURL()+"/sandbox", nil, true); code != 200 {
		t.Errorf("after the fault: %d", code)
	}
}

func TestParseCommand(t *testing.T) {
	for in, want := range map[string][]string{
		`sh -c "echo 'a b'  c"`: {"sh", "-c", "echo 'a b'  c"},
		`a  b`:                  {"a", "b"},
		`x "" y`:                {"x", "y"},
		"a\tb":                  {"a\tb"},
		`it's "fine`:            {`its "fine`},
		`printf '%s "q"' done`:  {"printf", `%s "q"`, "done"},
		`echo a"b c"d`:          {"echo", "ab cd"},
		"":                      nil,
	} {
		if got := parseCommand(in); !slices.Equal(got, want) {
			t.Errorf("parseCommand(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestExecute(t *testing.T) {
	c := newServer(t, Options{TerminationGrace: 100 * time.Millisecond})
	_, tb := c.started()
	exec := func(body map[string]any) (int, map[string]any) {
		code, _, b := c.do("POST", tb+"/process/execute", body, true)
		return code, decode(t, b)
	}
	code, m := exec(map[string]any{"command": `sh -c "echo $X; pwd; exit 3"`, "envs": map[string]string{"X": "from envs"}, "cwd": "/tmp"})
	if code != 403 {
		t.Errorf("cwd outside the sandbox: %d %v", code, m)
	}
	code, m = exec(map[string]any{"command": `sh -c "echo $X; exit 3"`, "envs": map[string]string{"X": "from envs"}})
	if code != 200 || m["exitCode"] != 3.0 || m["result"] != "from envs\n" {
		t.Errorf("execute: %d %v", code, m)
	}
	code, m = exec(map[string]any{"command": "no-such-program-xyz"})
	if code != 200 || m["exitCode"] != -1.0 {
		t.Errorf("program that cannot start: %d %v", code, m)
	}
	code, m = exec(map[string]any{"command": "  "})
	if code != 400 || m["message"] != "empty command" {
		t.Errorf("empty command: %d %v", code, m)
	}
	code, m = exec(map[string]any{"command": "sleep 30", "timeout": 1})
	if code != 408 || m["code"] != "REQUEST_TIMEOUT" || !strings.HasPrefix(m["message"].(string), "Command execution timed out after 1 seconds") {
		t.Errorf("timeout: %d %v", code, m)
	}
	c2 := newServer(t, Options{LegacyExitCode: true})
	_, tb2 := c2.started()
	_, _, b := c2.do("POST", tb2+"/process/execute", map[string]any{"command": "false"}, true)
	if m := decode(t, b); m["code"] != 1.0 || m["exitCode"] != nil {
		t.Errorf("legacy exit code field: %s", b)
	}
}

func TestSessions(t *testing.T) {
	c := newServer(t, Options{LogFrameSize: 2})
	_, tb := c.started()
	sess := tb + "/process/session"
	if code, _, b := c.do("POST", sess, map[string]any{"sessionId": "s1"}, true); code != 201 || len(b) != 0 {
		t.Fatalf("create session: %d %s", code, b)
	}
	if code, _, _ := c.do("POST", sess, map[string]any{"sessionId": "s1"}, true); code != 409 {
		t.Errorf("duplicate session: %d", code)
	}
	execSync := func(cmd string) (int, map[string]any) {
		code, _, b := c.do("POST", sess+"/s1/exec", map[string]any{"command": cmd}, true)
		if code != 200 {
			return code, map[string]any{"raw": string(b)}
		}
		return code, decode(t, b)
	}
	_, m := execSync("cd /tmp && export V=kept")
	if m["exitCode"] != 0.0 {
		t.Fatalf("exec: %v", m)
	}
	_, m = execSync(`echo "$PWD $V"; echo e >&2`)
	if m["stdout"] != "/tmp kept\n" || m["stderr"] != "e\n" || m["exitCode"] != 0.0 {
		t.Errorf("state did not persist in the session: %v", m)
	}

	// Async, then follow over a WebSocket.
	code, _, b := c.do("POST", sess+"/s1/exec", map[string]any{"command": "echo one; echo two >&2; sleep 0.2; echo three", "runAsync": true}, true)
	if code != 202 {
		t.Fatalf("async exec: %d %s", code, b)
	}
	cmdID := decode(t, b)["cmdId"].(string)
	_, _, b = c.do("GET", sess+"/s1/command/"+cmdID, nil, true)
	if _, has := decode(t, b)["exitCode"]; has {
		t.Errorf("a running command has an exit code: %s", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(sess, "http") + "/s1/command/" + cmdID + "/logs?follow=true"
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	frames := 0
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("follow ended with %v", err)
			}
			break
		}
		if typ != websocket.MessageBinary || len(data) > 2 {
			t.Errorf("frame %d: type %v, %d bytes", frames, typ, len(data))
		}
		frames++
		all = append(all, data...)
	}
	want := "\x01\x01\x01one\n\x02\x02\x02two\n\x01\x01\x01three\n"
	if string(all) != want {
		t.Errorf("followed log %q; want %q", all, want)
	}
	_, _, b = c.do("GET", sess+"/s1/command/"+cmdID, nil, true)
	if decode(t, b)["exitCode"] != 0.0 {
		t.Errorf("finished command: %s", b)
	}
	_, h, b := c.do("GET", sess+"/s1/command/"+cmdID+"/logs", nil, true, "X-Daytona-SDK-Version", "0.218.0")
	if m := decode(t, b); m["stdout"] != "one\nthree\n" || m["stderr"] != "two\n" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("JSON logs: %s", b)
	}
	_, h, b = c.do("GET", sess+"/s1/command/"+cmdID+"/logs", nil, true, "X-Daytona-SDK-Version", "0.160.0")
	if string(b) != "one\ntwo\nthree\n" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("text logs: %q %v", b, h)
	}

	// exit ends the session's shell (corrections §5).
	code, m = execSync("exit 7")
	if code != 200 || m["exitCode"] != 7.0 {
		t.Errorf("exit 7: %d %v", code, m)
	}
	code, _, b = c.do("POST", sess+"/s1/exec", map[string]any{"command": "true"}, true)
	if m := decode(t, b); code != 410 || m["code"] != "SESSION_ENDED" {
		t.Errorf("exec after exit: %d %s", code, b)
	}
	if code, _, _ := c.do("DELETE", sess+"/s1", nil, true); code != 204 {
		t.Errorf("delete session: %d", code)
	}
	if code, _, _ := c.do("GET", sess+"/s1", nil, true); code != 404 {
		t.Errorf("deleted session: %d", code)
	}
}

func TestFiles(t *testing.T) {
	c := newServer(t, Options{})
	id, tb := c.started()
	st, _ := c.s.Sandbox(id)
	names := []string{st.Home + "/w/日本語 ファイル.txt", st.Home + `/w/quote"back\slash.bin`, "rel/ü.txt"}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i, n := range names {
		mw.WriteField(fmt.Sprintf("files[%d].path", i), n)
		w, _ := mw.CreateFormFile(fmt.Sprintf("files[%d].file", i), n)
		w.Write([]byte("content of " + n))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", tb+"/files/bulk-upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bulk-upload: %v %v", resp, err)
	}
	resp.Body.Close()
	if b, err := os.ReadFile(filepath.Join(st.Home, "rel", "ü.txt")); err != nil || string(b) != "content of rel/ü.txt" {
		t.Errorf("relative destination: %q %v", b, err)
	}

	paths := append(names, st.Home+"/missing.txt")
	code, h, b := c.do("POST", tb+"/files/bulk-download", map[string]any{"paths": paths}, true)
	mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if code != 200 || mt != "multipart/form-data" {
		t.Fatalf("bulk-download: %d %v", code, h)
	}
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	got := map[string]string{}
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			break
		}
		cd := p.Header.Get("Content-Disposition")
		_, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			t.Fatalf("Content-Disposition %q: %v", cd, err)
		}
		if !strings.Contains(cd, "filename*=utf-8''") || p.Header.Get("Content-Length") == "" {
			t.Errorf("part header %v", p.Header)
		}
		data, _ := io.ReadAll(p)
		got[dp["name"]+" "+dp["filename"]] = string(data)
	}
	for _, n := range names {
		if got["file "+n] != "content of "+n {
			t.Errorf("part for %q: %q (parts %v)", n, got["file "+n], got)
		}
	}
	if e := got["error "+st.Home+"/missing.txt"]; !strings.Contains(e, `"code":"FILE_NOT_FOUND"`) {
		t.Errorf("error part: %q", e)
	}

	if code, _, _ := c.do("POST", tb+"/files/folder?path=a/b&mode=755", nil, true); code != 201 {
		t.Errorf("folder: %d", code)
	}
	if code, _, _ := c.do("DELETE", tb+"/files?path=a", nil, true); code != 400 {
		t.Errorf("delete of a non-empty folder without recursive: %d", code)
	}
	if code, _, _ := c.do("DELETE", tb+"/files?path=a&recursive=true", nil, true); code != 204 {
		t.Errorf("recursive delete: %d", code)
	}
	if code, _, b := c.do("POST", tb+"/files/upload-v2?path=raw.txt", []byte("raw body"), true); code != 200 || decode(t, b)["name"] != "raw.txt" {
		t.Errorf("upload-v2 raw: %d %s", code, b)
	}
	if code, _, b := c.do("GET", tb+"/files/download?path=raw.txt", nil, true); code != 200 || string(b) != "raw body" {
		t.Errorf("download: %d %q", code, b)
	}
}

func TestPreviewNeedsToken(t *testing.T) {
	c := newServer(t, Options{})
	id, _ := c.started()
	code, _, b := c.do("GET", c.s.APIURL()+"/sandbox/"+id+"/ports/3000/preview-url", nil, true)
	m := decode(t, b)
	if code != 200 || m["sandboxId"] != id || m["token"] == "" {
		t.Fatalf("preview-url: %d %s", code, b)
	}
	if code, _, _ := c.do("GET", m["url"].(string)+"/", nil, false); code != 401 {
		t.Errorf("preview without a token: %d", code)
	}
	// With the token but nothing listening on the port.
	if code, _, _ := c.do("GET", m["url"].(string)+"/", nil, false, "x-daytona-preview-token", m["token"].(string)); code != 502 {
		t.Errorf("preview of a port nobody listens on: %d", code)
	}
}
