package openrouter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
)

// BenchmarkChunkLatency measures the time from the fake server writing a
// chunk to the consumer receiving its text, for the Client (openai-go's
// decoder plus our observer, accumulator and callback) and, in the same
// run against the same fake, for a direct consumer (a bare HTTP request
// with a line reader and a JSON decode per chunk). Each chunk carries its
// write time; chunks are paced so each one is measured on its own. It
// reports the medians and the client's added median (goal: ≤ 1 ms).
func BenchmarkChunkLatency(b *testing.B) {
	srv := fakeopenrouter.New(b, fakeopenrouter.Options{APIKey: testKey})
	n := max(b.N, 200)
	reply := fakeopenrouter.Reply{
		ChunkDelay: 200 * time.Microsecond,
		Generate: func(i int) (string, bool) {
			if i >= n {
				return "", false
			}
			return strconv.FormatInt(time.Now().UnixNano(), 10), true
		},
	}
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Model: "openai/gpt-4o-mini"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	// Alternate rounds so drift in machine load hits both consumers alike.
	var direct, client []time.Duration
	for round := 0; round < 2; round++ {
		srv.Enqueue(reply)
		direct = append(direct, directLatencies(b, srv)...)
		srv.Enqueue(reply)
		client = append(client, clientLatencies(b, c)...)
	}
	b.StopTimer()
	if len(direct) != 2*n || len(client) != 2*n {
		b.Fatalf("got %d direct and %d client chunks, want %d each", len(direct), len(client), 2*n)
	}
	d50, c50 := median(direct), median(client)
	b.ReportMetric(float64(d50.Nanoseconds())/1e3, "direct-p50-µs")
	b.ReportMetric(float64(c50.Nanoseconds())/1e3, "client-p50-µs")
	b.ReportMetric(float64((c50-d50).Nanoseconds())/1e3, "added-p50-µs")
	b.ReportMetric(float64(pct(client, 90).Nanoseconds())/1e3, "client-p90-µs")
}

func stampLatency(text string, now time.Time) (time.Duration, bool) {
	ns, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, false
	}
	return now.Sub(time.Unix(0, ns)), true
}

func clientLatencies(b *testing.B, c *Client) []time.Duration {
	var out []time.Duration
	_, err := c.Stream(context.Background(), hello, func(e Event) {
		if e.Kind == EventDelta {
			if d, ok := stampLatency(e.Delta, time.Now()); ok {
				out = append(out, d)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func directLatencies(b *testing.B, srv *fakeopenrouter.Server) []time.Duration {
	body := []byte(`{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var out []time.Duration
	r := bufio.NewReaderSize(res.Body, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 6 && string(line[:6]) == "data: " && line[6] == '{' {
			now := time.Now()
			var ch struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if json.Unmarshal(line[6:], &ch) == nil && len(ch.Choices) > 0 {
				if d, ok := stampLatency(ch.Choices[0].Delta.Content, now); ok {
					out = append(out, d)
				}
			}
		}
		if err != nil {
			return out
		}
	}
}

func median(ds []time.Duration) time.Duration { return pct(ds, 50) }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
