package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/bench/lspclient"
	"github.com/opencode-lsp/opencode-lsp/bench/ssedirect"
)

// chatKey is the fake OpenRouter's only accepted key.
const chatKey = "sk-or-v1-lspbench-0123456789abcdef"

// chatReport is `lspbench chat`'s output (also written as JSON).
type chatReport struct {
	Date       string `json:"date"`
	GoVersion  string `json:"goVersion"`
	CPUs       int    `json:"cpus"`
	LoadBefore string `json:"loadAverageBefore"`
	LoadAfter  string `json:"loadAverageAfter"`
	Version    string `json:"version"`

	// Chunk latency: fake writes a chunk → the client has it.
	DirectMs summary `json:"directChunkMs"`
	LSPMs    summary `json:"chatDeltaMs"`
	AddedP50 float64 `json:"addedMedianMs"`
	AddedP90 float64 `json:"addedP90Ms"`

	// codeAction latency: idle, while 50 direct readers stream, while 50
	// chats stream through the server.
	Chats        int     `json:"concurrentChats"`
	IdleMs       summary `json:"codeActionIdleMs"`
	DirectLoadMs summary `json:"codeActionDirectLoadMs"`
	ChatLoadMs   summary `json:"codeActionChatLoadMs"`
	Deltas       int64   `json:"chatDeltasPerRound"`
	// ServerCPUPerChunkUs is the server process's CPU time during the chat
	// load rounds divided by the chatDelta notifications it sent (it also
	// answered the codeActions meanwhile).
	ServerCPUPerChunkUs float64 `json:"serverCPUPerChatDeltaUs"`
	// ServerCPUShare is that CPU time over the rounds' wall time (1 = one
	// core busy).
	ServerCPUShare float64 `json:"serverCPUShare"`
}

// runChat is `lspbench chat`: the chat path of the real opencode-lsp binary
// over stdio, against a fake OpenRouter inside this process (so the chunk's
// write time and its arrival as opencode/chatDelta are read from one clock),
// with a direct SSE reader of the same fake as the baseline.
func runChat(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lspbench chat", flag.ContinueOnError)
	bin := fs.String("opencode", "", "opencode-lsp binary (required)")
	chunks := fs.Int("chunks", 300, "stamped chunks per stream (one per millisecond)")
	rounds := fs.Int("rounds", 2, "latency rounds (each: one direct stream, one chat)")
	chats := fs.Int("chats", 50, "concurrent chats in the load test")
	loadRounds := fs.Int("load-rounds", 3, "load rounds")
	jsonOut := fs.String("json", "", "write the results as JSON to `file`")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on any one wait for the server")
	nice := fs.Int("server-nice", 0, "run the server under `nice -n N` (a diagnostic: a negative N, as root, shows how much of a p99 is waiting for a core)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" {
		return fmt.Errorf("-opencode is required")
	}
	path, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lspbench-chat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ws, err := makeWorkspace(filepath.Join(dir, "ws"))
	if err != nil {
		return err
	}
	fake := fakeopenrouter.Start(fakeopenrouter.Options{APIKey: chatKey})
	defer fake.Close()

	p := &profile{
		Name: "opencode-lsp", Argv: []string{path, "--log-level", "warn"}, VersionArgv: []string{path, "version"},
		Env: []string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "OPENROUTER_API_KEY=" + chatKey, "OPENROUTER_BASE_URL=" + fake.URL},
	}
	if *nice != 0 {
		p.Argv = append([]string{"nice", "-n", strconv.Itoa(*nice)}, p.Argv...)
	}
	rep := chatReport{Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadBefore: loadAvg(), Version: p.version(), Chats: *chats}

	var onDelta atomic.Pointer[func(string, time.Time)]
	notify := func(method string, params json.RawMessage, at time.Time) {
		if method != "opencode/chatDelta" {
			return
		}
		var d struct {
			Delta string `json:"delta"`
		}
		if json.Unmarshal(params, &d) == nil {
			if f := onDelta.Load(); f != nil {
				(*f)(d.Delta, at)
			}
		}
	}
	s, _, err := startServer(p, ws.Root, lspclient.Hooks{Notify: notify})
	if err != nil {
		return err
	}
	defer s.close(10 * time.Second)
	ctx := context.Background()
	wait := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, *timeout) }
	ictx, icancel := wait()
	params := initializeParams(p, ws)
	params["initializationOptions"] = map[string]any{"answers": "none", "openrouter": map[string]any{"model": "test/model"}}
	_, _, err = s.call(ictx, "initialize", params)
	icancel()
	if err != nil {
		return err
	}
	if err := s.Notify("initialized", map[string]any{}); err != nil {
		return err
	}
	bigURI := ws.uri(ws.BigPath)
	if err := s.Notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": bigURI, "languageId": "go", "version": 1, "text": ws.BigText,
	}}); err != nil {
		return err
	}
	chat := func() (string, error) {
		cctx, ccancel := wait()
		defer ccancel()
		var res struct {
			Text string `json:"text"`
		}
		sel := codeActionParams(ws, codeActionKinds[0])["range"]
		err := s.CallResult(cctx, "workspace/executeCommand", map[string]any{"command": "opencode.chat",
			"arguments": []any{map[string]any{"prompt": "Explain this", "uri": bigURI, "range": sel}}}, &res)
		return res.Text, err
	}
	codeAction := func() (time.Duration, error) {
		actx, acancel := wait()
		defer acancel()
		r, sent, err := s.call(actx, "textDocument/codeAction", codeActionParams(ws, codeActionKinds[0]))
		return r.At.Sub(sent), err
	}
	stamped := func() fakeopenrouter.Reply {
		n := *chunks
		return fakeopenrouter.Reply{ChunkDelay: time.Millisecond, Generate: func(i int) (string, bool) {
			if i >= n {
				return "", false
			}
			return ssedirect.Stamp(), true
		}}
	}
	client := &http.Client{}

	// Chunk latency, alternating the consumers.
	var direct, viaLSP []time.Duration
	var mu sync.Mutex
	collect := func(dst *[]time.Duration) func(string, time.Time) {
		return func(delta string, at time.Time) {
			if d, ok := ssedirect.Since(delta, at); ok {
				mu.Lock()
				*dst = append(*dst, d)
				mu.Unlock()
			}
		}
	}
	for i := 0; i < *rounds; i++ {
		fake.Enqueue(stamped())
		if err := ssedirect.Read(ctx, client, fake.URL, chatKey, "test/model", collect(&direct)); err != nil {
			return err
		}
		fake.Enqueue(stamped())
		f := collect(&viaLSP)
		onDelta.Store(&f)
		if _, err := chat(); err != nil {
			return err
		}
		onDelta.Store(nil)
	}
	mu.Lock()
	if len(direct) != *rounds**chunks || len(viaLSP) != *rounds**chunks {
		mu.Unlock()
		return fmt.Errorf("got %d direct and %d chatDelta chunks, want %d each", len(direct), len(viaLSP), *rounds**chunks)
	}
	rep.DirectMs, rep.LSPMs = summarize(direct), summarize(viaLSP)
	mu.Unlock()
	rep.AddedP50 = rep.LSPMs.Median - rep.DirectMs.Median
	rep.AddedP90 = rep.LSPMs.P90 - rep.DirectMs.P90
	fmt.Fprintf(stdout, "lspbench chat: latency done (load %s)\n", loadAvg())

	// Load: the same streams to direct readers, then through the server.
	const loadChunks = 100
	fake.SetHandler(func(fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
		words := make([]string, loadChunks)
		for i := range words {
			words[i] = fmt.Sprintf("word%d ", i)
		}
		return fakeopenrouter.Reply{Chunks: words, ChunkDelay: 10 * time.Millisecond}
	})
	var deltas atomic.Int64
	count := func(string, time.Time) { deltas.Add(1) }
	onDelta.Store(&count)
	during := func(work func() error) ([]time.Duration, error) {
		var wg sync.WaitGroup
		errs := make(chan error, *chats)
		for j := 0; j < *chats; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- work()
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		var out []time.Duration
		for {
			select {
			case <-done:
				close(errs)
				for err := range errs {
					if err != nil {
						return nil, err
					}
				}
				return out, nil
			default:
			}
			d, err := codeAction()
			if err != nil {
				return nil, err
			}
			out = append(out, d)
			time.Sleep(2 * time.Millisecond)
		}
	}
	var idle, directLoad, chatLoad []time.Duration
	var serverCPU, loadWall time.Duration
	for i := 0; i < *loadRounds; i++ {
		for j := 0; j < 200; j++ {
			d, err := codeAction()
			if err != nil {
				return err
			}
			idle = append(idle, d)
			time.Sleep(2 * time.Millisecond)
		}
		ds, err := during(func() error {
			return ssedirect.Read(ctx, client, fake.URL, chatKey, "test/model", func(string, time.Time) {})
		})
		if err != nil {
			return err
		}
		directLoad = append(directLoad, ds...)
		deltas.Store(0)
		cpu0, wall0 := cpuTime(s.cmd.Process.Pid), time.Now()
		ds, err = during(func() error {
			text, err := chat()
			if err == nil && !strings.HasPrefix(text, "word0 ") {
				err = fmt.Errorf("answer %q", text)
			}
			return err
		})
		if err != nil {
			return err
		}
		serverCPU += cpuTime(s.cmd.Process.Pid) - cpu0
		loadWall += time.Since(wall0)
		chatLoad = append(chatLoad, ds...)
		rep.Deltas = deltas.Load()
		if rep.Deltas != int64(*chats*loadChunks) {
			return fmt.Errorf("%d chatDelta notifications, want %d", rep.Deltas, *chats*loadChunks)
		}
		fmt.Fprintf(stdout, "lspbench chat: load round %d/%d done (load %s)\n", i+1, *loadRounds, loadAvg())
	}
	rep.IdleMs, rep.DirectLoadMs, rep.ChatLoadMs = summarize(idle), summarize(directLoad), summarize(chatLoad)
	rep.ServerCPUPerChunkUs = float64(serverCPU.Microseconds()) / float64(*loadRounds**chats*loadChunks)
	rep.ServerCPUShare = serverCPU.Seconds() / loadWall.Seconds()
	rep.LoadAfter = loadAvg()

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nlspbench chat %s — %s, Go %s, %d CPUs, load average %s → %s\n\n", rep.Date, rep.Version, rep.GoVersion, rep.CPUs, rep.LoadBefore, rep.LoadAfter)
	fmt.Fprintln(tw, "metric\tmedian\tp90\tp99\tn\tgoal")
	line := func(name string, s summary, goal string) {
		fmt.Fprintf(tw, "%s\t%.3f ms\t%.3f ms\t%.3f ms\t%d\t%s\n", name, s.Median, s.P90, s.P99, s.N, goal)
	}
	line("chunk → direct SSE reader", rep.DirectMs, "")
	line("chunk → opencode/chatDelta", rep.LSPMs, "")
	fmt.Fprintf(tw, "  added by the server\t%.3f ms\t%.3f ms\t\t\t≤ 1 ms median\n", rep.AddedP50, rep.AddedP90)
	line("codeAction, idle", rep.IdleMs, "")
	line(fmt.Sprintf("codeAction, %d direct readers", *chats), rep.DirectLoadMs, "")
	line(fmt.Sprintf("codeAction, %d chats", *chats), rep.ChatLoadMs, "p99 ≤ 5 ms")
	tw.Flush()
	fmt.Fprintf(stdout, "\nserver CPU during the chat load: %.0f µs per chatDelta, %.0f %% of one core\n", rep.ServerCPUPerChunkUs, 100*rep.ServerCPUShare)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lspbench chat: wrote %s\n", *jsonOut)
	}
	return nil
}
