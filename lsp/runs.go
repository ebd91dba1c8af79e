package lsp

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/lsp/command"
)

// Run states (editor contract: opencode.status runs[].state).
const (
	runRunning   = "running"
	runDone      = "done"
	runFailed    = "failed"
	runCancelled = "cancelled"
)

// keepFinished is how many finished runs opencode.status still lists.
const keepFinished = 20

// run is one executeCommand's work, cancellable by $/cancelRequest, by
// window/workDoneProgress/cancel and by opencode.cancel.
type run struct {
	ID      string
	Kind    string
	Started time.Time
	cancel  context.CancelFunc

	mu    sync.Mutex
	state string
}

func (r *run) State() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// runRegistry tracks runs by id.
type runRegistry struct {
	mu       sync.Mutex
	seq      int
	running  map[string]*run
	finished []*run // newest last, at most keepFinished
	// changeSets keeps generated changes that were not applied (apply:false
	// or refused by the editor), by run id, for opencode.apply.
	changeSets map[string]*pendingChanges
}

// pendingChanges is a change set waiting to be (re-)applied.
type pendingChanges struct {
	Label   string
	Changes []fileChange
}

func newRunRegistry() *runRegistry {
	return &runRegistry{running: map[string]*run{}, changeSets: map[string]*pendingChanges{}}
}

// start registers a new run whose context is derived from ctx.
func (rr *runRegistry) start(ctx context.Context, kind string) (context.Context, *run) {
	ctx, cancel := context.WithCancel(ctx)
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.seq++
	r := &run{ID: fmt.Sprintf("%s-%d", kind, rr.seq), Kind: kind, Started: time.Now(), cancel: cancel, state: runRunning}
	rr.running[r.ID] = r
	return ctx, r
}

// finish records the final state of a run and releases its context.
func (rr *runRegistry) finish(r *run, state string) {
	r.mu.Lock()
	if r.state == runRunning {
		r.state = state
	}
	r.mu.Unlock()
	r.cancel()
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if _, ok := rr.running[r.ID]; !ok {
		return
	}
	delete(rr.running, r.ID)
	rr.finished = append(rr.finished, r)
	if len(rr.finished) > keepFinished {
		rr.finished = rr.finished[len(rr.finished)-keepFinished:]
	}
}

// cancel cancels one running run; it reports whether it was running.
func (rr *runRegistry) cancel(id string) bool {
	rr.mu.Lock()
	r := rr.running[id]
	rr.mu.Unlock()
	if r == nil {
		return false
	}
	r.mu.Lock()
	if r.state == runRunning {
		r.state = runCancelled
	}
	r.mu.Unlock()
	r.cancel()
	return true
}

// cancelAll cancels every running run and returns their ids, sorted.
func (rr *runRegistry) cancelAll() []string {
	rr.mu.Lock()
	ids := make([]string, 0, len(rr.running))
	for id := range rr.running {
		ids = append(ids, id)
	}
	rr.mu.Unlock()
	sort.Strings(ids)
	var out []string
	for _, id := range ids {
		if rr.cancel(id) {
			out = append(out, id)
		}
	}
	return out
}

// list returns the running and recently finished runs, oldest first.
func (rr *runRegistry) list() []command.RunStatus {
	rr.mu.Lock()
	all := append([]*run(nil), rr.finished...)
	for _, r := range rr.running {
		all = append(all, r)
	}
	rr.mu.Unlock()
	sort.SliceStable(all, func(i, j int) bool { return all[i].Started.Before(all[j].Started) })
	out := make([]command.RunStatus, 0, len(all))
	for _, r := range all {
		out = append(out, command.RunStatus{RunID: r.ID, Kind: r.Kind, State: r.State()})
	}
	return out
}

func (rr *runRegistry) keepChanges(id string, p *pendingChanges) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.changeSets[id] = p
}

func (rr *runRegistry) takeChanges(id string) *pendingChanges {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	p := rr.changeSets[id]
	delete(rr.changeSets, id)
	return p
}
