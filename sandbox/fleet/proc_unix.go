//go:build unix && !linux

package fleet

import (
	"errors"
	"syscall"
)

// processStart is unknown outside Linux.
func processStart(pid int) (uint64, bool) { return 0, processExists(pid) }

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processAlive reports whether pid exists (start times are not known here,
// so a recycled pid counts as alive: orphans are then left to the cloud's
// own timeout).
func processAlive(pid int, _ uint64) bool { return processExists(pid) }
