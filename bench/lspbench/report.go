package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// report is lspbench's output (also written as JSON).
type report struct {
	Date       string                   `json:"date"`
	GoVersion  string                   `json:"goVersion"`
	CPUs       int                      `json:"cpus"`
	LoadBefore string                   `json:"loadAverageBefore"`
	LoadAfter  string                   `json:"loadAverageAfter"`
	File       string                   `json:"file"`
	Order      []string                 `json:"servers"`
	Baselines  []string                 `json:"baselines"`
	Servers    map[string]*serverResult `json:"results"`
	// Ratios are opencode-lsp's median over each baseline's, by metric
	// then baseline ("start" → "gopls" → 0.2).
	Ratios map[string]map[string]float64 `json:"ratios"`
}

// serverResult holds one server's samples and their summary.
type serverResult struct {
	Version            string `json:"version"`
	CodeActionProvider bool   `json:"codeActionProvider"`
	LoadCommand        string `json:"loadCommand,omitempty"`

	starts           []time.Duration
	rssMain, rssTree []int64
	codeActions      map[string][]time.Duration
	idle, loaded     []time.Duration
	commandDurations []time.Duration

	StartMs       summary            `json:"startToInitializeMs"`
	RSSMainMB     float64            `json:"rssMB"`
	RSSTreeMB     float64            `json:"rssProcessTreeMB"`
	CodeActionMs  map[string]summary `json:"codeActionMs,omitempty"`
	IdleMs        *summary           `json:"codeActionBeforeCommandMs,omitempty"`
	LoadedMs      *summary           `json:"codeActionDuringCommandMs,omitempty"`
	AddedMedianMs *float64           `json:"codeActionAddedByCommandMedianMs,omitempty"`
	AddedP90Ms    *float64           `json:"codeActionAddedByCommandP90Ms,omitempty"`
	CommandMs     *summary           `json:"commandMs,omitempty"`
}

type summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P10    float64 `json:"p10"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
}

func summarize(ds []time.Duration) summary {
	return summary{N: len(ds), Median: ms(median(ds)), P10: ms(pct(ds, 10)), P90: ms(pct(ds, 90)), P99: ms(pct(ds, 99))}
}

func (r *report) summarize() {
	for _, s := range r.Servers {
		s.StartMs = summarize(s.starts)
		s.RSSMainMB = float64(medianInt(s.rssMain)) / 1024
		s.RSSTreeMB = float64(medianInt(s.rssTree)) / 1024
		if len(s.codeActions) > 0 {
			s.CodeActionMs = map[string]summary{}
			for k, ds := range s.codeActions {
				s.CodeActionMs[k] = summarize(ds)
			}
		}
		if len(s.loaded) > 0 {
			idle, loaded := summarize(s.idle), summarize(s.loaded)
			added := loaded.Median - idle.Median
			added90 := loaded.P90 - idle.P90
			cmd := summarize(s.commandDurations)
			s.IdleMs, s.LoadedMs, s.AddedMedianMs, s.AddedP90Ms, s.CommandMs = &idle, &loaded, &added, &added90, &cmd
		}
	}
	ours := r.Servers["opencode-lsp"]
	r.Ratios = map[string]map[string]float64{}
	put := func(metric, base string, a, b float64) {
		if a <= 0 || b <= 0 {
			return
		}
		if r.Ratios[metric] == nil {
			r.Ratios[metric] = map[string]float64{}
		}
		r.Ratios[metric][base] = a / b
	}
	for _, name := range r.Baselines {
		s := r.Servers[name]
		put("start", name, ours.StartMs.Median, s.StartMs.Median)
		put("rss", name, ours.RSSMainMB, s.RSSMainMB)
		for k := range ours.CodeActionMs {
			if b, ok := s.CodeActionMs[k]; ok {
				put("codeAction/"+k, name, ours.CodeActionMs[k].Median, b.Median)
			}
		}
	}
}

// goals are the targets, as ratios of opencode-lsp to gopls.
var goals = map[string]string{
	"start":                        "≤ 0.333 of gopls",
	"rss":                          "≤ 0.333 of gopls",
	"codeAction/invoked-selection": "≤ 0.1 of gopls",
	"codeAction/automatic-cursor":  "(informational)",
}

func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "\nlspbench %s — Go %s, %d CPUs, load average %s → %s; file: %s\n\n", r.Date, r.GoVersion, r.CPUs, r.LoadBefore, r.LoadAfter, r.File)
	header := "metric (median)"
	for _, n := range r.Order {
		header += "\t" + n
	}
	for _, n := range r.Baselines {
		header += "\tratio vs " + n
	}
	fmt.Fprintln(tw, header+"\tgoal")
	row := func(metric, label string, f func(*serverResult) (float64, bool), unit string) {
		line := label
		for _, n := range r.Order {
			v, ok := f(r.Servers[n])
			if ok {
				line += fmt.Sprintf("\t%.3g %s", v, unit)
			} else {
				line += "\tn/a"
			}
		}
		for _, n := range r.Baselines {
			if v, ok := r.Ratios[metric][n]; ok {
				line += fmt.Sprintf("\t%.3f", v)
			} else {
				line += "\t–"
			}
		}
		fmt.Fprintln(tw, line+"\t"+goals[metric])
	}
	row("start", "start → initialize reply", func(s *serverResult) (float64, bool) { return s.StartMs.Median, s.StartMs.N > 0 }, "ms")
	row("rss", "RSS after didOpen (2,000 lines)", func(s *serverResult) (float64, bool) { return s.RSSMainMB, s.RSSMainMB > 0 }, "MB")
	row("rss-tree", "  same, whole process tree", func(s *serverResult) (float64, bool) { return s.RSSTreeMB, s.RSSTreeMB > 0 }, "MB")
	for _, k := range codeActionKinds {
		name := k.name
		row("codeAction/"+name, "codeAction "+name, func(s *serverResult) (float64, bool) {
			v, ok := s.CodeActionMs[name]
			return v.Median, ok
		}, "ms")
	}
	row("idle", "codeAction before the ~1 s command", func(s *serverResult) (float64, bool) {
		if s.IdleMs == nil {
			return 0, false
		}
		return s.IdleMs.Median, true
	}, "ms")
	row("loaded", "codeAction during the ~1 s command", func(s *serverResult) (float64, bool) {
		if s.LoadedMs == nil {
			return 0, false
		}
		return s.LoadedMs.Median, true
	}, "ms")
	row("added", "  added by the command (goal < 1 ms)", func(s *serverResult) (float64, bool) {
		if s.AddedMedianMs == nil {
			return 0, false
		}
		return *s.AddedMedianMs, true
	}, "ms")
	fmt.Fprintln(tw)
	for _, n := range r.Order {
		s := r.Servers[n]
		note := ""
		if s.LoadCommand != "" {
			note = "; load command: " + s.LoadCommand
			if s.CommandMs != nil {
				note += fmt.Sprintf(" (median %.0f ms, %d codeActions during, %d before)", s.CommandMs.Median, s.LoadedMs.N, s.IdleMs.N)
			}
		}
		if !s.CodeActionProvider {
			note += "; no codeActionProvider"
		}
		fmt.Fprintf(tw, "%s: %s%s\n", n, strings.TrimSpace(s.Version), note)
	}
}
