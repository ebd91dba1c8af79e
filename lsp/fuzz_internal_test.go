package lsp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

type rwc struct {
	io.Reader
	out bytes.Buffer
}

func (r *rwc) Write(p []byte) (int, error) {
	if r.out.Len() < 1<<20 {
		r.out.Write(p)
	}
	return len(p), nil
}
func (r *rwc) Close() error { return nil }

// FuzzFraming feeds arbitrary bytes to the LSP framing: Read must never
// panic, never buffer more than the size limit, and always make progress
// (end with an error at EOF).
func FuzzFraming(f *testing.F) {
	for _, seed := range []string{
		"Content-Length: 2\r\n\r\n{}",
		"Content-Length: 36\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}xxx",
		"Content-Length: -1\r\n\r\n",
		"Content-Length: 99999999999999999999\r\n\r\n",
		"Content-Type: x\r\nContent-Length: 5\r\n\r\n[1,2]",
		"garbage without headers\n\n",
		"Content-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"a\"}",
		"Content-Length: 30\r\n\r\n{\"jsonrpc\":\"1.0\",\"id\":\"s\",\"method\":\"a\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := &rwc{Reader: bytes.NewReader(data)}
		s := newStream(conn, 4096, nil)
		for i := 0; i < 10000; i++ {
			_, _, err := s.Read(context.Background())
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && len(data) < 100 && !bytes.Contains([]byte(err.Error()), []byte("malformed")) {
					// Any error is fine as long as Read returned.
				}
				return
			}
		}
		t.Fatalf("Read did not reach the end of %d bytes", len(data))
	})
}
