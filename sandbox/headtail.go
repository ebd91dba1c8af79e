package sandbox

import (
	"io"
	"strconv"
	"sync"
)

// HeadTail implements the [Cmd.OutputLimit] semantic for providers: it sits
// between a command's two output streams and the caller's writers, streams
// the first half of the limit through as it arrives, then keeps only the most
// recent half (in a ring buffer that never grows past it) and delivers that
// tail, after a line "[... N bytes of output dropped ...]", when [HeadTail.Close]
// is called at the command's end. Memory stays bounded by the limit whatever
// the command prints.
//
// The limit counts the bytes of both streams together; a stream whose writer
// is nil is discarded and not counted. The caller's writers are never called
// concurrently (Stdout and Stderr may be the same writer). Byte order within
// each stream is preserved; the relative order of the two streams is the
// order in which their bytes reached the HeadTail. The dropped-bytes line is
// written to the stream whose bytes were dropped first, and is preceded by a
// newline when that stream's last delivered byte was not one.
//
// A write error from a caller's writer is remembered ([HeadTail.Err]) and
// that writer is not called again, but the HeadTail keeps accepting output so
// the command is never blocked by it.
type HeadTail struct {
	mu       sync.Mutex
	w        [2]io.Writer
	wErr     [2]error
	last     [2]byte // last byte delivered per stream, 0 if none
	headLeft int64   // bytes still allowed through as they arrive
	tailCap  int     // bytes of tail kept

	ring  []byte // tail bytes; grows by doubling up to tailCap
	start int    // index of the oldest tail byte in ring
	n     int    // tail bytes held
	segs  []segment
	seg0  int // index of the oldest segment in segs

	dropped   int64
	firstDrop int // stream whose bytes were dropped first, -1 if none
	closed    bool
}

// segment is a run of tail bytes from one stream.
type segment struct {
	stream int
	n      int
}

// maxSegments bounds the bookkeeping of the tail: when a command interleaves
// tiny writes on both streams, the oldest runs are dropped whole beyond it.
const maxSegments = 1 << 14

// minRing is the first allocation of the tail ring.
const minRing = 32 << 10

// NewHeadTail returns a HeadTail delivering to stdout and stderr (either may
// be nil) with a total limit in bytes; limit <= 0 means unlimited.
func NewHeadTail(limit int64, stdout, stderr io.Writer) *HeadTail {
	h := &HeadTail{w: [2]io.Writer{stdout, stderr}, firstDrop: -1}
	if limit <= 0 {
		h.headLeft = 1<<63 - 1
		return h
	}
	tail := limit / 2
	h.headLeft = limit - tail
	if tail > 1<<40 {
		tail = 1 << 40
	}
	h.tailCap = int(tail)
	return h
}

// Stdout returns the writer for the command's standard output.
func (h *HeadTail) Stdout() io.Writer { return streamWriter{h, 0} }

// Stderr returns the writer for the command's standard error.
func (h *HeadTail) Stderr() io.Writer { return streamWriter{h, 1} }

type streamWriter struct {
	h      *HeadTail
	stream int
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.h.write(s.stream, p)
	return len(p), nil
}

// Dropped returns the number of bytes dropped so far.
func (h *HeadTail) Dropped() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Err returns the first error a caller's writer returned, if any.
func (h *HeadTail) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wErr[0] != nil {
		return h.wErr[0]
	}
	return h.wErr[1]
}

// Close delivers the kept tail (after the dropped-bytes line, if bytes were
// dropped) and returns the number of bytes dropped. Writes after Close are
// discarded and counted as dropped. Close is idempotent.
func (h *HeadTail) Close() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return h.dropped
	}
	h.closed = true
	if h.dropped > 0 && h.firstDrop >= 0 {
		line := make([]byte, 0, 48)
		if h.last[h.firstDrop] != 0 && h.last[h.firstDrop] != '\n' {
			line = append(line, '\n')
		}
		line = append(line, "[... "...)
		line = strconv.AppendInt(line, h.dropped, 10)
		line = append(line, " bytes of output dropped ...]\n"...)
		h.deliver(h.firstDrop, line)
	}
	for i := h.seg0; i < len(h.segs); i++ {
		sg := h.segs[i]
		h.deliverRing(sg.stream, sg.n)
	}
	h.ring, h.segs, h.seg0, h.n, h.start = nil, nil, 0, 0, 0
	return h.dropped
}

func (h *HeadTail) write(stream int, p []byte) {
	if h.w[stream] == nil || len(p) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.drop(stream, len(p))
		return
	}
	if h.headLeft > 0 {
		k := len(p)
		if int64(k) > h.headLeft {
			k = int(h.headLeft)
		}
		h.headLeft -= int64(k)
		h.deliver(stream, p[:k])
		p = p[k:]
		if len(p) == 0 {
			return
		}
	}
	if h.tailCap == 0 {
		h.drop(stream, len(p))
		return
	}
	if len(p) > h.tailCap {
		h.drop(stream, len(p)-h.tailCap)
		p = p[len(p)-h.tailCap:]
	}
	if over := h.n + len(p) - h.tailCap; over > 0 {
		h.evict(over)
	}
	h.grow(h.n + len(p))
	// Copy p into the ring after the held bytes, wrapping around.
	end := (h.start + h.n) % len(h.ring)
	c := copy(h.ring[end:], p)
	copy(h.ring, p[c:])
	h.n += len(p)
	if k := len(h.segs); k > h.seg0 && h.segs[k-1].stream == stream {
		h.segs[k-1].n += len(p)
	} else {
		if len(h.segs)-h.seg0 >= maxSegments {
			h.evict(h.segs[h.seg0].n)
		}
		if h.seg0 > 0 && h.seg0 >= len(h.segs)/2 {
			h.segs = append(h.segs[:0], h.segs[h.seg0:]...)
			h.seg0 = 0
		}
		h.segs = append(h.segs, segment{stream, len(p)})
	}
}

// grow makes the ring hold at least need bytes (need <= tailCap), keeping
// the held bytes in order.
func (h *HeadTail) grow(need int) {
	if need <= len(h.ring) {
		return
	}
	size := max(len(h.ring)*2, minRing)
	for size < need {
		size *= 2
	}
	size = min(size, h.tailCap)
	ring := make([]byte, size)
	if h.n > 0 {
		c := copy(ring, h.ring[h.start:min(h.start+h.n, len(h.ring))])
		copy(ring[c:h.n], h.ring)
	}
	h.ring, h.start = ring, 0
}

// evict drops k of the oldest tail bytes.
func (h *HeadTail) evict(k int) {
	for k > 0 && h.seg0 < len(h.segs) {
		sg := &h.segs[h.seg0]
		d := min(k, sg.n)
		h.drop(sg.stream, d)
		sg.n -= d
		k -= d
		h.start = (h.start + d) % len(h.ring)
		h.n -= d
		if sg.n == 0 {
			h.seg0++
		}
	}
}

func (h *HeadTail) drop(stream, k int) {
	if h.firstDrop < 0 {
		h.firstDrop = stream
	}
	h.dropped += int64(k)
}

// deliverRing writes the k oldest ring bytes to stream.
func (h *HeadTail) deliverRing(stream, k int) {
	for k > 0 {
		c := min(k, len(h.ring)-h.start)
		h.deliver(stream, h.ring[h.start:h.start+c])
		h.start = (h.start + c) % len(h.ring)
		h.n -= c
		k -= c
	}
}

func (h *HeadTail) deliver(stream int, p []byte) {
	if len(p) == 0 || h.wErr[stream] != nil {
		return
	}
	h.last[stream] = p[len(p)-1]
	if _, err := h.w[stream].Write(p); err != nil {
		h.wErr[stream] = err
	}
}
