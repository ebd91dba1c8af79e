package lsp

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

var osGetenv = os.Getenv

// watchProcess ends the session when the editor's process (the processId
// from initialize) disappears: everything the server started is cleaned up
// and the connection is closed, so the daemon exits even when the editor died
// without closing our stdin.
func (s *Server) watchProcess(ctx context.Context, pid int) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			s.log.Warn("Editor process is gone; shutting down", "pid", pid)
			s.shutdownWork("editor process exited")
			s.conn.Close()
			return
		}
	}
}
