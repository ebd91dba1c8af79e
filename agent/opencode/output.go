package opencode

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// outputWatcher reads the server command's output: it spots the launcher's
// HOME line and OpenCode's "listening" line, and keeps the last lines
// (redacted) for error messages.
type outputWatcher struct {
	red   *strings.Replacer
	ready chan struct{} // closed at the "listening" line

	mu       sync.Mutex
	partial  [2][]byte
	lines    []string // ring of the last maxTail lines
	next     int
	homePath string
	isReady  bool
}

const maxTail = 20

// maxLine bounds a buffered partial line.
const maxLine = 16 << 10

func newOutputWatcher(red *strings.Replacer) *outputWatcher {
	return &outputWatcher{red: red, ready: make(chan struct{})}
}

func (w *outputWatcher) stdout() io.Writer { return streamWriter{w, 0} }
func (w *outputWatcher) stderr() io.Writer { return streamWriter{w, 1} }

type streamWriter struct {
	w *outputWatcher
	i int
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.w.write(s.i, p)
	return len(p), nil
}

func (w *outputWatcher) write(i int, p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := append(w.partial[i], p...)
	for {
		j := bytes.IndexByte(buf, '\n')
		if j < 0 {
			break
		}
		w.line(i, string(bytes.TrimRight(buf[:j], "\r")))
		buf = buf[j+1:]
	}
	if len(buf) > maxLine {
		w.line(i, string(buf))
		buf = nil
	}
	w.partial[i] = append(w.partial[i][:0], buf...)
}

func (w *outputWatcher) line(stream int, l string) {
	if stream == 0 {
		switch {
		case strings.HasPrefix(l, homeMarker) && w.homePath == "":
			w.homePath = strings.TrimPrefix(l, homeMarker)
			return
		case strings.HasPrefix(l, listeningMarker) && !w.isReady:
			w.isReady = true
			close(w.ready)
		}
	}
	l = w.red.Replace(l)
	if len(w.lines) < maxTail {
		w.lines = append(w.lines, l)
		return
	}
	w.lines[w.next] = l
	w.next = (w.next + 1) % maxTail
}

func (w *outputWatcher) home() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.homePath
}

// tail returns the last lines of output, oldest first.
func (w *outputWatcher) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.lines)+2)
	out = append(out, w.lines[w.next:]...)
	out = append(out, w.lines[:w.next]...)
	for _, p := range w.partial {
		if len(p) > 0 {
			out = append(out, w.red.Replace(string(p)))
		}
	}
	return strings.Join(out, "\n")
}

// tailSuffix is ": <last lines>" for an error message, or "".
func (w *outputWatcher) tailSuffix() string {
	t := strings.TrimSpace(w.tail())
	if t == "" {
		return ""
	}
	return ": " + t
}
