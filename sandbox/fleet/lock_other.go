//go:build !unix

package fleet

import "os"

// lockFile only creates the lock file on this platform: daemons of one
// user are serialised within a process only (Store's mutex).
func lockFile(path string, _ bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}
