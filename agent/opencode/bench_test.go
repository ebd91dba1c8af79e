package opencode

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/openrouter/fakeopenrouter"
)

// BenchmarkRunOverhead measures the driver's overhead on top of OpenCode's
// own time: the same 3-tool scripted prompt (write, edit, bash, then the
// answer) is sent, alternately, through Server.Run (event stream, progress,
// permission handling, final resynchronisation) and as the bare minimum of
// raw HTTP calls to the same server (POST /session, then the synchronous
// POST /session/{id}/message). Reported: the medians of both and the
// median of the paired ratios; the goal is a ratio ≤ 1.05.
//
//	go test -run '^$' -bench RunOverhead -benchtime 15x ./agent/opencode
func BenchmarkRunOverhead(b *testing.B) {
	e := newEnv(b)
	e.start(Policy{Edit: Allow, Bash: Allow, WebFetch: Deny})
	const prompt = "Benchmark: write, edit and run"
	e.script(prompt, &fakeopenrouter.Script{
		Steps: []fakeopenrouter.Step{
			step("write", map[string]any{"filePath": "bench.txt", "content": "one\ntwo\n"}),
			step("edit", map[string]any{"filePath": "bench.txt", "oldString": "two", "newString": "three"}),
			step("bash", map[string]any{"command": "cat bench.txt", "description": "Show"}),
		},
		FinalText: "Done.",
	})
	ctx := context.Background()
	driver := func() time.Duration {
		t0 := time.Now()
		res, err := e.srv.Run(ctx, Task{Prompt: prompt, Title: "bench"}, nil)
		d := time.Since(t0)
		if err != nil || len(res.Commands) != 1 {
			b.Fatalf("run: %+v %v", res, err)
		}
		return d
	}
	raw := func() time.Duration {
		t0 := time.Now()
		var sess sessionInfo
		if err := e.srv.do(ctx, http.MethodPost, "/session", map[string]string{"title": "bench"}, &sess); err != nil {
			b.Fatal(err)
		}
		var body promptBody
		body.Parts = []promptPart{{Type: "text", Text: prompt}}
		body.Model.ProviderID, body.Model.ModelID = ProviderID, e.srv.cfg.Model
		var msg message
		if err := e.srv.do(ctx, http.MethodPost, "/session/"+url.PathEscape(sess.ID)+"/message", body, &msg); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if msg.Info.Finish != "stop" {
			b.Fatalf("raw prompt ended with %q", msg.Info.Finish)
		}
		return d
	}
	// Warm both paths (the first prompt of an instance is slower).
	driver()
	raw()

	var drv, base []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			base = append(base, raw())
			drv = append(drv, driver())
		} else {
			drv = append(drv, driver())
			base = append(base, raw())
		}
	}
	b.StopTimer()
	// The ratio is the median of each pair's ratio (a pair ran back to
	// back, so it shares the machine's load of the moment).
	ratios := make([]float64, len(drv))
	for i := range drv {
		ratios[i] = float64(drv[i]) / float64(base[i])
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(median(drv).Milliseconds()), "driver-ms")
	b.ReportMetric(float64(median(base).Milliseconds()), "raw-ms")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
