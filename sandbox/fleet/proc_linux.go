package fleet

import (
	"os"
	"strconv"
	"strings"
)

// processStart returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/<pid>/stat), and false when there is no such
// process or it is a zombie (a killed daemon its parent has not reaped yet).
func processStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself: the fields after it start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, false
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return start, true
}

// processAlive reports whether pid runs and, when start is not 0, was
// started at start.
func processAlive(pid int, start uint64) bool {
	got, ok := processStart(pid)
	if !ok {
		return false
	}
	return start == 0 || got == start
}
