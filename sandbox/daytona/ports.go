package daytona

import (
	"regexp"
	"strconv"
	"sync"
)

// portScanner implements Cmd.OnListen for a provider that cannot see the
// sandbox's sockets: it reads the command's output line by line and reports
// each port a line announces ("listening on http://localhost:3000",
// "0.0.0.0:8080", "running on port 5173"), once per port.
type portScanner struct {
	mu     sync.Mutex
	onPort func(int)
	line   [3][]byte // per stream, the unfinished line
	seen   map[int]bool
}

const maxScannedLine = 4 << 10

var portPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(?:https?://)?(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\]|\[::\]|::):(\d{2,5})\b`),
	regexp.MustCompile(`(?i)\b(?:listen(?:ing)?|running|started|serving|server|available|ready)\b[^\n]{0,60}?\bport\s*:?\s*(\d{2,5})\b`),
}

func newPortScanner(onPort func(int)) *portScanner {
	return &portScanner{onPort: onPort, seen: map[int]bool{}}
}

func (p *portScanner) write(stream int, b []byte) {
	p.mu.Lock()
	var found []int
	for len(b) > 0 {
		i := indexByte(b, '\n')
		if i < 0 {
			if room := maxScannedLine - len(p.line[stream]); room > 0 {
				p.line[stream] = append(p.line[stream], b[:min(room, len(b))]...)
			}
			break
		}
		line := append(p.line[stream], b[:i]...)
		p.line[stream] = p.line[stream][:0]
		b = b[i+1:]
		found = append(found, p.scan(line)...)
	}
	p.mu.Unlock()
	for _, port := range found {
		p.onPort(port)
	}
}

func (p *portScanner) scan(line []byte) []int {
	var out []int
	for _, re := range portPatterns {
		for _, m := range re.FindAllSubmatch(line, -1) {
			n, err := strconv.Atoi(string(m[1]))
			if err != nil || n < 1 || n > 65535 || p.seen[n] {
				continue
			}
			p.seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
