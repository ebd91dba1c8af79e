package position

import (
	"bytes"
	"fmt"
)

// Mapper indexes the lines of one text so that positions and byte offsets
// convert in O(log lines + line length). A Mapper is immutable and safe for
// concurrent use; it keeps a reference to the text, which must not change.
type Mapper struct {
	text []byte
	// starts[i] is the byte offset of line i; len(starts) is the number of
	// lines (a text ending in a line break has an empty last line).
	starts []int
}

// NewMapper indexes text.
func NewMapper(text []byte) *Mapper {
	starts := make([]int, 1, 1+bytes.Count(text, []byte{'\n'}))
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\n':
			starts = append(starts, i+1)
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			starts = append(starts, i+1)
		}
	}
	return &Mapper{text: text, starts: starts}
}

// Text returns the indexed text.
func (m *Mapper) Text() []byte { return m.text }

// LineCount is the number of lines; a text ending with a line break has an
// empty last line, as in LSP.
func (m *Mapper) LineCount() int { return len(m.starts) }

// lineBounds returns the byte range of line i without its line break.
func (m *Mapper) lineBounds(i int) (start, end int) {
	start = m.starts[i]
	if i+1 < len(m.starts) {
		end = m.starts[i+1]
		// Drop the line break: "\n", "\r\n" or "\r".
		if end > start && m.text[end-1] == '\n' {
			end--
		}
		if end > start && m.text[end-1] == '\r' {
			end--
		}
	} else {
		end = len(m.text)
	}
	return start, end
}

// Line returns the text of 0-based line i without its line break, or nil
// when i is out of range.
func (m *Mapper) Line(i int) []byte {
	if i < 0 || i >= len(m.starts) {
		return nil
	}
	s, e := m.lineBounds(i)
	return m.text[s:e:e]
}

// Position converts a byte offset into a 0-based line and a character
// counted in enc. An offset inside a "\r\n" pair or a multi-byte character
// maps to the character that contains it.
func (m *Mapper) Position(offset int, enc Encoding) (line, char int, err error) {
	if offset < 0 || offset > len(m.text) {
		return 0, 0, fmt.Errorf("offset %d out of range [0, %d]", offset, len(m.text))
	}
	// Binary search for the last line start <= offset.
	lo, hi := 0, len(m.starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if m.starts[mid] <= offset {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	s, e := m.lineBounds(lo)
	if offset > e {
		offset = e
	}
	return lo, Column(m.text[s:e], ByteOffset(m.text[s:e], offset-s, Bytes), enc.Unit()), nil
}

// Offset converts a 0-based line and character counted in enc into a byte
// offset. As LSP requires, a character past the end of the line means the end
// of the line; a line past the end of the text is an error.
func (m *Mapper) Offset(line, char int, enc Encoding) (int, error) {
	if line < 0 || char < 0 {
		return 0, fmt.Errorf("invalid position %d:%d", line, char)
	}
	if line >= len(m.starts) {
		return 0, fmt.Errorf("line %d out of range (text has %d lines)", line, len(m.starts))
	}
	s, e := m.lineBounds(line)
	return s + ByteOffset(m.text[s:e], char, enc.Unit()), nil
}

// Character converts a 0-based column counted in unit u on 0-based line into
// a character counted in enc, clamped to the line. A line out of range gives
// 0, so a position from a tool that saw a different text never panics.
func (m *Mapper) Character(line, col int, u Unit, enc Encoding) int {
	l := m.Line(line)
	if l == nil {
		return 0
	}
	return Convert(l, col, u, enc.Unit())
}
