//go:build unix

package main

import (
	"io"
	"os"
	"syscall"
)

// pollableStdin returns stdin switched to non-blocking mode, so that the Go
// runtime polls it and closing it (which the server does after the `exit`
// notification) ends the pending read. A blocking stdin pipe would keep the
// process waiting until the editor closes its end, although LSP says `exit`
// ends the server. Only a pipe or socket is switched (a terminal is shared
// with the shell); anything but the process's own stdin is returned as is.
func pollableStdin(in io.Reader) io.Reader {
	f, ok := in.(*os.File)
	if !ok || f != os.Stdin {
		return in
	}
	if st, err := f.Stat(); err != nil || st.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return in
	}
	if err := syscall.SetNonblock(syscall.Stdin, true); err != nil {
		return in
	}
	if p := os.NewFile(uintptr(syscall.Stdin), "/dev/stdin"); p != nil {
		return p
	}
	return in
}
