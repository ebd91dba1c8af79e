package e2b

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
)

func TestParseManifest(t *testing.T) {
	const h1 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	const h2 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	out := "644 3 a b.txt\x00755 0 dir/new\nline\\x\x00600 1 vanished\x00\x00" +
		h1 + "  ./a b.txt\n\\" + h2 + "  ./dir/new\\nline\\\\x\n"
	m, err := parseManifest([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := sandbox.Manifest{
		"a b.txt":          {Size: 3, Mode: 0o644, Hash: h1},
		"dir/new\nline\\x": {Size: 0, Mode: 0o755, Hash: h2},
	}
	if len(m) != len(want) {
		t.Fatalf("parseManifest = %v; want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%q: %+v; want %+v", k, m[k], v)
		}
	}
	if m, err := parseManifest([]byte("\x00")); err != nil || len(m) != 0 {
		t.Errorf("empty listing: %v %v", m, err)
	}
	if _, err := parseManifest([]byte("644 3 x")); err == nil {
		t.Error("a truncated listing parsed")
	}
}

func TestManifestOfOddNames(t *testing.T) {
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{})
	runCmd(t, sb, sandbox.Cmd{Shell: `printf a > "$(printf 'new\nline')"; printf b > 'back\slash'; printf c > ' lead space'`})
	m, err := sb.Manifest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"new\nline", `back\slash`, " lead space"} {
		if m[name].Size != 1 || len(m[name].Hash) != 64 {
			t.Errorf("manifest[%q] = %+v (all: %v)", name, m[name], m)
		}
	}
}

func TestOnListen(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t, fakee2b.Options{})
	sb := e.open(t, sandbox.Spec{})
	ports := make(chan int, 4)
	printed := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := sb.Exec(ctx, sandbox.Cmd{
			Args:     []string{"python3", "-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)"},
			Stdout:   writerFunc(func(p []byte) { printed <- strings.TrimSpace(string(p)) }),
			OnListen: func(port int) { ports <- port },
		})
		done <- err
	}()
	want := <-printed
	select {
	case got := <-ports:
		if strconv.Itoa(got) != want {
			t.Errorf("OnListen(%d); the command listens on %s", got, want)
		}
	case err := <-done:
		t.Fatalf("Exec ended before OnListen: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Exec = %v", err)
	}
	select {
	case p := <-ports:
		t.Errorf("OnListen(%d) called twice for one port", p)
	default:
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
