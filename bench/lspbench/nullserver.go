package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/opencode-lsp/opencode-lsp/bench/lspclient"
)

// serveNull is the floor the servers are compared with: a language server
// that does nothing (`lspbench nullserver`). It answers initialize with a
// codeActionProvider, every other request with an empty result, and exits
// on exit; the time a real server takes beyond it is the server's own work
// rather than process start, pipes and the client.
func serveNull(in io.Reader, out io.Writer) int {
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	for {
		length := -1
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return 1
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if length < 0 {
			return 1
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return 1
		}
		var m lspclient.Message
		if json.Unmarshal(body, &m) != nil {
			continue
		}
		if m.Method == "exit" {
			return 0
		}
		if len(m.ID) == 0 || m.Method == "" {
			continue
		}
		result := "[]"
		switch m.Method {
		case "initialize":
			result = `{"capabilities":{"textDocumentSync":1,"codeActionProvider":true},"serverInfo":{"name":"lspbench-null"}}`
		case "shutdown":
			result = "null"
		}
		reply := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, m.ID, result)
		fmt.Fprintf(w, "Content-Length: %d\r\n\r\n%s", len(reply), reply)
		if err := w.Flush(); err != nil {
			return 1
		}
	}
}
