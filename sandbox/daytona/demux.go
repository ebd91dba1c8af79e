package daytona

// Stream ids of the follow-logs protocol.
const (
	streamStdout = 1
	streamStderr = 2
)

// demux splits the follow-logs byte stream (spec §4.2): the marker 0x01 0x01
// 0x01 switches the following bytes to stdout and 0x02 0x02 0x02 to stderr.
// Markers may be split across frames, so up to two trailing bytes that could
// start a marker are held back until the next write (or flush). Bytes before
// any marker are stdout.
type demux struct {
	stream  int
	pending []byte
	emit    func(stream int, p []byte)
}

func newDemux(emit func(stream int, p []byte)) *demux {
	return &demux{stream: streamStdout, emit: emit}
}

// Write never fails; it lets the demux be an io.Writer for io.Copy.
func (d *demux) Write(p []byte) (int, error) {
	n := len(p)
	if len(d.pending) > 0 {
		p = append(d.pending, p...)
		d.pending = nil
	}
	start := 0
	for i := 0; i < len(p); i++ {
		b := p[i]
		if b != 1 && b != 2 {
			continue
		}
		// Count the run of this byte value (at most 3 matter).
		j := i
		for j < len(p) && j-i < 3 && p[j] == b {
			j++
		}
		if j-i == 3 {
			if i > start {
				d.emit(d.stream, p[start:i])
			}
			d.stream = int(b)
			start = j
			i = j - 1
			continue
		}
		if j == len(p) {
			// A possible marker cut by the frame end: hold it back.
			if i > start {
				d.emit(d.stream, p[start:i])
			}
			d.pending = append([]byte(nil), p[i:]...)
			return n, nil
		}
		i = j - 1
	}
	if start < len(p) {
		d.emit(d.stream, p[start:])
	}
	return n, nil
}

// flush delivers bytes held back at the end of the stream.
func (d *demux) flush() {
	if len(d.pending) > 0 {
		d.emit(d.stream, d.pending)
		d.pending = nil
	}
}
