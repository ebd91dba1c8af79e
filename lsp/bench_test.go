package lsp_test

// Benchmarks of the chat and generate paths, each against a baseline
// measured in the same run. They run only with -bench (never in plain
// go test), and report medians and percentiles as custom metrics:
//
//	go test ./lsp -run '^$' -bench . -benchtime 1x   # one round each
//	go test ./lsp -run '^$' -bench ChatDelta          # the delta latency alone
//
// bench/run.sh runs them and bench/README.md keeps the figures.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/agent/changeset"
	"github.com/opencode-lsp/opencode-lsp/agent/opencode"
	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
	"github.com/opencode-lsp/opencode-lsp/bench/lspclient"
	"github.com/opencode-lsp/opencode-lsp/bench/ssedirect"
	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/command"
	"github.com/opencode-lsp/opencode-lsp/lsp/lsptest"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

const benchKey = "sk-or-v1-bench-key-0123456789abcdef"

var (
	benchServersMu sync.Mutex
	benchServers   = map[string]*lsp.Server{}
)

func init() {
	// bench.server "name": hands the *lsp.Server behind a connection to the
	// benchmark (for the generate path's test export).
	lsp.RegisterTestCommand("bench.server", func(ctx context.Context, s *lsp.Server, arg json.RawMessage) (any, error) {
		var name string
		_ = json.Unmarshal(arg, &name)
		benchServersMu.Lock()
		benchServers[name] = s
		benchServersMu.Unlock()
		return nil, nil
	})
}

// benchClient is an editor connected to an in-process server over the real
// wire codec (Content-Length framing on a pipe), with the benchmarks' lean
// client (bench/lspclient), so that the editor's own garbage stays small:
// it shares the process with the server here, which a real editor does not.
// Every opencode/chatDelta is stamped with its arrival time.
type benchClient struct {
	conn    *lspclient.Conn
	root    string
	onDelta atomic.Pointer[func(delta string, at time.Time)]
}

// newBenchClient starts a server on the workspace root ("" = a new temp
// dir) with fake (if any) as its OpenRouter, and initializes it like a
// full-featured editor whose plugin renders chat answers itself
// (answers: "none"). applyEdit answers workspace/applyEdit (nil refuses).
func newBenchClient(b *testing.B, fake *fakeopenrouter.Server, root string, applyEdit func(json.RawMessage, time.Time) any) *benchClient {
	b.Helper()
	env := map[string]string{"OPENROUTER_API_KEY": benchKey}
	if fake != nil {
		env["OPENROUTER_BASE_URL"] = fake.URL
	}
	opts := lsp.Options{Getenv: func(k string) string { return env[k] }}
	if root == "" {
		root = b.TempDir()
	}
	cli, srv := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		_, _ = lsp.Serve(ctx, srv, opts)
		close(exited)
	}()
	c := &benchClient{root: root}
	c.conn = lspclient.New("opencode-lsp", cli, cli, lspclient.Hooks{Notify: c.notified, ApplyEdit: applyEdit})
	b.Cleanup(func() {
		cancel()
		cli.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			b.Errorf("server did not stop")
		}
	})
	rootURI := (&url.URL{Scheme: "file", Path: c.root}).String()
	params := map[string]any{
		"processId": nil, "rootUri": rootURI,
		"workspaceFolders":      []map[string]any{{"uri": rootURI, "name": "ws"}},
		"capabilities":          lsptest.FullCapabilities(),
		"initializationOptions": map[string]any{"answers": "none", "openrouter": map[string]any{"model": "test/model"}},
	}
	if err := c.conn.CallResult(ctx, "initialize", params, nil); err != nil {
		b.Fatal(err)
	}
	if err := c.conn.Notify("initialized", map[string]any{}); err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *benchClient) notified(method string, params json.RawMessage, at time.Time) {
	if method != protocolx.MethodChatDelta {
		return
	}
	var p protocolx.ChatDeltaParams
	if json.Unmarshal(params, &p) == nil {
		if f := c.onDelta.Load(); f != nil {
			(*f)(p.Delta, at)
		}
	}
}

func (c *benchClient) uri(rel string) string {
	return (&url.URL{Scheme: "file", Path: filepath.Join(c.root, rel)}).String()
}

func (c *benchClient) open(b *testing.B, rel, text string) string {
	b.Helper()
	uri := c.uri(rel)
	if err := c.conn.Notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": "go", "version": 1, "text": text,
	}}); err != nil {
		b.Fatal(err)
	}
	return uri
}

func (c *benchClient) chat(ctx context.Context, args command.ChatArgs) (command.ChatResult, error) {
	var res command.ChatResult
	err := c.conn.CallResult(ctx, "workspace/executeCommand", map[string]any{"command": command.Chat, "arguments": []any{args}}, &res)
	return res, err
}

// codeAction times one textDocument/codeAction round trip.
func (c *benchClient) codeAction(b *testing.B, uri string, line uint32) time.Duration {
	params := map[string]any{
		"textDocument": map[string]any{"uri": uri},
		"range":        map[string]any{"start": map[string]any{"line": line, "character": 1}, "end": map[string]any{"line": line, "character": 10}},
		"context":      map[string]any{"diagnostics": []any{}, "triggerKind": 1},
	}
	r, sent, err := c.conn.Call(context.Background(), "textDocument/codeAction", params)
	if err != nil {
		b.Fatal(err)
	}
	d := r.At.Sub(sent)
	var out []json.RawMessage
	if err := json.Unmarshal(r.Result, &out); err != nil || len(out) < 4 {
		b.Fatalf("codeAction: %d actions, want the 4 OpenCode ones", len(out))
	}
	return d
}

// benchStampedReply streams n chunks, one every pace, each carrying its
// own write time (the fake calls Generate right before writing a chunk).
func benchStampedReply(n int, pace time.Duration) fakeopenrouter.Reply {
	return fakeopenrouter.Reply{ChunkDelay: pace, Generate: func(i int) (string, bool) {
		if i >= n {
			return "", false
		}
		return ssedirect.Stamp(), true
	}}
}

// benchDirectLatencies reads one streamed answer straight from the fake:
// the baseline any consumer pays.
func benchDirectLatencies(b *testing.B, fake *fakeopenrouter.Server) []time.Duration {
	var out []time.Duration
	err := ssedirect.Read(context.Background(), http.DefaultClient, fake.URL, benchKey, "test/model", func(delta string, at time.Time) {
		if d, ok := ssedirect.Since(delta, at); ok {
			out = append(out, d)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// lspLatencies asks one question through opencode.chat and times every
// opencode/chatDelta from the fake writing its chunk to the client having
// decoded the notification.
func (c *benchClient) lspLatencies(b *testing.B, uri string) []time.Duration {
	var (
		mu  sync.Mutex
		out []time.Duration
	)
	f := func(delta string, at time.Time) {
		if d, ok := ssedirect.Since(delta, at); ok {
			mu.Lock()
			out = append(out, d)
			mu.Unlock()
		}
	}
	c.onDelta.Store(&f)
	defer c.onDelta.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.chat(ctx, command.ChatArgs{Prompt: "Explain", URI: protocol.DocumentURI(uri)}); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(out)
}

// BenchmarkChatDeltaLatency: the time from the fake OpenRouter writing a
// chunk to the editor receiving its opencode/chatDelta (openai-go's
// decoder, the chat run, the notification over the wire codec), against a
// direct SSE reader of the same fake in the same run. b.N chunks per
// stream, one every millisecond so that each is measured on its own; the
// two consumers alternate so that drift in machine load hits both alike.
// Goal: added-p50 ≤ 1 ms.
func BenchmarkChatDeltaLatency(b *testing.B) {
	fake := fakeopenrouter.New(b, fakeopenrouter.Options{APIKey: benchKey})
	c := newBenchClient(b, fake, "", nil)
	uri := c.open(b, "calc.go", "package calc\n\n// Add adds.\nfunc Add(a, b int) int { return a + b }\n")
	n := max(b.N, 2)
	var direct, viaLSP []time.Duration
	b.ResetTimer()
	for round := 0; round < 2; round++ {
		fake.Enqueue(benchStampedReply(n, time.Millisecond))
		direct = append(direct, benchDirectLatencies(b, fake)...)
		fake.Enqueue(benchStampedReply(n, time.Millisecond))
		viaLSP = append(viaLSP, c.lspLatencies(b, uri)...)
	}
	b.StopTimer()
	if len(direct) != 2*n || len(viaLSP) != 2*n {
		b.Fatalf("got %d direct and %d LSP chunks, want %d each", len(direct), len(viaLSP), 2*n)
	}
	d50, l50 := benchPct(direct, 50), benchPct(viaLSP, 50)
	b.ReportMetric(benchUs(d50), "direct-p50-µs")
	b.ReportMetric(benchUs(l50), "lsp-p50-µs")
	b.ReportMetric(benchUs(l50-d50), "added-p50-µs")
	b.ReportMetric(benchUs(benchPct(viaLSP, 90)-benchPct(direct, 90)), "added-p90-µs")
}

// BenchmarkChat50CodeAction: 50 concurrent chats on one server (each a
// ~1 s stream of 100 chunks), and the latency of codeActions sent one
// after another meanwhile. Two baselines from the same run: codeActions on
// the idle server, and codeActions while the same 50 streams go to direct
// SSE readers instead (the fake's and the readers' CPU, without the
// server's chat path) — on a shared 2-core machine most of a p99 is
// scheduling. Goal: load-p99 ≤ 5 ms.
func BenchmarkChat50CodeAction(b *testing.B) {
	const chats, chunks = 50, 100
	fake := fakeopenrouter.New(b, fakeopenrouter.Options{APIKey: benchKey})
	fake.SetHandler(func(fakeopenrouter.ChatRequest) fakeopenrouter.Reply {
		words := make([]string, chunks)
		for i := range words {
			words[i] = fmt.Sprintf("word%d ", i)
		}
		return fakeopenrouter.Reply{Chunks: words, ChunkDelay: 10 * time.Millisecond}
	})
	c := newBenchClient(b, fake, "", nil)
	src := benchGoFile(2000)
	uri := c.open(b, "big.go", src)
	var deltas atomic.Int64
	f := func(string, time.Time) { deltas.Add(1) }
	c.onDelta.Store(&f)

	// during sends paced codeActions until all of work's goroutines end.
	during := func(work func() error) []time.Duration {
		var wg sync.WaitGroup
		errs := make(chan error, chats)
		for j := 0; j < chats; j++ {
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
						b.Fatal(err)
					}
				}
				return out
			default:
			}
			out = append(out, c.codeAction(b, uri, uint32(1000+len(out)%100)))
			time.Sleep(2 * time.Millisecond)
		}
	}

	var idle, direct, loaded []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 200; j++ {
			idle = append(idle, c.codeAction(b, uri, 1000))
			time.Sleep(2 * time.Millisecond)
		}
		direct = append(direct, during(func() error {
			benchDirectLatencies(b, fake)
			return nil
		})...)
		deltas.Store(0)
		loaded = append(loaded, during(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, err := c.chat(ctx, command.ChatArgs{Prompt: "Explain this", URI: protocol.DocumentURI(uri)})
			if err == nil && !strings.HasPrefix(res.Text, "word0 ") {
				err = fmt.Errorf("answer %q", res.Text)
			}
			return err
		})...)
		if got := deltas.Load(); got != chats*chunks {
			b.Fatalf("%d deltas, want %d", got, chats*chunks)
		}
	}
	b.StopTimer()
	b.ReportMetric(benchMs(benchPct(idle, 99)), "idle-p99-ms")
	b.ReportMetric(benchMs(benchPct(direct, 99)), "direct-load-p99-ms")
	b.ReportMetric(benchMs(benchPct(loaded, 50)), "load-p50-ms")
	b.ReportMetric(benchMs(benchPct(loaded, 99)), "load-p99-ms")
	b.ReportMetric(float64(len(loaded))/float64(b.N), "codeActions/op")
}

// BenchmarkCodeAction: one textDocument/codeAction round trip on a
// 2,000-line file over the wire codec, in process (bench/lspbench measures
// the same over stdio against gopls). Reports the median.
func BenchmarkCodeAction(b *testing.B) {
	c := newBenchClient(b, nil, "", nil)
	uri := c.open(b, "big.go", benchGoFile(2000))
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ds = append(ds, c.codeAction(b, uri, 1000))
	}
	b.StopTimer()
	b.ReportMetric(benchUs(benchPct(ds, 50)), "p50-µs")
}

// BenchmarkGenerateApplyEdit200: the generate path once the agent is idle,
// without the agent: changeset.Harvest of a local sandbox whose working
// copy (1,000 files) has 200 changed files (150 modified, 50 created), the
// server's toFileChanges and applyChanges (one WorkspaceEdit with minimal
// hunks), until the editor has received and decoded workspace/applyEdit.
// The editor answers applied:true without writing, so every iteration sees
// the same sandbox. Goal: idle→applyEdit p50 ≤ 50 ms.
func BenchmarkGenerateApplyEdit200(b *testing.B) {
	const files, modified, created = 1000, 150, 50
	ctx := context.Background()
	ws := b.TempDir()
	for i := 0; i < files; i++ {
		p := filepath.Join(ws, fmt.Sprintf("pkg%02d", i/50), fmt.Sprintf("file%03d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(benchGoFile(60)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	prov, err := local.New(local.Options{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	sb, err := prov.Open(ctx, sandbox.Spec{Key: "bench", WorkspaceRoot: ws})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sb.Close(context.Background()) })
	if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws}); err != nil {
		b.Fatal(err)
	}
	snapshot, err := sb.Manifest(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// The agent's work: three lines changed in each modified file, new files.
	for i := 0; i < modified; i++ {
		rel := fmt.Sprintf("pkg%02d/file%03d.go", (i*5)/50, i*5)
		lines := strings.Split(benchGoFile(60), "\n")
		for _, at := range []int{12, 30, 47} {
			lines[at] += " // changed by the agent"
		}
		if err := sb.WriteFile(ctx, rel, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < created; i++ {
		if err := sb.WriteFile(ctx, fmt.Sprintf("gen/new%02d.go", i), []byte(benchGoFile(40)), 0o644); err != nil {
			b.Fatal(err)
		}
	}

	var received, docChanges atomic.Int64
	c := newBenchClient(b, nil, ws, func(params json.RawMessage, at time.Time) any {
		received.Store(at.UnixNano()) // stamped when read, before decoding
		var p struct {
			Edit struct {
				DocumentChanges []json.RawMessage `json:"documentChanges"`
			} `json:"edit"`
		}
		_ = json.Unmarshal(params, &p)
		docChanges.Store(int64(len(p.Edit.DocumentChanges)))
		return map[string]any{"applied": true}
	})
	ictx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.conn.CallResult(ictx, "workspace/executeCommand", map[string]any{"command": "bench.server", "arguments": []any{b.Name()}}, nil); err != nil {
		b.Fatal(err)
	}
	benchServersMu.Lock()
	s := benchServers[b.Name()]
	benchServersMu.Unlock()

	var total, harvest, edit, roundTrip, cpu []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		received.Store(0)
		cpu0 := benchCPU()
		t0 := time.Now()
		changes, refused, err := changeset.Harvest(ctx, sb, snapshot, changeset.Limits{Ignore: opencode.NoisePaths})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		applied, reason, left, err := s.ApplyHarvest(ctx, ws, changes)
		t3 := time.Now()
		cpu = append(cpu, benchCPU()-cpu0)
		if err != nil || !applied || left != 0 || len(refused) != 0 || len(changes) != modified+created {
			b.Fatalf("applied=%v (%s), %d changes, %d refused, %d left out: %v", applied, reason, len(changes), len(refused), left, err)
		}
		if got := docChanges.Load(); got != modified+2*created {
			b.Fatalf("the edit has %d document changes, want %d", got, modified+2*created)
		}
		t2 := time.Unix(0, received.Load())
		total = append(total, t2.Sub(t0))
		harvest = append(harvest, t1.Sub(t0))
		edit = append(edit, t2.Sub(t1))
		roundTrip = append(roundTrip, t3.Sub(t0))
	}
	b.StopTimer()
	b.ReportMetric(benchMs(benchPct(total, 50)), "idle-to-applyEdit-p50-ms")
	b.ReportMetric(benchMs(benchPct(harvest, 50)), "harvest-p50-ms")
	b.ReportMetric(benchMs(benchPct(edit, 50)), "edit-p50-ms")
	b.ReportMetric(benchMs(benchPct(roundTrip, 50)), "with-reply-p50-ms")
	b.ReportMetric(benchMs(benchPct(cpu, 50)), "cpu-p50-ms")
}

// benchCPU is the CPU time (user + system) the process has used so far:
// on a shared machine it shows how much of a wall-clock figure is our
// work and how much is waiting for a core.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchGoFile is n lines of ordinary Go.
func benchGoFile(n int) string {
	var sb strings.Builder
	sb.WriteString("package bench\n\n")
	for i := 2; i < n-1; i++ {
		fmt.Fprintf(&sb, "var v%04d = %d * %d // line %d of the workload\n", i, i, i+1, i)
	}
	sb.WriteString("// end\n")
	return sb.String()
}

func benchPct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func benchUs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func benchMs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
