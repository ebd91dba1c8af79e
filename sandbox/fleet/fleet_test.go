package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona/fakedaytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/fakee2b"
	"github.com/opencode-lsp/opencode-lsp/sandbox/fleet"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

const (
	e2bKey     = "e2b_fleet0123456789abcdef0123456789"
	daytonaKey = "dtn_fleet0123456789abcdef0123456789"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// await waits for cond (bounded only to keep a broken test from hanging).
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type cloud struct {
	e2b     *fakee2b.Server
	daytona *fakedaytona.Server
	local   sandbox.Provider
	prov    map[string]sandbox.Provider
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	c := &cloud{prov: map[string]sandbox.Provider{}}
	c.e2b = fakee2b.New(t, fakee2b.Options{APIKey: e2bKey})
	ep, err := e2b.NewProvider(e2b.Config{APIKey: e2bKey, APIURL: c.e2b.APIURL, SandboxURL: c.e2b.SandboxURL, Domain: c.e2b.Domain})
	if err != nil {
		t.Fatal(err)
	}
	c.prov["e2b"] = ep
	c.daytona, err = fakedaytona.New(fakedaytona.Options{APIKey: daytonaKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.daytona.Close() })
	dp, err := daytona.New(daytona.Options{APIKey: daytonaKey, APIURL: c.daytona.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	c.prov["daytona"] = dp
	lp, err := local.New(local.Options{StateDir: t.TempDir(), Isolation: local.IsolationNone})
	if err != nil {
		t.Fatal(err)
	}
	c.prov["local"] = lp
	return c
}

func (c *cloud) provider(name string) (sandbox.Provider, error) {
	if p, ok := c.prov[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("no provider %q", name)
}

// live counts the sandboxes each fake holds.
func (c *cloud) live(provider string) int {
	if provider == "e2b" {
		return len(c.e2b.SandboxIDs())
	}
	return len(c.daytona.SandboxIDs())
}

type limits struct {
	mu sync.Mutex
	l  fleet.Limits
}

func (l *limits) get() fleet.Limits { l.mu.Lock(); defer l.mu.Unlock(); return l.l }
func (l *limits) set(f func(*fleet.Limits)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.l)
}

func newManager(t *testing.T, c *cloud, dir string, lim *limits, opts fleet.Options) *fleet.Manager {
	t.Helper()
	opts.Provider = c.provider
	opts.Limits = lim.get
	opts.Store = fleet.NewStore(dir)
	m := fleet.New(opts)
	t.Cleanup(func() { m.CloseAll(context.Background()) })
	return m
}

func defaultLimits() *limits {
	return &limits{l: fleet.Limits{Budget: fleet.Budget{MaxConcurrent: 2, MaxHoursPerMonth: 20}, IdleTimeout: time.Hour}}
}

func exec1(t *testing.T, ctx context.Context, sb sandbox.Sandbox, shell string) string {
	t.Helper()
	var out bytes.Buffer
	st, err := sb.Exec(ctx, sandbox.Cmd{Shell: shell, Stdout: &out, Stderr: &out})
	if err != nil || st.Code != 0 {
		t.Fatalf("%s: %v %+v %s", shell, err, st, out.String())
	}
	return out.String()
}

// One sandbox per (provider, workspace), reused; runs in one sandbox take
// turns.
func TestReuseAndTurns(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	lim := defaultLimits()
	lim.l.MaxConcurrent = 10
	m := newManager(t, c, t.TempDir(), lim, fleet.Options{})
	rootA, rootB := t.TempDir(), t.TempDir()
	for _, prov := range []string{"local", "e2b", "daytona"} {
		t.Run(prov, func(t *testing.T) {
			l1, err := m.Acquire(ctx, prov, fleet.Workspace{Root: rootA})
			if err != nil {
				t.Fatal(err)
			}
			id := l1.Sandbox().ID()
			exec1(t, ctx, l1.Sandbox(), "echo ok")
			// A second run in the same workspace waits for the first.
			wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			if _, err := m.Acquire(wctx, prov, fleet.Workspace{Root: rootA}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second lease while the first is held: %v", err)
			}
			cancel()
			l1.Release()
			l2, err := m.Acquire(ctx, prov, fleet.Workspace{Root: rootA})
			if err != nil {
				t.Fatal(err)
			}
			if l2.Sandbox().ID() != id {
				t.Fatalf("not reused: %s then %s", id, l2.Sandbox().ID())
			}
			// Another workspace gets its own sandbox, at the same time.
			lb, err := m.Acquire(ctx, prov, fleet.Workspace{Root: rootB})
			if err != nil {
				t.Fatal(err)
			}
			if lb.Sandbox().ID() == id {
				t.Fatal("two workspaces share a sandbox")
			}
			l2.Release()
			lb.Release()
		})
	}
	if n := c.live("e2b") + c.live("daytona"); n != 4 {
		t.Fatalf("%d cloud sandboxes, want 4", n)
	}
	sbs, _ := m.Status()
	if len(sbs) != 6 {
		t.Fatalf("status lists %d sandboxes: %+v", len(sbs), sbs)
	}
	if err := m.CloseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.live("e2b") + c.live("daytona"); n != 0 {
		t.Fatalf("%d cloud sandboxes left after CloseAll", n)
	}
	if _, err := m.Acquire(ctx, "local", fleet.Workspace{Root: rootA}); !errors.Is(err, fleet.ErrClosed) {
		t.Fatalf("acquire after CloseAll: %v", err)
	}
}

// An unused sandbox is closed after the idle timeout (its agent stopped
// first); one in use is not.
func TestIdleTimeout(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	lim := defaultLimits()
	var before atomic.Int32
	m := newManager(t, c, t.TempDir(), lim, fleet.Options{BeforeClose: func(sandbox.Sandbox) { before.Add(1) }})
	busy, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	idleID := idle.Sandbox().ID()
	idle.Release()
	lim.set(func(l *fleet.Limits) { l.IdleTimeout = 20 * time.Millisecond })
	exec1(t, ctx, busy.Sandbox(), "true") // wakes the loop with the new limit
	await(t, "the idle sandbox to be closed", func() bool { return c.live("e2b") == 1 })
	if ids := c.e2b.SandboxIDs(); ids[0] == idleID {
		t.Fatal("the busy sandbox was closed instead of the idle one")
	}
	if before.Load() != 1 {
		t.Fatalf("BeforeClose called %d times", before.Load())
	}
	exec1(t, ctx, busy.Sandbox(), "echo still here")
	busy.Release()
	await(t, "the second sandbox to be closed", func() bool { return c.live("e2b") == 0 })
	sbs, usage := m.Status()
	if len(sbs) != 0 || usage["e2b"] <= 0 {
		t.Fatalf("status after idle close: %+v %v", sbs, usage)
	}
}

// CloseAll waits for a sandbox the idle loop is closing, and for the
// loop's last write to the store: nothing touches the state directory
// after CloseAll returns.
func TestCloseAllWaitsForAnIdleClose(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	lim := defaultLimits()
	closing, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m := newManager(t, c, t.TempDir(), lim, fleet.Options{BeforeClose: func(sandbox.Sandbox) {
		once.Do(func() { close(closing); <-unblock })
	}})
	l, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	lim.set(func(l *fleet.Limits) { l.IdleTimeout = 10 * time.Millisecond })
	l.Release()
	<-closing // the loop is closing the idle sandbox
	done := make(chan error, 1)
	go func() { done <- m.CloseAll(context.Background()) }()
	select {
	case err := <-done:
		close(unblock)
		t.Fatalf("CloseAll returned (%v) while the idle sandbox was still being closed", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := c.live("e2b"); n != 0 {
		t.Fatalf("%d sandboxes left after CloseAll", n)
	}
}

// A held lease keeps a cloud sandbox alive; its release sets the cloud's
// own timeout back to the idle timeout plus the margin.
func TestKeepAlive(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	lim := defaultLimits()
	lim.l.IdleTimeout = 2 * time.Minute
	m := newManager(t, c, t.TempDir(), lim, fleet.Options{KeepAliveInterval: 10 * time.Millisecond})
	timeouts := func(id string) []int {
		var out []int
		for _, r := range c.e2b.Requests() {
			if r.Method == "POST" && r.Path == "/sandboxes/"+id+"/timeout" {
				var b struct{ Timeout int }
				json.Unmarshal(r.Body, &b)
				out = append(out, b.Timeout)
			}
		}
		return out
	}
	l, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	id := l.Sandbox().ID()
	await(t, "keep-alives", func() bool { return len(timeouts(id)) >= 3 })
	want := int((2*time.Minute + fleet.TTLMargin) / time.Second)
	for _, got := range timeouts(id) {
		if got != want {
			t.Fatalf("timeout %d s, want %d", got, want)
		}
	}
	// Daytona: the idle timer is refreshed.
	ld, err := m.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	activity := func() int {
		n := 0
		for _, r := range c.daytona.Requests() {
			if r.Method == "POST" && strings.HasSuffix(r.Path, "/"+ld.Sandbox().ID()+"/last-activity") {
				n++
			}
		}
		return n
	}
	await(t, "daytona keep-alives", func() bool { return activity() >= 2 })
	ld.Release()
	// Released: one more timeout reset, then none while idle.
	l.Release()
	n := len(timeouts(id))
	await(t, "the timeout reset at release", func() bool { return len(timeouts(id)) > n })
}

// The budget refuses the cloud sandbox over the concurrency limit, counting
// every daemon of the user (two managers share one state directory), and
// never counts local sandboxes.
func TestBudgetConcurrent(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	dir := t.TempDir()
	lim := defaultLimits()
	lim.l.MaxConcurrent = 2
	m1 := newManager(t, c, dir, lim, fleet.Options{})
	m2 := newManager(t, c, dir, lim, fleet.Options{})
	a, err := m1.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m2.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	before := len(c.e2b.SandboxIDs())
	_, err = m1.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	var be *fleet.BudgetError
	if !errors.As(err, &be) || be.Limit != fleet.LimitConcurrent || be.Used != 2 || !errors.Is(err, fleet.ErrBudget) {
		t.Fatalf("third cloud sandbox: %v", err)
	}
	if !strings.Contains(err.Error(), "2 cloud sandboxes are already open") {
		t.Fatalf("message: %v", err)
	}
	if len(c.e2b.SandboxIDs()) != before {
		t.Fatal("a refused sandbox was created")
	}
	for _, r := range c.e2b.Requests() {
		if r.Method == "POST" && r.Path == "/v2/sandboxes" && r.Service == fakee2b.ServiceAPI {
			before--
		}
	}
	if before != 0 {
		t.Fatal("the refused sandbox reached the E2B API")
	}
	// Local sandboxes are not budgeted.
	ll, err := m1.Acquire(ctx, "local", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ll.Release()
	// Closing one frees its slot.
	b.Release()
	if err := m2.CloseAll(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := m1.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatalf("after a slot was freed: %v", err)
	}
	c2.Release()
	a.Release()
	// A zero limit disables cloud sandboxes.
	m1.CloseAll(ctx)
	m3 := newManager(t, c, dir, &limits{l: fleet.Limits{Budget: fleet.Budget{MaxConcurrent: 0, MaxHoursPerMonth: 20}}}, fleet.Options{})
	if _, err := m3.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()}); !errors.As(err, &be) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("with maxConcurrent 0: %v", err)
	}
}

// The monthly budget counts what the usage file holds; a month that is used
// up refuses new cloud sandboxes before any reaches the service.
func TestBudgetHours(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	dir := t.TempDir()
	month := time.Now().UTC().Format("2006-01")
	prev := time.Now().UTC().AddDate(0, -1, 0).Format("2006-01")
	state := fmt.Sprintf(`{"version":1,"months":{%q:{"e2b":36000,"daytona":35000},%q:{"e2b":999999}},"live":[]}`, month, prev)
	if err := os.WriteFile(filepath.Join(dir, fleet.UsageFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	lim := defaultLimits()
	m := newManager(t, c, dir, lim, fleet.Options{})
	_, usage := m.Status()
	if usage["e2b"] != 36000 || usage["daytona"] != 35000 {
		t.Fatalf("usage: %v", usage)
	}
	// 19.72 of 20 hours: allowed.
	l, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	m.CloseAll(ctx)
	lim.set(func(l *fleet.Limits) { l.MaxHoursPerMonth = 19.5 })
	m2 := newManager(t, c, dir, lim, fleet.Options{})
	_, err = m2.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()})
	var be *fleet.BudgetError
	if !errors.As(err, &be) || be.Limit != fleet.LimitHours || be.Month != month || be.Used < 19.72 {
		t.Fatalf("over the monthly budget: %v", err)
	}
	if !strings.Contains(err.Error(), "daytona 9.72 h, e2b 10.") {
		t.Fatalf("message: %v", err)
	}
	if c.live("daytona") != 0 || len(c.daytona.Requests()) != 0 {
		t.Fatal("the refused sandbox reached Daytona")
	}
}

// Usage is written to the state file: a closed sandbox's time is in the
// month's total and its record is gone.
func TestUsageFile(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	dir := t.TempDir()
	m := newManager(t, c, dir, defaultLimits(), fleet.Options{})
	l, err := m.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Months map[string]map[string]float64
		Live   []struct{ Provider, ID, Daemon string }
	}
	read := func() {
		b, err := os.ReadFile(filepath.Join(dir, fleet.UsageFile))
		if err != nil {
			t.Fatal(err)
		}
		f.Months, f.Live = nil, nil
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if len(f.Live) != 1 || f.Live[0].ID != l.Sandbox().ID() || f.Live[0].Daemon != m.Instance().ID || f.Live[0].Provider != "daytona" {
		t.Fatalf("live records: %+v", f.Live)
	}
	exec1(t, ctx, l.Sandbox(), "true")
	l.Release()
	if err := m.CloseAll(ctx); err != nil {
		t.Fatal(err)
	}
	read()
	if len(f.Live) != 0 || f.Months[time.Now().UTC().Format("2006-01")]["daytona"] <= 0 {
		t.Fatalf("after close: %+v", f)
	}
	// A corrupt file is moved aside, not lost.
	os.WriteFile(filepath.Join(dir, fleet.UsageFile), []byte("{nope"), 0o600)
	m2 := newManager(t, c, dir, defaultLimits(), fleet.Options{})
	l2, err := m2.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	if b, _ := os.ReadFile(filepath.Join(dir, fleet.UsageFile+".corrupt")); string(b) != "{nope" {
		t.Fatalf("corrupt file not kept: %q", b)
	}
}

// Orphans: sandboxes of this owner whose daemon is gone are killed; those
// of a live daemon, of another owner, and untagged ones stay.
func TestSweepOrphans(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	dir := t.TempDir()
	m := newManager(t, c, dir, defaultLimits(), fleet.Options{})
	inst := m.Instance()
	// A daemon that is gone: a process that has exited.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadID := fmt.Sprintf("%d-0-dead", gone.Process.Pid)
	aliveID := fmt.Sprintf("%d-0-other", os.Getpid())
	recycled := fmt.Sprintf("%d-1-recycled", os.Getpid()) // our pid, another start time
	for _, prov := range []string{"e2b", "daytona"} {
		t.Run(prov, func(t *testing.T) {
			p, _ := c.provider(prov)
			open := func(labels map[string]string) string {
				sb, err := p.Open(ctx, sandbox.Spec{Key: "k-" + labels[fleet.LabelDaemon], WorkspaceRoot: t.TempDir(), Labels: labels})
				if err != nil {
					t.Fatal(err)
				}
				return sb.ID()
			}
			orphan := open(map[string]string{fleet.LabelOwner: inst.Owner, fleet.LabelDaemon: deadID})
			orphan2 := open(map[string]string{fleet.LabelOwner: inst.Owner, fleet.LabelDaemon: recycled})
			live := open(map[string]string{fleet.LabelOwner: inst.Owner, fleet.LabelDaemon: aliveID})
			other := open(map[string]string{fleet.LabelOwner: "someone@elsewhere", fleet.LabelDaemon: deadID})
			untagged := open(map[string]string{})
			// The orphan's daemon had recorded it in the usage file.
			os.WriteFile(filepath.Join(dir, fleet.UsageFile), []byte(fmt.Sprintf(
				`{"version":1,"live":[{"provider":%q,"id":%q,"daemon":%q,"createdAt":%q,"accountedUntil":%q,"ttlSec":600}]}`,
				prov, orphan, deadID, time.Now().Add(-time.Minute).Format(time.RFC3339), time.Now().Add(-time.Minute).Format(time.RFC3339))), 0o600)
			res, err := m.SweepOrphans(ctx, prov)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Killed) != 2 || res.Kept != 1 {
				t.Fatalf("sweep: %+v", res)
			}
			var ids []string
			if prov == "e2b" {
				ids = c.e2b.SandboxIDs()
			} else {
				ids = c.daytona.SandboxIDs()
			}
			has := map[string]bool{}
			for _, id := range ids {
				has[id] = true
			}
			if has[orphan] || has[orphan2] || !has[live] || !has[other] || !has[untagged] {
				t.Fatalf("after the sweep: %v (orphans %s %s, kept %s %s %s)", ids, orphan, orphan2, live, other, untagged)
			}
			_, usage := m.Status()
			if usage[prov] < 59 {
				t.Fatalf("the orphan's minute was not accounted: %v", usage)
			}
			for _, id := range []string{live, other, untagged} {
				fleet.InventoryOf(p).Kill(ctx, id)
			}
		})
	}
}

// A sandbox that died (the cloud killed it) is replaced at the next
// Acquire.
func TestDeadSandboxReplaced(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	m := newManager(t, c, t.TempDir(), defaultLimits(), fleet.Options{})
	root := t.TempDir()
	l, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	id := l.Sandbox().ID()
	c.e2b.KillSandbox(id)
	if _, err := l.Sandbox().Exec(ctx, sandbox.Cmd{Shell: "true"}); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("exec in a killed sandbox: %v", err)
	}
	sbs, _ := m.Status()
	if len(sbs) != 1 || sbs[0].State != "dead" {
		t.Fatalf("status: %+v", sbs)
	}
	l.Release()
	l2, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	if l2.Sandbox().ID() == id {
		t.Fatal("the dead sandbox was handed out again")
	}
	exec1(t, ctx, l2.Sandbox(), "true")
}

// PreviewURL failures say "no sandbox URL returned" and what to check.
func TestPreviewError(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	m := newManager(t, c, t.TempDir(), defaultLimits(), fleet.Options{})
	l, err := m.Acquire(ctx, "daytona", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	c.daytona.InjectFault(fakedaytona.Fault{Method: "GET", Path: "/api/sandbox/" + l.Sandbox().ID() + "/ports/", Status: 500})
	_, err = l.Sandbox().PreviewURL(ctx, 4096)
	var pe *fleet.PreviewError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "no sandbox URL returned for port 4096 of the daytona sandbox") || !strings.Contains(err.Error(), "DAYTONA_API_URL") {
		t.Fatalf("preview error: %v", err)
	}
	pv, err := l.Sandbox().PreviewURL(ctx, 4096)
	if err != nil || pv.URL == "" || pv.Headers[daytona.PreviewHeader] == "" {
		t.Fatalf("preview: %+v %v", pv, err)
	}
}

// A caller that gives up while its cloud sandbox is being created does not
// lose it: the sandbox is kept (idle) and closed by CloseAll.
func TestCancelledOpenKeepsTheSandbox(t *testing.T) {
	ctx := ctxT(t)
	slow, err := fakedaytona.New(fakedaytona.Options{APIKey: daytonaKey, StartAfterPolls: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	dp, err := daytona.New(daytona.Options{APIKey: daytonaKey, APIURL: slow.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	m := fleet.New(fleet.Options{Provider: func(string) (sandbox.Provider, error) { return dp, nil }, Limits: defaultLimits().get})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := m.Acquire(cctx, "daytona", fleet.Workspace{Root: t.TempDir()})
		done <- err
	}()
	await(t, "the sandbox to be created", func() bool { return len(slow.SandboxIDs()) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	id := slow.SandboxIDs()[0]
	if err := slow.SetState(id, "started", ""); err != nil {
		t.Fatal(err)
	}
	await(t, "the open to finish", func() bool {
		sbs, _ := m.Status()
		return len(sbs) == 1 && sbs[0].State == "idle" && sbs[0].ID == id
	})
	if err := m.CloseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(slow.SandboxIDs()); n != 0 {
		t.Fatalf("%d sandboxes left", n)
	}
}

// A usage file that cannot be written refuses cloud sandboxes with an error
// that names it (the budget cannot be kept), never local ones.
func TestUnwritableUsageFile(t *testing.T) {
	ctx := ctxT(t)
	c := newCloud(t)
	// The state directory's parent is a file: no one can create it.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	m := newManager(t, c, filepath.Join(file, "state"), defaultLimits(), fleet.Options{})
	_, err := m.Acquire(ctx, "e2b", fleet.Workspace{Root: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "usage.json") || !strings.Contains(err.Error(), "XDG_STATE_HOME") {
		t.Fatalf("unwritable state: %v", err)
	}
	l, err := m.Acquire(ctx, "local", fleet.Workspace{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}
