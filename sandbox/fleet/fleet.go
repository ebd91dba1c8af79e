// Package fleet manages the lifetime and the cost of the sandboxes one
// opencode-lsp daemon opens.
//
// A [Manager] keeps one sandbox per (provider, workspace), opened at the
// first [Manager.Acquire] and reused by later ones; a [Lease] serialises the
// runs in one working copy. A background loop, running only while sandboxes
// are open, closes a sandbox nobody used for Limits.IdleTimeout, keeps cloud
// sandboxes alive while a lease is held (E2B's timeout is set, Daytona's
// idle timer refreshed, every KeepAliveInterval) and, when the last lease
// ends, sets the cloud's own timeout back to IdleTimeout plus a margin, so
// that a sandbox whose daemon died stops billing soon after by itself.
// [Manager.CloseAll] closes everything (shutdown, exit, stdin EOF,
// SIGTERM); a sandbox that died (an operation failed with
// sandbox.ErrClosed) is replaced at the next Acquire.
//
// Cost: cloud sandboxes (every provider but "local") are counted in a
// [Store] in the user's state directory, shared by all the user's daemons:
// a [Budget] caps how many may be open at once and how many sandbox-hours a
// calendar month may use, and Acquire refuses a new cloud sandbox beyond
// either with a [*BudgetError]. [Manager.Status] reports open sandboxes and
// sandbox-seconds per provider.
//
// Orphans: every cloud sandbox is labelled with the daemon [Instance] that
// opened it (owner user@host and an id made of pid, process start time and
// a nonce). [Manager.SweepOrphans] lists a provider's sandboxes of this
// owner and kills those whose daemon no longer runs, after a crash or a
// SIGKILL.
//
// The package never imports the LSP layer.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Defaults of [Options] and [Limits].
const (
	DefaultIdleTimeout       = 10 * time.Minute
	DefaultKeepAliveInterval = time.Minute
	DefaultFlushInterval     = time.Minute
	// TTLMargin is added to the idle timeout to give a cloud sandbox's own
	// timeout: the daemon closes an idle sandbox first, the cloud ends one
	// whose daemon is gone.
	TTLMargin = 5 * time.Minute
	// MaxTTL caps the cloud timeout: E2B's Hobby tier allows an hour at
	// most. An idle timeout longer than MaxTTL-TTLMargin lets the cloud end
	// an idle sandbox first; the next Acquire then opens a new one.
	MaxTTL = time.Hour
	// openTimeout bounds one sandbox's open (a cloud create and start).
	openTimeout = 5 * time.Minute
	// closeTimeout bounds one sandbox's close.
	closeTimeout = 30 * time.Second
)

// ErrClosed is returned by Acquire after [Manager.CloseAll].
var ErrClosed = errors.New("the sandboxes are closed (the server is shutting down)")

// Limits are the settings the manager reads at every decision, so that a
// change applies at once.
type Limits struct {
	Budget
	// IdleTimeout closes a sandbox no lease has used for this long
	// (default [DefaultIdleTimeout]).
	IdleTimeout time.Duration
}

func (l Limits) idle() time.Duration {
	if l.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return l.IdleTimeout
}

// TTL is how long a cloud sandbox lives without a keep-alive: the idle
// timeout plus [TTLMargin], at most [MaxTTL].
func (l Limits) TTL() time.Duration { return min(l.idle()+TTLMargin, MaxTTL) }

// Options configure a [Manager].
type Options struct {
	// Provider returns the provider called name ("local", "e2b",
	// "daytona"); it is called for every sandbox opened. Required.
	Provider func(name string) (sandbox.Provider, error)
	// Limits returns the current limits; nil means defaults with a budget
	// of 2 sandboxes and 20 hours.
	Limits func() Limits
	// Store keeps cloud usage; nil keeps it in memory.
	Store *Store
	// Instance identifies this daemon; the zero value means [NewInstance].
	Instance Instance
	// BeforeClose is called before a sandbox is closed (to stop what runs
	// in it, such as the agent's server).
	BeforeClose func(sb sandbox.Sandbox)
	// KeepAliveInterval and FlushInterval: defaults
	// [DefaultKeepAliveInterval], [DefaultFlushInterval].
	KeepAliveInterval time.Duration
	FlushInterval     time.Duration
	// Logger receives lifecycle lines; nil discards them.
	Logger *slog.Logger
}

// Workspace names what a sandbox holds.
type Workspace struct {
	// Root is the workspace's absolute host path.
	Root string
	// Key names the sandbox (sandbox.Spec.Key); default [WorkspaceKey](Root).
	Key string
}

// Manager keeps the daemon's sandboxes. Its methods are safe for concurrent
// use.
type Manager struct {
	opts  Options
	log   *slog.Logger
	inst  Instance
	store *Store
	now   func() time.Time

	mu        sync.Mutex
	entries   map[entryKey]*entry
	closing   map[entryKey]*entry // being closed; a new open of the key waits
	session   map[string]time.Duration
	swept     map[string]bool
	closed    bool
	loop      bool
	loopDone  chan struct{} // closed when the running loop has returned
	wake      chan struct{}
	lastFlush time.Time
}

type entryKey struct{ provider, root string }

// entry is one sandbox, open or being opened. Fields below mu are guarded
// by Manager.mu.
type entry struct {
	key   entryKey
	cloud bool
	ready chan struct{} // closed when the open finished
	done  chan struct{} // closed when the sandbox is closed
	err   error         // the open's error
	sb    *tracked
	// work is held by the lease in use: runs in one working copy take turns.
	work chan struct{}

	created     time.Time
	users       int // leases held plus acquirers waiting
	lastUsed    time.Time
	lastKeep    time.Time
	resetTTL    bool
	keepFailing bool
}

// New returns a manager. It starts no goroutine until a sandbox is open.
func New(opts Options) *Manager {
	if opts.KeepAliveInterval <= 0 {
		opts.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Limits == nil {
		opts.Limits = func() Limits { return Limits{Budget: Budget{MaxConcurrent: 2, MaxHoursPerMonth: 20}} }
	}
	if opts.Instance.ID == "" {
		opts.Instance = NewInstance()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store := opts.Store
	if store == nil {
		store = NewStore("")
	}
	return &Manager{
		opts: opts, log: log, inst: opts.Instance, store: store, now: time.Now,
		entries: map[entryKey]*entry{}, closing: map[entryKey]*entry{},
		session: map[string]time.Duration{}, swept: map[string]bool{},
		wake: make(chan struct{}, 1),
	}
}

// Instance returns the daemon identity the manager labels sandboxes with.
func (m *Manager) Instance() Instance { return m.inst }

// Store returns the usage store.
func (m *Manager) Store() *Store { return m.store }

// IsCloud reports whether provider is a cloud provider (budgeted, tagged,
// kept alive): every provider but "local".
func IsCloud(provider string) bool { return provider != "local" }

// Lease is the use of a sandbox by one run; call Release when the run
// ends. While it is held no other lease of the same sandbox is granted, the
// sandbox is not closed for idleness, and a cloud sandbox is kept alive.
type Lease struct {
	m    *Manager
	e    *entry
	once sync.Once
}

// Sandbox returns the leased sandbox. It reports operations to the manager
// (a sandbox that died is replaced at the next Acquire) and PreviewURL
// failures explain themselves.
func (l *Lease) Sandbox() sandbox.Sandbox { return l.e.sb }

// Provider returns the provider's name.
func (l *Lease) Provider() string { return l.e.key.provider }

// Created returns when the sandbox was opened.
func (l *Lease) Created() time.Time { return l.e.created }

// Release ends the lease; it is idempotent.
func (l *Lease) Release() {
	l.once.Do(func() {
		<-l.e.work
		l.m.unuse(l.e, true)
	})
}

// unuse drops one user of e; a cloud sandbox left unused has its timeout
// set back to the TTL by the loop.
func (m *Manager) unuse(e *entry, used bool) {
	m.mu.Lock()
	e.users--
	if used {
		e.lastUsed = m.now()
		if e.cloud && e.users == 0 {
			e.resetTTL = true
		}
	}
	m.mu.Unlock()
	m.poke()
}

// Acquire returns a lease on the sandbox of provider for ws, opening it (a
// cloud one within the budget) when there is none, and waiting while
// another lease on it is held. ctx bounds the open and the wait.
func (m *Manager) Acquire(ctx context.Context, provider string, ws Workspace) (*Lease, error) {
	if ws.Key == "" {
		ws.Key = WorkspaceKey(ws.Root)
	}
	key := entryKey{provider, ws.Root}
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if old := m.closing[key]; old != nil {
			m.mu.Unlock()
			select {
			case <-old.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		e := m.entries[key]
		if e == nil {
			e = &entry{key: key, cloud: IsCloud(provider), ready: make(chan struct{}), done: make(chan struct{}),
				work: make(chan struct{}, 1)}
			m.entries[key] = e
			// The open outlives a cancelled caller: a cloud sandbox created
			// meanwhile is then kept (and closed when idle), never lost.
			octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
			go func() {
				defer cancel()
				m.open(octx, e, ws)
			}()
		}
		e.users++
		m.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			m.unuse(e, false)
			return nil, ctx.Err()
		}
		if e.err != nil {
			m.unuse(e, false)
			return nil, e.err
		}
		select {
		case e.work <- struct{}{}:
		case <-ctx.Done():
			m.unuse(e, false)
			return nil, ctx.Err()
		}
		if e.sb.isDead() {
			<-e.work
			m.unuse(e, false)
			m.retire(e, "it died")
			continue
		}
		m.mu.Lock()
		e.lastUsed = m.now()
		m.mu.Unlock()
		m.poke()
		return &Lease{m: m, e: e}, nil
	}
}

// open opens e's sandbox and publishes the outcome (e.ready).
func (m *Manager) open(ctx context.Context, e *entry, ws Workspace) {
	sb, err := m.openSandbox(ctx, e, ws)
	m.mu.Lock()
	if err == nil && m.closed {
		m.mu.Unlock()
		m.closeSandbox(e, sb, "the server is shutting down")
		m.mu.Lock()
		err = ErrClosed
	}
	e.err = err
	if err != nil {
		if m.entries[e.key] == e {
			delete(m.entries, e.key)
		}
		close(e.done)
	} else {
		e.sb = sb
		e.created = m.now()
		e.lastUsed, e.lastKeep = e.created, e.created
	}
	close(e.ready)
	start := err == nil && !m.loop
	var loopDone chan struct{}
	if start {
		m.loop = true
		loopDone = make(chan struct{})
		m.loopDone = loopDone
	}
	m.mu.Unlock()
	if start {
		go func() {
			defer close(loopDone)
			m.maintain()
		}()
	}
}

func (m *Manager) openSandbox(ctx context.Context, e *entry, ws Workspace) (*tracked, error) {
	pr, err := m.opts.Provider(e.key.provider)
	if err != nil {
		return nil, err
	}
	lim := m.opts.Limits()
	spec := sandbox.Spec{Key: ws.Key, WorkspaceRoot: ws.Root}
	var res *reservation
	if e.cloud {
		spec.Labels = m.inst.Labels()
		spec.Timeout = lim.TTL()
		res, err = m.store.reserve(m.now(), e.key.provider, m.inst.ID, lim.Budget, lim.TTL(), Alive)
		if err != nil {
			return nil, err
		}
	}
	start := m.now()
	sb, err := pr.Open(ctx, spec)
	if err != nil {
		if res != nil {
			if cerr := res.cancel(); cerr != nil {
				m.log.Warn("Could not release a budget reservation", "err", cerr)
			}
		}
		return nil, err
	}
	if res != nil {
		if err := res.confirm(m.now(), sb.ID()); err != nil {
			m.log.Warn("Could not record a cloud sandbox in the usage file", "sandbox", sb.ID(), "err", err)
		}
	}
	m.log.Info("Opened sandbox", "provider", e.key.provider, "sandbox", sb.ID(), "root", ws.Root, "elapsed", m.now().Sub(start).Round(time.Millisecond))
	return &tracked{Sandbox: sb, provider: e.key.provider}, nil
}

// retire removes e (which died) and closes it in the background.
func (m *Manager) retire(e *entry, why string) {
	m.mu.Lock()
	if m.entries[e.key] != e {
		m.mu.Unlock()
		return
	}
	delete(m.entries, e.key)
	m.closing[e.key] = e
	m.mu.Unlock()
	m.closeEntry(e, why)
}

// closeEntry closes e's sandbox (already out of m.entries and in
// m.closing) and accounts its time.
func (m *Manager) closeEntry(e *entry, why string) error {
	err := m.closeSandbox(e, e.sb, why)
	m.mu.Lock()
	if m.closing[e.key] == e {
		delete(m.closing, e.key)
	}
	m.mu.Unlock()
	close(e.done)
	return err
}

func (m *Manager) closeSandbox(e *entry, sb *tracked, why string) error {
	if m.opts.BeforeClose != nil {
		m.opts.BeforeClose(sb.Sandbox)
	}
	sb.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := sb.Sandbox.Close(ctx)
	now := m.now()
	if err != nil {
		m.log.Warn("Closing sandbox failed", "provider", e.key.provider, "sandbox", sb.ID(), "why", why, "err", err)
		return fmt.Errorf("%s sandbox %s: %w", e.key.provider, sb.ID(), err)
	}
	if e.cloud {
		if err := m.store.finish(now, e.key.provider, sb.ID()); err != nil {
			m.log.Warn("Could not record a closed cloud sandbox in the usage file", "sandbox", sb.ID(), "err", err)
		}
	} else if !e.created.IsZero() {
		m.mu.Lock()
		m.session[e.key.provider] += now.Sub(e.created)
		m.mu.Unlock()
	}
	m.log.Info("Closed sandbox", "provider", e.key.provider, "sandbox", sb.ID(), "why", why)
	return nil
}

// CloseAll closes every sandbox (waiting for those being opened) and
// refuses later Acquires. Leases still held end with their sandbox.
func (m *Manager) CloseAll(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	var opening, open []*entry
	// Entries already being closed (idle, dead) finish their accounting
	// before CloseAll returns.
	for _, e := range m.closing {
		opening = append(opening, e)
	}
	for k, e := range m.entries {
		select {
		case <-e.ready:
			delete(m.entries, k)
			m.closing[k] = e
			open = append(open, e)
		default:
			opening = append(opening, e)
		}
	}
	m.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, e := range open {
		wg.Go(func() {
			if err := m.closeEntry(e, "closing all"); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	// An entry being opened closes itself when its open returns (closed
	// is set); wait for that, within ctx.
	for _, e := range opening {
		select {
		case <-e.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s sandbox of %s: still opening or closing: %w", e.key.provider, e.key.root, ctx.Err()))
		}
	}
	wg.Wait()
	if err := m.store.flush(m.now(), m.inst.ID); err != nil {
		m.log.Warn("Could not flush cloud usage", "err", err)
	}
	// The loop ends now that nothing is open; wait for its last flush so
	// nothing writes to the store after CloseAll.
	m.mu.Lock()
	loopDone := m.loopDone
	m.mu.Unlock()
	m.poke()
	if loopDone != nil {
		select {
		case <-loopDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("sandbox maintenance: still running: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// SandboxStatus describes one sandbox of [Manager.Status].
type SandboxStatus struct {
	Provider string
	ID       string
	// State is "opening", "running" (a lease is held), "idle" or "dead".
	State     string
	Root      string
	CreatedAt time.Time
	// Seconds is how long it has been open.
	Seconds float64
}

// Status lists the sandboxes and returns sandbox-seconds per provider: for
// cloud providers this month's total of all the user's daemons (the usage
// file plus open sandboxes), for local ones this manager's.
func (m *Manager) Status() ([]SandboxStatus, map[string]float64) {
	now := m.now()
	usage, err := m.store.Usage(now, Alive)
	if err != nil {
		m.log.Warn("Could not read cloud usage", "err", err)
		usage = map[string]float64{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, d := range m.session {
		usage[p] += d.Seconds()
	}
	out := []SandboxStatus{}
	for _, e := range m.entries {
		st := SandboxStatus{Provider: e.key.provider, Root: e.key.root, State: "opening"}
		select {
		case <-e.ready:
		default:
			out = append(out, st)
			continue
		}
		st.ID, st.CreatedAt = e.sb.ID(), e.created
		st.Seconds = now.Sub(e.created).Seconds()
		switch {
		case e.sb.isDead():
			st.State = "dead"
		case len(e.work) > 0:
			st.State = "running"
		default:
			st.State = "idle"
		}
		if !e.cloud {
			usage[e.key.provider] += st.Seconds
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Root < out[j].Root
	})
	return out, usage
}

// poke wakes the maintenance loop.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// maintain is the background loop: idle closes, keep-alives, TTL resets
// and usage flushes. It ends when no sandbox is open.
func (m *Manager) maintain() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := m.tick()
		if wait < 0 {
			return
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-m.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// tick does what is due and returns how long to sleep, or -1 when the loop
// should end (no sandbox left).
func (m *Manager) tick() time.Duration {
	lim := m.opts.Limits()
	idle, ttl := lim.idle(), lim.TTL()
	m.mu.Lock()
	if len(m.entries) == 0 {
		m.loop = false
		m.mu.Unlock()
		if err := m.store.flush(m.now(), m.inst.ID); err != nil {
			m.log.Warn("Could not flush cloud usage", "err", err)
		}
		return -1
	}
	now := m.now()
	next := now.Add(min(m.opts.FlushInterval, m.opts.KeepAliveInterval, idle))
	var reap, keep []*entry
	cloud := false
	for k, e := range m.entries {
		select {
		case <-e.ready:
		default:
			continue
		}
		cloud = cloud || e.cloud
		if e.users == 0 && (e.sb.isDead() || now.Sub(e.lastUsed) >= idle) {
			delete(m.entries, k)
			m.closing[k] = e
			reap = append(reap, e)
			continue
		}
		if e.users == 0 {
			next = minTime(next, e.lastUsed.Add(idle))
		}
		if e.cloud && (e.resetTTL || e.users > 0 && now.Sub(e.lastKeep) >= m.opts.KeepAliveInterval) {
			e.resetTTL = false
			e.lastKeep = now
			keep = append(keep, e)
		}
	}
	flush := cloud && now.Sub(m.lastFlush) >= m.opts.FlushInterval
	if flush {
		m.lastFlush = now
	}
	m.mu.Unlock()

	for _, e := range reap {
		why := "idle for " + idle.String()
		if e.sb.isDead() {
			why = "it died"
		}
		_ = m.closeEntry(e, why)
	}
	for _, e := range keep {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		err := keepAlive(ctx, e.sb.Sandbox, ttl)
		cancel()
		m.mu.Lock()
		failing := e.keepFailing
		e.keepFailing = err != nil
		m.mu.Unlock()
		switch {
		case errors.Is(err, sandbox.ErrClosed):
			e.sb.dead.Store(true)
		case err != nil && !failing:
			m.log.Warn("Keeping a cloud sandbox alive failed", "provider", e.key.provider, "sandbox", e.sb.ID(), "err", err)
		}
	}
	if flush {
		if err := m.store.flush(now, m.inst.ID); err != nil {
			m.log.Warn("Could not flush cloud usage", "err", err)
		}
	}
	return max(next.Sub(m.now()), 10*time.Millisecond)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
