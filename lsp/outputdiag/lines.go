package outputdiag

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"unicode/utf8"
)

// lineReader turns raw command output into clean lines: it splits on "\n",
// "\r\n" and a lone "\r" (a terminal overwrites the line there), strips ANSI
// escape sequences (CSI colours, OSC hyperlinks and titles, two- and
// three-byte escapes), replaces invalid UTF-8 with U+FFFD and keeps at most
// maxLine bytes of a line (the head, cut at a character boundary). It reads
// through a fixed buffer, so a line of any length costs O(maxLine) memory.
type lineReader struct {
	r       *bufio.Reader
	maxLine int
	buf     []byte // the line being assembled
	pending []byte // the rest of a raw line after a lone '\r'
	// pendingCut: the raw line pending comes from was cut.
	pendingCut bool
	long       int // lines cut at maxLine
	err        error
}

func newLineReader(r io.Reader, maxLine int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine}
}

// next returns the next clean line (valid until the following call) and
// false at the end of the input; lr.err then holds a read error other than
// io.EOF.
func (lr *lineReader) next() ([]byte, bool) {
	raw, cut, ok := lr.rawLine()
	if !ok {
		return nil, false
	}
	line, shortened := clean(raw, lr.maxLine)
	if cut || shortened {
		lr.long++
	}
	return line, true
}

// rawLine returns the next line without its terminator and with a lone '\r'
// treated as a line break. It keeps at most maxLine+64 bytes of a line (the
// slack leaves room for escape sequences that clean removes) and reports
// whether it dropped the rest.
func (lr *lineReader) rawLine() (line []byte, cut, ok bool) {
	if lr.pending != nil {
		line, cut := lr.pending, lr.pendingCut
		lr.pending, lr.pendingCut = nil, false
		line = lr.splitCR(line)
		return line, cut && lr.pending == nil, true
	}
	limit := lr.maxLine + 64
	lr.buf = lr.buf[:0]
	total := 0
	for {
		frag, err := lr.r.ReadSlice('\n')
		total += len(frag)
		if room := limit - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, frag[:min(room, len(frag))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			lr.err = err
		}
		if err != nil && total == 0 {
			return nil, false, false
		}
		break
	}
	line = lr.buf
	if total > len(line) {
		cut = true
	} else {
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
	}
	line = lr.splitCR(line)
	if lr.pending != nil { // the cut belongs to the last segment
		lr.pendingCut, cut = cut, false
	}
	return line, cut, true
}

// splitCR returns the part of line before a lone '\r' and keeps the rest for
// the next call.
func (lr *lineReader) splitCR(line []byte) []byte {
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		if i+1 < len(line) {
			lr.pending = line[i+1:]
		}
		return line[:i]
	}
	return line
}

// clean strips escape sequences, makes line valid UTF-8 and cuts it to at
// most max bytes, reporting whether it cut. It works in place when it can.
func clean(line []byte, max int) ([]byte, bool) {
	if bytes.IndexByte(line, 0x1b) >= 0 {
		line = StripANSI(line)
	}
	if !utf8.Valid(line) {
		line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
	}
	if len(line) > max {
		n := max
		for n > 0 && !utf8.RuneStart(line[n]) {
			n--
		}
		return line[:n], true
	}
	return line, false
}

// StripANSI removes ECMA-48 escape sequences in place (it reuses line's
// memory and returns the shortened slice): CSI (ESC [ … final
// byte 0x40–0x7E), OSC/DCS/APC/PM/SOS strings (ESC ] … terminated by BEL or
// ESC \), and other escapes (ESC, intermediate bytes 0x20–0x2F, one final
// byte). A sequence cut off at the end of the line is dropped.
func StripANSI(line []byte) []byte {
	out := line[:0]
	for i := 0; i < len(line); {
		c := line[i]
		if c != 0x1b {
			out = append(out, c)
			i++
			continue
		}
		i++
		if i >= len(line) {
			break
		}
		switch line[i] {
		case '[':
			i++
			for i < len(line) && (line[i] < 0x40 || line[i] > 0x7e) {
				i++
			}
			i++ // the final byte
		case ']', 'P', '_', '^', 'X':
			i++
			for i < len(line) {
				if line[i] == 0x07 {
					i++
					break
				}
				if line[i] == 0x1b && i+1 < len(line) && line[i+1] == '\\' {
					i += 2
					break
				}
				i++
			}
		default:
			for i < len(line) && line[i] >= 0x20 && line[i] <= 0x2f {
				i++
			}
			i++ // the final byte
		}
	}
	return out
}
