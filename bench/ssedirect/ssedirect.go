// Package ssedirect is the baseline the chat benchmarks compare against: a
// direct consumer of an OpenAI-compatible chat-completions stream (one HTTP
// request, the SSE lines read as they arrive, a JSON decode per chunk), and
// the timestamps the benchmarks put in chunks to time them from the moment
// the server wrote them.
package ssedirect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Stamp is a chunk text carrying the current wall-clock time (nanoseconds
// since the Unix epoch); a fake server's generator returns it right before
// writing the chunk.
func Stamp() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }

// Since returns at minus the time in a [Stamp]; false when text is not one.
func Since(text string, at time.Time) (time.Duration, bool) {
	ns, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, false
	}
	return at.Sub(time.Unix(0, ns)), true
}

// Read sends one streaming chat request to baseURL + "/chat/completions"
// (bearer key, the given model, one user message) and calls onDelta with
// the content of every chunk and the instant it was decoded. It returns
// when the stream ends.
func Read(ctx context.Context, client *http.Client, baseURL, key, model string, onDelta func(delta string, at time.Time)) error {
	body, _ := json.Marshal(map[string]any{
		"model": model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "Explain"}},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("chat completions: HTTP %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok || len(data) == 0 || data[0] != '{' {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal(data, &ch) != nil || len(ch.Choices) == 0 {
			continue
		}
		onDelta(ch.Choices[0].Delta.Content, time.Now())
	}
	return sc.Err()
}
