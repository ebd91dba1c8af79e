//go:build !unix

package fleet

// processStart is unknown on this platform.
func processStart(int) (uint64, bool) { return 0, true }

// processAlive cannot tell here: every daemon counts as alive, so no
// sandbox is ever swept (they end by the cloud's own timeout).
func processAlive(int, uint64) bool { return true }
