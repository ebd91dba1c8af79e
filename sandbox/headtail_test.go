package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestHeadTailUnderLimit(t *testing.T) {
	var out, errOut bytes.Buffer
	h := NewHeadTail(100, &out, &errOut)
	fmt.Fprint(h.Stdout(), "hello\n")
	fmt.Fprint(h.Stderr(), "oops\n")
	if out.String() != "hello\n" || errOut.String() != "oops\n" {
		t.Fatalf("not streamed at once: %q %q", out.String(), errOut.String())
	}
	if d := h.Close(); d != 0 || out.String() != "hello\n" || errOut.String() != "oops\n" {
		t.Errorf("Close = %d, %q, %q", d, out.String(), errOut.String())
	}
}

func TestHeadTailExactlyAtLimit(t *testing.T) {
	var out bytes.Buffer
	h := NewHeadTail(10, &out, nil)
	h.Stdout().Write([]byte("0123456789"))
	if d := h.Close(); d != 0 || out.String() != "0123456789" {
		t.Errorf("Close = %d, %q", d, out.String())
	}
}

func TestHeadTailDrops(t *testing.T) {
	var out bytes.Buffer
	h := NewHeadTail(10, &out, nil)
	w := h.Stdout()
	for i := 0; i < 10; i++ {
		fmt.Fprintf(w, "%d", i)
	}
	if out.String() != "01234" {
		t.Fatalf("head = %q; want the first half streamed", out.String())
	}
	w.Write([]byte("abcdefghij"))
	if d := h.Close(); d != 10 {
		t.Errorf("dropped %d; want 10", d)
	}
	want := "01234\n[... 10 bytes of output dropped ...]\nfghij"
	if out.String() != want {
		t.Errorf("got %q; want %q", out.String(), want)
	}
	// Idempotent, and later writes are counted, not delivered.
	h.Stdout().Write([]byte("late"))
	if d := h.Close(); d != 14 || out.String() != want {
		t.Errorf("second Close = %d, %q", d, out.String())
	}
}

func TestHeadTailMarkerAfterNewline(t *testing.T) {
	var out bytes.Buffer
	h := NewHeadTail(8, &out, nil)
	h.Stdout().Write([]byte("abc\n"))
	h.Stdout().Write([]byte("0123456789"))
	h.Close()
	want := "abc\n[... 6 bytes of output dropped ...]\n6789"
	if out.String() != want {
		t.Errorf("got %q; want %q", out.String(), want)
	}
}

func TestHeadTailTwoStreams(t *testing.T) {
	var out, errOut bytes.Buffer
	h := NewHeadTail(20, &out, &errOut)
	o, e := h.Stdout(), h.Stderr()
	o.Write([]byte("o1o1o1o1o1")) // head
	e.Write([]byte("E1E1E1"))     // tail
	o.Write([]byte("o2o2o2o2"))   // pushes out E1E1: the marker goes to stderr
	e.Write([]byte("e3e3"))       // pushes out E1o2
	o.Write([]byte("o4o4"))       // pushes out o2o2
	if d := h.Close(); d != 12 {
		t.Errorf("dropped %d; want 12", d)
	}
	if out.String() != "o1o1o1o1o1o2o4o4" {
		t.Errorf("stdout = %q", out.String())
	}
	if errOut.String() != "[... 12 bytes of output dropped ...]\ne3e3" {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestHeadTailSameWriter(t *testing.T) {
	var both bytes.Buffer
	h := NewHeadTail(400, &both, &both)
	for i := 0; i < 100; i++ {
		fmt.Fprintf(h.Stdout(), "o%d\n", i)
		fmt.Fprintf(h.Stderr(), "e%d\n", i)
	}
	d := h.Close()
	s := both.String()
	if d == 0 || !strings.HasPrefix(s, "o0\ne0\no1\n") || !strings.HasSuffix(s, "o99\ne99\n") {
		t.Errorf("dropped %d, output %q", d, s)
	}
	if int64(len(s)) != 400+int64(len(fmt.Sprintf("[... %d bytes of output dropped ...]\n", d))) {
		t.Errorf("delivered %d bytes", len(s))
	}
}

func TestHeadTailNilWriterNotCounted(t *testing.T) {
	var out bytes.Buffer
	h := NewHeadTail(10, &out, nil)
	h.Stderr().Write(bytes.Repeat([]byte("x"), 1000))
	h.Stdout().Write([]byte("0123456789"))
	if d := h.Close(); d != 0 || out.String() != "0123456789" {
		t.Errorf("Close = %d, %q", d, out.String())
	}
}

func TestHeadTailUnlimited(t *testing.T) {
	var out bytes.Buffer
	h := NewHeadTail(0, &out, nil)
	big := bytes.Repeat([]byte("y"), 1<<20)
	h.Stdout().Write(big)
	if d := h.Close(); d != 0 || out.Len() != len(big) {
		t.Errorf("Close = %d, %d bytes", d, out.Len())
	}
}

// TestHeadTailRing writes in odd sizes through every growth and wrap of the
// ring and compares with the expected tail.
func TestHeadTailRing(t *testing.T) {
	for _, limit := range []int64{2, 3, 1000, 200_000, 1 << 20} {
		var out bytes.Buffer
		var all bytes.Buffer
		h := NewHeadTail(limit, &out, nil)
		n := 0
		for i := 0; all.Len() < int(limit)*3+12345; i++ {
			chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i*7919)%5000)
			for j := range chunk {
				chunk[j] += byte(j % 3)
			}
			all.Write(chunk)
			h.Stdout().Write(chunk)
			n++
		}
		d := h.Close()
		head := limit - limit/2
		tail := limit / 2
		marker := fmt.Sprintf("[... %d bytes of output dropped ...]\n", d)
		if d != int64(all.Len())-limit {
			t.Errorf("limit %d: dropped %d; want %d", limit, d, int64(all.Len())-limit)
		}
		want := string(all.Bytes()[:head])
		if want[len(want)-1] != '\n' {
			want += "\n"
		}
		want += marker + string(all.Bytes()[all.Len()-int(tail):])
		if out.String() != want {
			t.Errorf("limit %d: output differs (got %d bytes, want %d)", limit, out.Len(), len(want))
		}
	}
}

// TestHeadTailManySegments interleaves one-byte writes on both streams far
// beyond the segment bound; memory stays bounded and the accounting exact.
func TestHeadTailManySegments(t *testing.T) {
	var out, errOut bytes.Buffer
	const limit = 1 << 20
	h := NewHeadTail(limit, &out, &errOut)
	total := 0
	for i := 0; i < 3*limit; i++ {
		if i%2 == 0 {
			h.Stdout().Write([]byte{'o'})
		} else {
			h.Stderr().Write([]byte{'e'})
		}
		total++
	}
	if len(h.segs)-h.seg0 > maxSegments {
		t.Errorf("%d segments held; bound %d", len(h.segs)-h.seg0, maxSegments)
	}
	d := h.Close()
	marker := fmt.Sprintf("\n[... %d bytes of output dropped ...]\n", d)
	if got := int64(out.Len() + errOut.Len()); got+d != int64(total+len(marker)) {
		t.Errorf("delivered %d + dropped %d != %d + marker", got, d, total)
	}
	if out.Len()+errOut.Len() > limit+len(marker) {
		t.Errorf("delivered %d bytes over the limit", out.Len()+errOut.Len())
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("broken pipe")
}

func TestHeadTailWriterError(t *testing.T) {
	f := &failWriter{}
	var errOut bytes.Buffer
	h := NewHeadTail(100, f, &errOut)
	h.Stdout().Write([]byte("a"))
	h.Stdout().Write([]byte("b"))
	h.Stderr().Write([]byte("still here"))
	h.Close()
	if f.n != 1 || h.Err() == nil || errOut.String() != "still here" {
		t.Errorf("writer called %d times, Err %v, stderr %q", f.n, h.Err(), errOut.String())
	}
}

func BenchmarkHeadTail(b *testing.B) {
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB, a pipe read
	b.SetBytes(int64(len(chunk)))
	h := NewHeadTail(benchLimit, discard{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		h.Stdout().Write(chunk)
	}
	h.Close()
}

// benchLimit is the providers' default limit (16 MiB).
const benchLimit = 16 << 20

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
