package fakee2b

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process/processconnect"
)

const key = "e2b_fake_test_key"

// These tests speak the wire protocol by hand (spec §2, §3.2–3.4 and
// corrections), independently of the provider's client.

type sb struct {
	SandboxID       string  `json:"sandboxID"`
	EnvdAccessToken string  `json:"envdAccessToken"`
	EnvdVersion     string  `json:"envdVersion"`
	ClientID        string  `json:"clientID"`
	Domain          *string `json:"domain"`
}

func api(t *testing.T, s *Server, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.APIURL+path, strings.NewReader(body))
	req.Header.Set("X-API-KEY", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func create(t *testing.T, s *Server, body string) sb {
	t.Helper()
	resp, b := api(t, s, "POST", "/v2/sandboxes", body, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("create = %d %s", resp.StatusCode, b)
	}
	var out sb
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func envd(t *testing.T, s *Server, box sb, method, path, contentType string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.SandboxURL+path, body)
	req.Header.Set("X-Access-Token", box.EnvdAccessToken)
	req.Header.Set("E2b-Sandbox-Id", box.SandboxID)
	req.Header.Set("E2b-Sandbox-Port", "49983")
	req.Header.Set("Connect-Protocol-Version", "1")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func envelope(flags byte, payload string) []byte {
	b := []byte{flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

type frame struct {
	flags   byte
	payload string
}

func readFrames(t *testing.T, r io.Reader) []frame {
	t.Helper()
	var out []frame
	for {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("reading an envelope header: %v", err)
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatalf("reading an envelope: %v", err)
		}
		out = append(out, frame{h[0], string(p)})
	}
}

func start(t *testing.T, s *Server, box sb, msg string, hdr map[string]string) (*http.Response, []frame) {
	t.Helper()
	resp := envd(t, s, box, "POST", "/process.Process/Start", "application/connect+json", bytes.NewReader(envelope(0, msg)), hdr)
	defer resp.Body.Close()
	return resp, readFrames(t, resp.Body)
}

func TestControlPlaneShapes(t *testing.T) {
	s := New(t, Options{APIKey: key})
	for _, hdr := range []map[string]string{{"X-API-KEY": ""}, {"X-API-KEY": "e2b_wrong"}} {
		resp, b := api(t, s, "GET", "/v2/sandboxes", "", hdr)
		if resp.StatusCode != 401 || string(b) != `{"code":401,"message":"Invalid API key"}` {
			t.Errorf("bad key: %d %s", resp.StatusCode, b)
		}
	}
	// A chunked body (corrections §8).
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"templateID":"base","timeout":60,`))
		pw.Write([]byte(`"metadata":{"app":"x","k":"v w"},"envVars":{"A":"1"}}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", s.APIURL+"/v2/sandboxes", pr)
	req.Header.Set("X-API-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var box sb
	json.NewDecoder(resp.Body).Decode(&box)
	resp.Body.Close()
	if resp.StatusCode != 201 || len(box.SandboxID) != 20 || !strings.HasPrefix(box.EnvdAccessToken, "eat_") || box.ClientID == "" || box.Domain != nil {
		t.Fatalf("chunked create: %d %+v", resp.StatusCode, box)
	}
	other := create(t, s, `{"templateID":"base","metadata":{"app":"y"}}`)

	resp, b := api(t, s, "GET", "/sandboxes/"+box.SandboxID, "", nil)
	var detail map[string]any
	json.Unmarshal(b, &detail)
	if resp.StatusCode != 200 || detail["state"] != "running" || detail["metadata"].(map[string]any)["k"] != "v w" {
		t.Errorf("get: %d %s", resp.StatusCode, b)
	}
	resp, b = api(t, s, "GET", "/v2/sandboxes?metadata=app%3Dx%26k%3Dv%2Bw", "", nil)
	var listed []map[string]any
	json.Unmarshal(b, &listed)
	if resp.StatusCode != 200 || len(listed) != 1 || listed[0]["sandboxID"] != box.SandboxID || resp.Header.Get("X-Total-Running") != "1" {
		t.Errorf("list by metadata: %d %s", resp.StatusCode, b)
	}
	resp, b = api(t, s, "GET", "/v2/sandboxes?limit=1&order=asc", "", nil)
	next := resp.Header.Get("X-Next-Token")
	json.Unmarshal(b, &listed)
	if len(listed) != 1 || listed[0]["sandboxID"] != box.SandboxID || next == "" {
		t.Errorf("first page: %s next %q", b, next)
	}
	resp, b = api(t, s, "GET", "/v2/sandboxes?limit=1&order=asc&nextToken="+next, "", nil)
	json.Unmarshal(b, &listed)
	if len(listed) != 1 || listed[0]["sandboxID"] != other.SandboxID || resp.Header.Get("X-Next-Token") != "" {
		t.Errorf("second page: %s", b)
	}
	if resp, b := api(t, s, "GET", "/v2/sandboxes?state=paused", "", nil); string(b) != "[]" {
		t.Errorf("paused: %d %s", resp.StatusCode, b)
	}

	if resp, b := api(t, s, "POST", "/sandboxes/"+box.SandboxID+"/timeout", `{"timeout":7200}`, nil); resp.StatusCode != 400 || !strings.HasPrefix(string(b), `{"code":400,`) {
		t.Errorf("timeout beyond the limit: %d %s", resp.StatusCode, b)
	}
	if resp, _ := api(t, s, "POST", "/sandboxes/"+box.SandboxID+"/timeout", `{"timeout":120}`, nil); resp.StatusCode != 204 {
		t.Errorf("set timeout: %d", resp.StatusCode)
	}
	if resp, _ := api(t, s, "DELETE", "/sandboxes/"+box.SandboxID, "", nil); resp.StatusCode != 204 {
		t.Errorf("kill: %d", resp.StatusCode)
	}
	resp, b = api(t, s, "DELETE", "/sandboxes/"+box.SandboxID, "", nil)
	if resp.StatusCode != 404 || string(b) != `{"code":404,"message":"sandbox \"`+box.SandboxID+`\" not found"}` {
		t.Errorf("second kill: %d %s", resp.StatusCode, b)
	}
	if resp, b := api(t, s, "POST", "/v2/sandboxes", `{"timeout":5}`, nil); resp.StatusCode != 400 {
		t.Errorf("create without templateID: %d %s", resp.StatusCode, b)
	}

	s.InjectFault(Fault{Service: ServiceAPI, Status: 429, RetryAfter: "3"})
	resp, b = api(t, s, "GET", "/sandboxes/"+other.SandboxID, "", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || string(b) != `{"code":429,"message":"Too Many Requests"}` {
		t.Errorf("fault: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if resp, _ := api(t, s, "GET", "/sandboxes/"+other.SandboxID, "", nil); resp.StatusCode != 200 {
		t.Errorf("after the fault: %d", resp.StatusCode)
	}
	// Timeout 0: the sandbox expires at once.
	api(t, s, "POST", "/sandboxes/"+other.SandboxID+"/timeout", `{"timeout":0}`, nil)
	for deadline := time.Now().Add(10 * time.Second); s.SandboxRoot(other.SandboxID) != "" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if resp, _ := api(t, s, "GET", "/sandboxes/"+other.SandboxID, "", nil); resp.StatusCode != 404 {
		t.Errorf("expired sandbox: %d", resp.StatusCode)
	}
}

func TestStartStreamFraming(t *testing.T) {
	s := New(t, Options{APIKey: key})
	box := create(t, s, `{"templateID":"base","envVars":{"FROM_SANDBOX":"sb","BOTH":"sb"}}`)
	// The spec's example request, byte for byte.
	msg := `{"process":{"cmd":"/bin/bash","args":["-l","-c","ls -la"],"envs":{},"cwd":"/home/user"},"stdin":false}`
	if len(msg) != 102 {
		t.Fatalf("example is %d bytes", len(msg))
	}
	resp, frames := start(t, s, box, msg, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/connect+json" {
		t.Fatalf("Start: %d %v", resp.StatusCode, resp.Header)
	}
	var first struct {
		Event struct {
			Start struct{ Pid int }
		}
	}
	if len(frames) < 3 || json.Unmarshal([]byte(frames[0].payload), &first) != nil || first.Event.Start.Pid == 0 {
		t.Fatalf("frames: %+v", frames)
	}
	last := frames[len(frames)-1]
	end := frames[len(frames)-2]
	if last.flags != 2 || last.payload != "{}" {
		t.Errorf("end-of-stream frame = %+v; want flags 2 and {}", last)
	}
	if !sameJSON(end.payload, `{"event":{"end":{"exited":true,"status":"exit status 0"}}}`) {
		t.Errorf("end event of a zero exit = %s (exitCode 0 must be omitted)", end.payload)
	}

	cmd := `echo out; echo err >&2; echo "$FROM_SANDBOX $BOTH $HOME $USER"; exit 2`
	body, _ := json.Marshal(map[string]any{"process": map[string]any{"cmd": "/bin/sh", "args": []string{"-c", cmd}, "envs": map[string]string{"BOTH": "req"}}, "stdin": false})
	_, frames = start(t, s, box, string(body), nil)
	var stdout, stderr string
	for _, f := range frames[1 : len(frames)-2] {
		var ev struct {
			Event struct {
				Data struct{ Stdout, Stderr string }
			}
		}
		if f.flags != 0 || json.Unmarshal([]byte(f.payload), &ev) != nil {
			t.Fatalf("data frame %+v", f)
		}
		o, _ := base64.StdEncoding.DecodeString(ev.Event.Data.Stdout)
		e, _ := base64.StdEncoding.DecodeString(ev.Event.Data.Stderr)
		stdout += string(o)
		stderr += string(e)
	}
	home := s.SandboxRoot(box.SandboxID) + "/home/user"
	if stdout != "out\nsb req "+home+" user\n" || stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	if end := frames[len(frames)-2].payload; !sameJSON(end, `{"event":{"end":{"exitCode":2,"exited":true,"status":"exit status 2","error":"exit status 2"}}}`) {
		t.Errorf("end event = %s", end)
	}

	// Errors travel in the end-of-stream frame of a 200 (corrections §4).
	resp, frames = start(t, s, box, `{"process":{"cmd":"/bin/sh","cwd":"/nope"}}`, nil)
	var eos struct {
		Error struct{ Code, Message string }
	}
	if resp.StatusCode != 200 || len(frames) != 1 || frames[0].flags != 2 || json.Unmarshal([]byte(frames[0].payload), &eos) != nil ||
		eos.Error.Code != "invalid_argument" || eos.Error.Message != "cwd '"+s.SandboxRoot(box.SandboxID)+"/nope' does not exist" {
		t.Errorf("missing cwd: %d %+v", resp.StatusCode, frames)
	}
	// Keep-alives when asked for.
	ka := New(t, Options{APIKey: key, KeepaliveInterval: time.Millisecond})
	kbox := create(t, ka, `{"templateID":"base"}`)
	_, frames = start(t, ka, kbox, `{"process":{"cmd":"sleep","args":["0.05"]}}`, map[string]string{"Keepalive-Ping-Interval": "50"})
	found := false
	for _, f := range frames {
		found = found || sameJSON(f.payload, `{"event":{"keepalive":{}}}`)
	}
	if !found {
		t.Errorf("no keepalive event: %+v", frames)
	}
}

func TestEnvdErrorShapes(t *testing.T) {
	s := New(t, Options{APIKey: key})
	box := create(t, s, `{"templateID":"base"}`)
	read := func(resp *http.Response) string {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	resp := envd(t, s, box, "POST", "/filesystem.Filesystem/Stat", "application/json", strings.NewReader(`{"path":"nope"}`), nil)
	if b := read(resp); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(b, `"code":"not_found"`) || !strings.Contains(b, `does not exist`) {
		t.Errorf("Stat(missing) = %d %s", resp.StatusCode, b)
	}
	resp = envd(t, s, box, "POST", "/filesystem.Filesystem/Stat", "application/json", strings.NewReader(`{"path":"nope"}`), map[string]string{"Connect-Protocol-Version": ""})
	if b := read(resp); resp.StatusCode == 200 || resp.StatusCode == 404 {
		t.Errorf("unary without Connect-Protocol-Version = %d %s", resp.StatusCode, b)
	}
	resp = envd(t, s, box, "POST", "/process.Process/SendSignal", "application/json", strings.NewReader(`{"process":{"pid":999999},"signal":"SIGNAL_SIGKILL"}`), nil)
	if b := read(resp); resp.StatusCode != 404 || !strings.Contains(b, `"code":"not_found"`) {
		t.Errorf("SendSignal(unknown pid) = %d %s", resp.StatusCode, b)
	}
	resp = envd(t, s, box, "GET", "/files?path=nope", "", nil, map[string]string{"X-Access-Token": ""})
	if b := read(resp); resp.StatusCode != 401 {
		t.Errorf("no access token = %d %s", resp.StatusCode, b)
	}
	resp = envd(t, s, sb{SandboxID: "gone", EnvdAccessToken: "x"}, "GET", "/health", "", nil, nil)
	if b := read(resp); resp.StatusCode != 502 || b != `{"code":502,"message":"The sandbox was not found","sandboxId":"gone"}` {
		t.Errorf("unknown sandbox = %d %s", resp.StatusCode, b)
	}
	resp = envd(t, s, box, "GET", "/health", "", nil, nil)
	if read(resp); resp.StatusCode != 204 {
		t.Errorf("health = %d", resp.StatusCode)
	}
	// The per-sandbox host form routes too.
	req, _ := http.NewRequest("GET", s.SandboxURL+"/health", nil)
	req.Host = "49983-" + box.SandboxID + "." + s.Domain
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Errorf("health by host: %v %v", resp, err)
	}
}

func TestFilesEndpoints(t *testing.T) {
	s := New(t, Options{APIKey: key})
	box := create(t, s, `{"templateID":"base"}`)
	root := s.SandboxRoot(box.SandboxID)
	read := func(resp *http.Response) string {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Multi-file multipart, chunked, full paths as filenames (absolute and
	// relative to home), non-ASCII names.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		w, _ := mw.CreateFormFile("file", "/home/user/dir/日本 語.txt")
		w.Write([]byte("one"))
		w, _ = mw.CreateFormFile("file", "rel/two.bin")
		w.Write([]byte{0, 1, 2, 255})
		mw.Close()
		pw.Close()
	}()
	resp := envd(t, s, box, "POST", "/files", mw.FormDataContentType(), pr, nil)
	b := read(resp)
	want := `[{"path":"` + root + `/home/user/dir/日本 語.txt","name":"日本 語.txt","type":"file"},{"path":"` + root + `/home/user/rel/two.bin","name":"two.bin","type":"file"}]`
	if resp.StatusCode != 200 || b != want {
		t.Errorf("upload = %d %s; want %s", resp.StatusCode, b, want)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "home/user/rel/two.bin")); !bytes.Equal(got, []byte{0, 1, 2, 255}) {
		t.Errorf("uploaded bytes %v", got)
	}
	// Single file: the path query wins; raw octet-stream body.
	var buf bytes.Buffer
	mw = multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "ignored-name")
	w.Write([]byte("by query"))
	mw.Close()
	if resp := envd(t, s, box, "POST", "/files?path=q.txt", mw.FormDataContentType(), &buf, nil); read(resp) == "" || resp.StatusCode != 200 {
		t.Errorf("upload with path query = %d", resp.StatusCode)
	}
	if resp := envd(t, s, box, "POST", "/files?path=raw.txt", "application/octet-stream", strings.NewReader("raw body"), nil); resp.StatusCode != 200 {
		t.Errorf("raw upload = %d %s", resp.StatusCode, read(resp))
	}
	for name, want := range map[string]string{"q.txt": "by query", "raw.txt": "raw body", "/home/user/dir/日本 語.txt": "one"} {
		resp := envd(t, s, box, "GET", "/files?path="+urlQuery(name), "", nil, nil)
		if got := read(resp); resp.StatusCode != 200 || got != want {
			t.Errorf("download %s = %d %q", name, resp.StatusCode, got)
		}
	}
	resp = envd(t, s, box, "GET", "/files?path=raw.txt", "", nil, map[string]string{"Range": "bytes=4-"})
	if got := read(resp); resp.StatusCode != 206 || got != "body" {
		t.Errorf("range download = %d %q", resp.StatusCode, got)
	}
	resp = envd(t, s, box, "GET", "/files?path=missing", "", nil, nil)
	if got := read(resp); resp.StatusCode != 404 || !strings.HasPrefix(got, `{"code":404,"message":"path '`) {
		t.Errorf("download missing = %d %s", resp.StatusCode, got)
	}
	resp = envd(t, s, box, "GET", "/files?path=dir", "", nil, nil)
	if got := read(resp); resp.StatusCode != 400 || !strings.Contains(got, "is a directory") {
		t.Errorf("download dir = %d %s", resp.StatusCode, got)
	}
	s.InjectFault(Fault{Service: ServiceEnvd, Path: "/files", Method: "POST", Status: 507})
	if resp := envd(t, s, box, "POST", "/files?path=x", "application/octet-stream", strings.NewReader("x"), nil); resp.StatusCode != 507 {
		t.Errorf("injected 507 = %d", resp.StatusCode)
	}
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", " ", "%20", "&", "%26", "+", "%2B").Replace(s)
}

// TestProcessSemantics checks envd's process behaviour per corrections §1,
// §2, §3, §6, with connect-go's binary codec (corrections §7).
func TestProcessSemantics(t *testing.T) {
	s := New(t, Options{APIKey: key})
	box := create(t, s, `{"templateID":"base"}`)
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("X-Access-Token", box.EnvdAccessToken)
		r.Header.Set("E2b-Sandbox-Id", box.SandboxID)
		return http.DefaultTransport.RoundTrip(r)
	})}
	client := processconnect.NewProcessClient(hc, s.SandboxURL) // binary proto
	ctx := context.Background()
	startCmd := func(ctx context.Context, script string) (*connect.ServerStreamForClient[pb.StartResponse], uint32) {
		st, err := client.Start(ctx, connect.NewRequest(&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", script}}}))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Receive() || st.Msg().GetEvent().GetStart() == nil {
			t.Fatalf("first event: %v %v", st.Msg(), st.Err())
		}
		return st, st.Msg().GetEvent().GetStart().GetPid()
	}
	alive := func(pid int) bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err == nil && !strings.Contains(string(b), ") Z ")
	}

	// §1: SendSignal kills the pid, not its children; the stream ends.
	st, pid := startCmd(ctx, "sleep 600 & echo $!; wait")
	if !st.Receive() {
		t.Fatal(st.Err())
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(st.Msg().GetEvent().GetData().GetStdout())))
	if _, err := client.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}, Signal: pb.Signal_SIGNAL_SIGKILL,
	})); err != nil {
		t.Fatal(err)
	}
	var end *pb.ProcessEvent_EndEvent
	for st.Receive() {
		if e := st.Msg().GetEvent().GetEnd(); e != nil {
			end = e
		}
	}
	if end == nil || end.ExitCode != -1 || end.Exited || end.Status != "signal: killed" || end.GetError() != "signal: killed" {
		t.Errorf("end of a killed process = %v (%v)", end, st.Err())
	}
	if child == 0 || !alive(child) {
		t.Errorf("child %d of the killed process is gone; envd signals the pid only", child)
	}
	syscall.Kill(child, syscall.SIGKILL)

	// §2: dropping the stream leaves the process running.
	sctx, cancel := context.WithCancel(ctx)
	st, pid = startCmd(sctx, "sleep 600")
	cancel()
	for st.Receive() {
	}
	list, err := client.List(ctx, connect.NewRequest(&pb.ListRequest{}))
	if err != nil || len(list.Msg.GetProcesses()) != 1 || list.Msg.GetProcesses()[0].GetPid() != pid || !alive(int(pid)) {
		t.Errorf("after dropping the stream: %v %v", list, err)
	}
	client.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}, Signal: pb.Signal_SIGNAL_SIGKILL,
	}))

	// §3: the Connect-Timeout-Ms deadline kills the process and ends the
	// stream with deadline_exceeded.
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	st, pid = startCmd(dctx, "sleep 600")
	for st.Receive() {
	}
	if connect.CodeOf(st.Err()) != connect.CodeDeadlineExceeded {
		t.Errorf("deadline: %v", st.Err())
	}

	// A sandbox that dies cuts the stream without an end-of-stream frame.
	st, pid = startCmd(ctx, "sleep 600")
	s.KillSandbox(box.SandboxID)
	for st.Receive() {
	}
	var ce *connect.Error
	if err := st.Err(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Errorf("stream of a killed sandbox ended with %v", err)
	}
	if alive(int(pid)) {
		t.Errorf("process %d survived its sandbox", pid)
	}
}

// sameJSON compares two JSON texts by value (protojson varies its
// whitespace on purpose, as the real envd's does).
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
