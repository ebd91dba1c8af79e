// Package position converts between the ways text positions are counted: LSP
// positions (0-based line and character in the negotiated encoding: UTF-8
// bytes, UTF-16 code units or UTF-32 code points) and the columns tools print
// (UTF-8 bytes for Go, UTF-16 code units for tsc and ESLint, code points for
// rustc, tab-expanded display columns for gcc).
//
// Lines are split exactly as the LSP specification defines them: "\n",
// "\r\n" and a lone "\r" end a line; U+2028 and U+2029 do not. Invalid UTF-8
// bytes count as one code point (U+FFFD) each, as editors decode them.
package position

import (
	"fmt"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
)

// Encoding is an LSP position encoding (PositionEncodingKind, LSP 3.17).
type Encoding string

// The position encodings LSP 3.17 defines.
const (
	UTF8  Encoding = "utf-8"
	UTF16 Encoding = "utf-16"
	UTF32 Encoding = "utf-32"
)

// Valid reports whether e is one of the three encodings LSP defines.
func (e Encoding) Valid() bool { return e == UTF8 || e == UTF16 || e == UTF32 }

// Unit is how a tool counts columns within a line.
type Unit int

// Column units printed by tools.
const (
	// Bytes counts UTF-8 bytes (go, gcc with -fdiagnostics-column-unit=byte).
	Bytes Unit = iota
	// UTF16Units counts UTF-16 code units (tsc, ESLint).
	UTF16Units
	// CodePoints counts Unicode code points (rustc, Python).
	CodePoints
	// DisplayColumns counts terminal cells: a tab advances to the next
	// multiple of TabStop, wide characters take two cells (gcc 12 default).
	DisplayColumns
)

// TabStop is the tab width of DisplayColumns, gcc's default -ftabstop.
const TabStop = 8

func (u Unit) String() string {
	switch u {
	case Bytes:
		return "bytes"
	case UTF16Units:
		return "utf-16"
	case CodePoints:
		return "code points"
	case DisplayColumns:
		return "display columns"
	}
	return fmt.Sprintf("Unit(%d)", int(u))
}

// Unit returns the column unit an encoding counts in.
func (e Encoding) Unit() Unit {
	switch e {
	case UTF8:
		return Bytes
	case UTF32:
		return CodePoints
	}
	return UTF16Units
}

// ByteOffset returns the byte offset within line of the 0-based column col
// counted in unit u. A column past the end of the line maps to len(line); a
// column inside a character (the second UTF-16 unit of a surrogate pair, a
// cell inside a tab or wide character) maps to the start of that character.
func ByteOffset(line []byte, col int, u Unit) int {
	if col <= 0 {
		return 0
	}
	if u == Bytes {
		if col >= len(line) {
			return len(line)
		}
		// Snap to the start of the character containing col, decoding as
		// DecodeRune does (an invalid byte is a character of its own). A
		// character is at most utf8.UTFMax bytes long.
		for start := max(0, col-utf8.UTFMax+1); start < col; start++ {
			if _, size := utf8.DecodeRune(line[start:]); start+size > col {
				return start
			}
		}
		return col
	}
	n := 0 // columns counted so far
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		w := width(r, size, n, u)
		if n+w > col {
			return i
		}
		n += w
		i += size
		if n == col {
			return i
		}
	}
	return len(line)
}

// Column returns the 0-based column, counted in unit u, of byte offset off
// within line. An offset past the end counts the whole line.
func Column(line []byte, off int, u Unit) int {
	if off > len(line) {
		off = len(line)
	}
	if off <= 0 {
		return 0
	}
	if u == Bytes {
		return off
	}
	n := 0
	for i := 0; i < off; {
		r, size := utf8.DecodeRune(line[i:])
		n += width(r, size, n, u)
		i += size
	}
	return n
}

// Convert converts a 0-based column counted in unit from into unit to, using
// the text of the line the column refers to.
// The result is clamped to the line's length.
func Convert(line []byte, col int, from, to Unit) int {
	return Column(line, ByteOffset(line, col, from), to)
}

// width is how many columns of unit u the rune r (encoded in size bytes,
// starting at column n) takes.
func width(r rune, size int, n int, u Unit) int {
	switch u {
	case UTF16Units:
		if r == utf8.RuneError && size == 1 {
			return 1
		}
		if r >= 0x10000 {
			return 2
		}
		return 1
	case CodePoints:
		return 1
	case DisplayColumns:
		if r == '\t' {
			return TabStop - n%TabStop
		}
		if r == utf8.RuneError && size == 1 {
			return 1
		}
		w := runewidth.RuneWidth(r)
		if w == 0 && r >= 0x20 {
			// Combining marks and other zero-width runes take no cell of
			// their own; control characters are shown as one cell.
			return 0
		}
		if w == 0 {
			return 1
		}
		return w
	}
	return size
}
