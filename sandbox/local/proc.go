package local

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is what /proc/<pid>/stat (proc(5)) tells about one process.
type proc struct {
	pid, ppid, pgid, sid int
	state                byte
	start                uint64 // start time in clock ticks after boot
}

// id identifies a process across pid reuse.
type procID struct {
	pid   int
	start uint64
}

func (p proc) id() procID { return procID{p.pid, p.start} }

// readProc parses /proc/<pid>/stat; ok is false when the process is gone.
func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	return parseStat(pid, b)
}

// parseStat parses the content of /proc/<pid>/stat. The command name (field
// 2) may contain spaces and parentheses, so fields are counted from the last
// ')'.
func parseStat(pid int, b []byte) (proc, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return proc{}, false
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return proc{}, false
	}
	p := proc{pid: pid, state: f[0][0]}
	p.ppid, _ = strconv.Atoi(f[1])
	p.pgid, _ = strconv.Atoi(f[2])
	p.sid, _ = strconv.Atoi(f[3])
	p.start, _ = strconv.ParseUint(f[19], 10, 64)
	return p, true
}

// allProcs lists every process visible in /proc.
func allProcs() []proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]proc, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// tree returns the processes of procs that descend from root (root
// included) when root > 0, plus the members of process group pgid when
// pgid > 0.
func tree(procs []proc, root, pgid int) []proc {
	children := make(map[int][]int, len(procs))
	byPid := make(map[int]proc, len(procs))
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		byPid[p.pid] = p
	}
	seen := map[int]bool{}
	var out []proc
	var walk func(pid int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		if p, ok := byPid[pid]; ok {
			out = append(out, p)
		}
		for _, c := range children[pid] {
			walk(c)
		}
	}
	if root > 0 {
		walk(root)
	}
	if pgid > 0 {
		for _, p := range procs {
			if p.pgid == pgid && !seen[p.pid] {
				seen[p.pid] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// withEnv returns the processes started at or after minStart whose
// environment holds the exact entry kv ("NAME=value"); it finds commands
// that left their process group and session (setsid) as long as they kept
// their environment.
func withEnv(procs []proc, kv string, minStart uint64) []proc {
	var out []proc
	needle := append([]byte(kv), 0)
	for _, p := range procs {
		if p.start < minStart {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
		if err != nil {
			continue
		}
		if bytes.HasPrefix(b, needle) || bytes.Contains(b, append([]byte{0}, needle...)) {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether the process still exists and is not a zombie.
func alive(id procID) bool {
	p, ok := readProc(id.pid)
	return ok && p.start == id.start && p.state != 'Z' && p.state != 'X'
}

// killTree signals the process tree of one command and waits until it is
// gone: SIGTERM to the group and every known member, then, after grace,
// SIGKILL to whatever is left, re-scanning for members that appeared
// meanwhile. root is the command's process (its start time guards against pid
// reuse) and leads process group pgid; marker, when non-empty, is an
// environment entry every process of the command inherited. It gives up
// after grace + 2s and returns the number of processes still alive then
// (0 normally).
func killTree(root procID, pgid int, marker string, grace time.Duration) int {
	scan := func(set map[procID]proc) {
		ps := allProcs()
		walkRoot := 0
		for _, p := range ps {
			if p.id() == root {
				walkRoot = root.pid
			}
		}
		for _, p := range tree(ps, walkRoot, pgid) {
			set[p.id()] = p
		}
		if marker != "" {
			for _, p := range withEnv(ps, marker, root.start) {
				set[p.id()] = p
			}
		}
	}
	signal := func(set map[procID]proc, sig syscall.Signal) {
		if pgid > 1 && pgid != syscall.Getpgrp() {
			_ = syscall.Kill(-pgid, sig)
		}
		for id := range set {
			if id.pid > 1 && id.pid != os.Getpid() && alive(id) {
				_ = syscall.Kill(id.pid, sig)
			}
		}
	}
	waitGone := func(set map[procID]proc, until time.Time) bool {
		for len(scanAlive(set)) > 0 {
			if time.Now().After(until) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}

	set := map[procID]proc{}
	scan(set)
	signal(set, syscall.SIGTERM)
	if grace > 0 {
		waitGone(set, time.Now().Add(grace))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		scan(set)
		if len(scanAlive(set)) == 0 {
			return 0
		}
		signal(set, syscall.SIGKILL)
		waitGone(set, time.Now().Add(50*time.Millisecond))
		if time.Now().After(deadline) {
			return len(scanAlive(set))
		}
	}
}

func scanAlive(set map[procID]proc) []proc {
	var out []proc
	for id, p := range set {
		if alive(id) {
			out = append(out, p)
		}
	}
	return out
}

// tcpListening returns the TCP ports in LISTEN state (proc_net_tcp(5):
// st == 0A) in the network namespace of pid whose socket inode is in inodes;
// a nil inodes accepts every socket of the namespace.
func tcpListening(pid int, inodes map[uint64]bool) []int {
	var ports []int
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open("/proc/" + strconv.Itoa(pid) + "/net/" + f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" {
				continue
			}
			if inodes != nil {
				ino, _ := strconv.ParseUint(fs[9], 10, 64)
				if !inodes[ino] {
					continue
				}
			}
			// local_address is HEXIP:HEXPORT.
			j := strings.LastIndexByte(fs[1], ':')
			if j < 0 {
				continue
			}
			pb, err := hex.DecodeString(fs[1][j+1:])
			if err != nil || len(pb) != 2 {
				continue
			}
			ports = append(ports, int(pb[0])<<8|int(pb[1]))
		}
		fh.Close()
	}
	return ports
}

// socketInodes returns the inodes of the sockets pid holds open.
func socketInodes(pid int, into map[uint64]bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		l, err := os.Readlink(dir + "/" + n)
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(l[len("socket:["):], "]"), 10, 64)
		if err == nil {
			into[ino] = true
		}
	}
}

// netNS returns the network namespace identity of pid ("net:[4026531840]").
func netNS(pid int) string {
	l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	return l
}
