package openrouter

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// blackholeAddr returns a loopback address whose connects hang: a socket
// listening with a backlog of 0 whose single accept-queue slot is taken,
// so the kernel drops further SYNs (what a firewalled or unreachable host
// looks like to the client).
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 4 { // fill the accept queue until a connect no longer completes
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue; connect timeouts cannot be provoked here")
	return ""
}

func TestConnectTimeout(t *testing.T) {
	addr := blackholeAddr(t)
	c, err := New(Config{BaseURL: "http://" + addr + "/api/v1", APIKey: testKey,
		ConnectTimeout: 100 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stream(context.Background(), hello, nil)
	e := wantKind(t, err, KindTimeout)
	if e.Phase != PhaseConnect {
		t.Fatalf("phase %q: %q", e.Phase, e.Error())
	}
	t.Log(e.Error())
}
