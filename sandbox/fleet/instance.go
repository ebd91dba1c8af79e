package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Labels cloud sandboxes carry (E2B metadata, Daytona labels). The providers
// add LabelApp themselves; the manager adds the other two, which tie a
// sandbox to the daemon that opened it.
const (
	// LabelApp is "1" on every sandbox of opencode-lsp.
	LabelApp = "opencode-lsp"
	// LabelOwner is "<user>@<host>" of the daemon: a daemon only ever
	// sweeps sandboxes of its own user on its own host.
	LabelOwner = "opencode-lsp-owner"
	// LabelDaemon is the [Instance.ID] of the daemon.
	LabelDaemon = "opencode-lsp-daemon"
)

// Instance identifies one running daemon. Its ID has the form
// "<pid>-<start>-<nonce>": the process id, the process's start time in
// clock ticks since boot (from /proc/<pid>/stat; 0 where unknown), so that a
// recycled pid is not mistaken for the daemon, and a random nonce that tells
// apart several managers in one process (tests, --listen sessions).
type Instance struct {
	Owner string
	ID    string
}

// NewInstance returns the identity of a manager in this process.
func NewInstance() Instance {
	pid := os.Getpid()
	start, _ := processStart(pid)
	return Instance{Owner: currentOwner(), ID: fmt.Sprintf("%d-%d-%s", pid, start, randomHex(4))}
}

// Labels returns the labels that tie a sandbox to this instance.
func (i Instance) Labels() map[string]string {
	return map[string]string{LabelApp: "1", LabelOwner: i.Owner, LabelDaemon: i.ID}
}

// currentOwner is "<user>@<host>" with characters outside [A-Za-z0-9._@-]
// replaced by "_" (label values must survive every provider's rules).
func currentOwner() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return sanitizeLabel(name + "@" + host)
}

func sanitizeLabel(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}

// Alive reports whether the daemon whose [Instance.ID] is id still runs on
// this host. An id it cannot parse counts as alive: a sandbox is never
// killed on a guess.
func Alive(id string) bool {
	parts := strings.SplitN(id, "-", 3)
	if len(parts) != 3 {
		return true
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 {
		return true
	}
	start, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return true
	}
	return processAlive(pid, start)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
