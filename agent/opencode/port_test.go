package opencode

import (
	"context"
	"net"
	"testing"
)

// A port taken between our probe and OpenCode's bind (it then fails with
// only "ServeError") makes Start try again with another port.
func TestStartRetriesATakenPort(t *testing.T) {
	e := newEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return taken.Addr().(*net.TCPAddr).Port, nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })
	srv, err := Start(context.Background(), e.sb, e.config(Policy{Edit: Allow, Bash: Allow}))
	if err != nil {
		t.Fatalf("start after a taken port: %v", err)
	}
	defer srv.Close()
	if calls < 2 {
		t.Fatalf("%d ports tried", calls)
	}
}
