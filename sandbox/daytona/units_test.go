package daytona

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

func TestDemuxMarkersAcrossFrames(t *testing.T) {
	stream := []byte("\x01\x01\x01out1\n\x02\x02\x02err1\n\x01\x01\x01\x01x\x02\x02y\x02\x02\x02\x02\x02\x02e2")
	wantOut := "out1\n\x01x\x02\x02y"
	wantErr := "err1\ne2"
	// Every way of cutting the stream into three frames.
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j++ {
			var out, errOut bytes.Buffer
			d := newDemux(func(s int, p []byte) {
				if s == streamStderr {
					errOut.Write(p)
				} else {
					out.Write(p)
				}
			})
			d.Write(stream[:i])
			d.Write(stream[i:j])
			d.Write(stream[j:])
			d.flush()
			if out.String() != wantOut || errOut.String() != wantErr {
				t.Fatalf("cut at %d,%d: stdout %q stderr %q", i, j, out.String(), errOut.String())
			}
		}
	}
}

func TestDemuxRandomFrames(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var wantOut, wantErr []byte
	for i := 0; i < 2000; i++ {
		chunk := []byte{byte('a' + r.IntN(26)), byte(r.IntN(3)), '\n'}
		if chunk[1] != 0 && chunk[1] == chunk[0] {
			chunk[1] = 'z'
		}
		if r.IntN(2) == 0 {
			stream = append(append(stream, 1, 1, 1), chunk...)
			wantOut = append(wantOut, chunk...)
		} else {
			stream = append(append(stream, 2, 2, 2), chunk...)
			wantErr = append(wantErr, chunk...)
		}
	}
	var out, errOut []byte
	d := newDemux(func(s int, p []byte) {
		if s == streamStderr {
			errOut = append(errOut, p...)
		} else {
			out = append(out, p...)
		}
	})
	for rest := stream; len(rest) > 0; {
		n := min(1+r.IntN(7), len(rest))
		d.Write(rest[:n])
		rest = rest[n:]
	}
	d.flush()
	if !bytes.Equal(out, wantOut) || !bytes.Equal(errOut, wantErr) {
		t.Errorf("random frames: stdout %d/%d bytes, stderr %d/%d bytes", len(out), len(wantOut), len(errOut), len(wantErr))
	}
}

func TestPortScanner(t *testing.T) {
	var got []int
	p := newPortScanner(func(port int) { got = append(got, port) })
	p.write(streamStdout, []byte("  VITE v5  ready\n  ➜  Local:   http://localhost:5173/\n"))
	p.write(streamStderr, []byte("Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ...\n"))
	p.write(streamStdout, []byte("Listening on port 3000")) // no newline yet
	p.write(streamStdout, []byte("\nlocalhost:5173 again\nversion 1.2.3:45\n"))
	if !slices.Equal(got, []int{5173, 8000, 3000}) {
		t.Errorf("ports %v; want [5173 8000 3000]", got)
	}
}

func TestRelPath(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "a/b": "a/b", "a//b/": "a/b", "a/../b": "b", "./x": "x"} {
		if got, err := relPath(in); err != nil || got != want {
			t.Errorf("relPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"..", "../x", "a/../../x", "/etc/passwd", "/"} {
		if _, err := relPath(bad); !errors.Is(err, sandbox.ErrPathEscape) {
			t.Errorf("relPath(%q): %v; want ErrPathEscape", bad, err)
		}
	}
}

func TestFindExpr(t *testing.T) {
	e, err := sandbox.NewExcluder([]string{"*.log", "node_modules/", "/build", "# comment", "dist"}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `\( -path './.git' -o -name '*.log' -o -type d -name 'node_modules' -o -path './build' -o -name 'dist' \) -prune -o \( -type f -o -type l \) `
	if got := findExpr(e); !strings.HasPrefix(got, want) {
		t.Errorf("findExpr = %q; want prefix %q", got, want)
	}
	e, _ = sandbox.NewExcluder([]string{"node_modules", "!node_modules/keep"}, true)
	if got := findExpr(e); !strings.HasPrefix(got, `\( -type f`) {
		t.Errorf("with a negation nothing may be pruned: %q", got)
	}
}

func TestParseListing(t *testing.T) {
	out := "f 12 5 1.5 1.6 644\x00./a b\x00\x00l 13 1 2.0 2.1 777\x00./link\x00a b\x00d 1 0 0 0 755\x00./dir\x00\x00"
	m, err := parseListing(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["a b"].Size != 5 || m["a b"].Perm != 0o644 || m["link"].Link != "a b" || m["a b"].Key != "12 5 1.5 1.6" {
		t.Errorf("parseListing = %+v", m)
	}
	if _, err := parseListing("garbage\x00x\x00\x00"); err == nil {
		t.Errorf("garbage parsed")
	}
	h := parseHashes("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  ./a b\x00")
	if h["a b"] != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("parseHashes = %v", h)
	}
}

func TestBulkDownloadOlderDaemonParts(t *testing.T) {
	// Older daemons name file parts after the path and give the basename as
	// filename; errors are text parts named "error".
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Paths []string }
		json.NewDecoder(r.Body).Decode(&req)
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/form-data; boundary="+mw.Boundary())
		for _, p := range req.Paths {
			h := textproto.MIMEHeader{}
			if strings.HasSuffix(p, "missing") {
				h.Set("Content-Disposition", `form-data; name="error"; filename="missing"`)
				pw, _ := mw.CreatePart(h)
				pw.Write([]byte("file not found or invalid: " + p))
				continue
			}
			h.Set("Content-Disposition", `form-data; name="`+p+`"; filename="`+path.Base(p)+`"`)
			pw, _ := mw.CreatePart(h)
			pw.Write([]byte("data of " + p))
		}
		mw.Close()
	}))
	defer srv.Close()
	c, err := NewClient(Options{APIKey: "k", APIURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tb := &toolbox{c: c, id: "sb", base: srv.URL}
	files, failed, err := tb.bulkDownload(context.Background(), []string{"/w/a.txt", "/w/b.txt"})
	if err != nil || string(files["/w/a.txt"]) != "data of /w/a.txt" || string(files["/w/b.txt"]) != "data of /w/b.txt" || len(failed) != 0 {
		t.Errorf("older file parts: %q %v %v", files, failed, err)
	}
	files, failed, err = tb.bulkDownload(context.Background(), []string{"/w/missing"})
	if err != nil || len(files) != 0 || !errors.Is(failed["/w/missing"], sandbox.ErrNotFound) {
		t.Errorf("older error part: %q %v %v", files, failed, err)
	}
}
