package opencode

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// sseReader reads the data of server-sent events (the WHATWG framing:
// "data:" lines joined by "\n", dispatched at a blank line; comments and
// other fields ignored; LF, CRLF or CR line ends). OpenCode sends one
// "data: <json>" line per event.
type sseReader struct {
	r   *bufio.Reader
	max int // largest event kept, in bytes
}

// errEventTooLarge: an event over the size bound was skipped whole.
var errEventTooLarge = errors.New("event too large")

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the data of the next event. An event larger than max is
// read to its end and reported as errEventTooLarge (the stream stays
// usable). At the end of the stream it returns io.EOF or the read error.
func (s *sseReader) next() ([]byte, error) {
	var (
		data     []byte
		hasData  bool
		tooLarge bool
	)
	for {
		line, err := s.line(&tooLarge)
		if err != nil {
			if err == io.EOF && (hasData || tooLarge) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			if tooLarge {
				return nil, errEventTooLarge
			}
			if hasData {
				return data, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(field) != "data" || tooLarge {
			continue
		}
		if len(data)+len(value)+1 > s.max {
			tooLarge, data = true, nil
			continue
		}
		if hasData {
			data = append(data, '\n')
		}
		data = append(data, value...)
		hasData = true
	}
}

// line returns the next line without its end. A line longer than max is
// consumed and returned truncated, with *tooLarge set.
func (s *sseReader) line(tooLarge *bool) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(buf)+len(chunk) <= s.max+2 {
			buf = append(buf, chunk...)
		} else {
			*tooLarge = true
		}
		switch {
		case err == nil:
			return trimEOL(buf), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(buf) > 0:
			return trimEOL(buf), nil
		default:
			return nil, err
		}
	}
}

// trimEOL strips "\n", "\r\n" or a lone "\r" at the end. (A lone CR in the
// middle of a line is kept: OpenCode's JSON never has one raw.)
func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
