package position

import (
	"testing"
)

// The line every encoding test uses: "é" is 2 bytes / 1 UTF-16 unit / 1 code
// point / 1 cell, "😀" is 4 bytes / 2 UTF-16 units / 1 code point / 2 cells.
const mixed = "x := \"é😀\" + y"

func TestColumnUnits(t *testing.T) {
	line := []byte(mixed)
	// Byte offset of "+" in each unit.
	plus := len("x := \"é😀\" ")
	want := map[Unit]int{Bytes: plus, UTF16Units: 11, CodePoints: 10, DisplayColumns: 11}
	for u, col := range want {
		if got := Column(line, plus, u); got != col {
			t.Errorf("Column(+, %v) = %d, want %d", u, got, col)
		}
		if got := ByteOffset(line, col, u); got != plus {
			t.Errorf("ByteOffset(%d, %v) = %d, want %d", col, u, got, plus)
		}
	}
	// Go reports the '+' at byte column 15 (1-based 16); LSP utf-16 wants 11.
	if got := Convert(line, plus, Bytes, UTF16Units); got != 11 {
		t.Errorf("bytes->utf16 = %d, want 11", got)
	}
	if got := Convert(line, 10, CodePoints, Bytes); got != plus {
		t.Errorf("codepoints->bytes = %d, want %d", got, plus)
	}
}

func TestInsideCharacterSnapsToStart(t *testing.T) {
	line := []byte("a😀b")
	// UTF-16 column 2 is the low surrogate of 😀: snap to its start (byte 1).
	if got := ByteOffset(line, 2, UTF16Units); got != 1 {
		t.Errorf("utf16 col 2 -> byte %d, want 1", got)
	}
	// Byte 3 is inside the emoji.
	if got := ByteOffset(line, 3, Bytes); got != 1 {
		t.Errorf("byte col 3 -> %d, want 1", got)
	}
	// Past the end clamps.
	if got := ByteOffset(line, 99, UTF16Units); got != len(line) {
		t.Errorf("past end -> %d, want %d", got, len(line))
	}
}

func TestDisplayColumnsTabs(t *testing.T) {
	// gcc: "\tint x = y;" — 'x' is display column 12 (0-based), byte 5.
	line := []byte("\tint x = y;")
	if got := Column(line, 5, DisplayColumns); got != 12 {
		t.Errorf("display column of x = %d, want 12", got)
	}
	if got := ByteOffset(line, 12, DisplayColumns); got != 5 {
		t.Errorf("byte of display 12 = %d, want 5", got)
	}
	// A column inside the tab's cells maps to the tab itself.
	if got := ByteOffset(line, 3, DisplayColumns); got != 0 {
		t.Errorf("display 3 -> byte %d, want 0", got)
	}
	// "ab\tc": the tab starts at 2 and advances to 8.
	if got := Column([]byte("ab\tc"), 3, DisplayColumns); got != 8 {
		t.Errorf("after tab = %d, want 8", got)
	}
	// Wide characters take two cells.
	if got := Column([]byte("😀x"), 4, DisplayColumns); got != 2 {
		t.Errorf("after emoji = %d, want 2", got)
	}
}

func TestInvalidUTF8CountsAsOneCharacter(t *testing.T) {
	line := []byte("a\xffb")
	for _, u := range []Unit{UTF16Units, CodePoints, DisplayColumns} {
		if got := Column(line, 2, u); got != 2 {
			t.Errorf("%v: column of b = %d, want 2", u, got)
		}
	}
}

func TestMapperLineBreaks(t *testing.T) {
	// "\n", "\r\n", lone "\r" end lines; U+2028 does not.
	text := []byte("a\nb\r\nc\rd\u2028e\n")
	m := NewMapper(text)
	wantLines := []string{"a", "b", "c", "d\u2028e", ""}
	if m.LineCount() != len(wantLines) {
		t.Fatalf("LineCount = %d, want %d", m.LineCount(), len(wantLines))
	}
	for i, w := range wantLines {
		if got := string(m.Line(i)); got != w {
			t.Errorf("Line(%d) = %q, want %q", i, got, w)
		}
	}
	if m.Line(5) != nil || m.Line(-1) != nil {
		t.Error("out-of-range Line should be nil")
	}
}

func TestMapperRoundTrip(t *testing.T) {
	text := []byte("package main\r\n\r\nvar s = \"é😀\" + 1\r\n")
	m := NewMapper(text)
	off := len("package main\r\n\r\nvar s = \"é😀\" ")
	for enc, char := range map[Encoding]int{UTF8: 17, UTF16: 14, UTF32: 13} {
		line, c, err := m.Position(off, enc)
		if err != nil || line != 2 || c != char {
			t.Errorf("%s: Position = %d:%d (%v), want 2:%d", enc, line, c, err, char)
		}
		back, err := m.Offset(2, char, enc)
		if err != nil || back != off {
			t.Errorf("%s: Offset(2:%d) = %d (%v), want %d", enc, char, back, err, off)
		}
	}
	// Inside "\r\n" maps to the end of the line.
	crlf := len("package main\r")
	if line, c, _ := m.Position(crlf, UTF16); line != 0 || c != 12 {
		t.Errorf("offset inside CRLF = %d:%d, want 0:12", line, c)
	}
	// Past the end of a line clamps; past the last line errors.
	if o, err := m.Offset(0, 99, UTF16); err != nil || o != 12 {
		t.Errorf("Offset(0:99) = %d, %v; want 12", o, err)
	}
	if _, err := m.Offset(9, 0, UTF16); err == nil {
		t.Error("Offset past last line should fail")
	}
	if _, _, err := m.Position(len(text)+1, UTF16); err == nil {
		t.Error("Position past end should fail")
	}
	if got := m.Character(2, 19, Bytes, UTF16); got != 16 {
		t.Errorf("Character(bytes 19) = %d, want 16", got)
	}
	if got := m.Character(42, 3, Bytes, UTF16); got != 0 {
		t.Errorf("Character on missing line = %d, want 0", got)
	}
}

func FuzzMapper(f *testing.F) {
	f.Add([]byte("a\r\nb\rc\n\xff😀é\t"), 3, 2)
	f.Fuzz(func(t *testing.T, text []byte, line, char int) {
		m := NewMapper(text)
		for _, enc := range []Encoding{UTF8, UTF16, UTF32} {
			off, err := m.Offset(line, char, enc)
			if err != nil {
				continue
			}
			l2, c2, err := m.Position(off, enc)
			if err != nil || l2 != line {
				t.Fatalf("%s: Offset(%d,%d)=%d -> Position=%d,%d,%v", enc, line, char, off, l2, c2, err)
			}
			if off2, _ := m.Offset(l2, c2, enc); off2 != off {
				t.Fatalf("%s: not stable: %d vs %d", enc, off, off2)
			}
		}
	})
}
