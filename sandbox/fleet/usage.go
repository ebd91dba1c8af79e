package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// UsageFile is the name of the usage state file in the state directory.
const UsageFile = "usage.json"

// StateDir returns opencode-lsp's state directory as the XDG base directory
// specification places it: $XDG_STATE_HOME/opencode-lsp, else
// $HOME/.local/state/opencode-lsp; "" when neither variable is set (usage is
// then kept in memory only). getenv is os.Getenv when nil.
func StateDir(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "opencode-lsp")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "opencode-lsp")
	}
	return ""
}

// Store keeps cloud sandbox usage in the user's state directory
// (<dir>/usage.json): sandbox-seconds per calendar month (UTC, "2006-01")
// and provider, plus a record of every cloud sandbox some daemon has open.
// Every change is a read-modify-write under an flock(2) of <dir>/usage.lock,
// written to a temporary file and renamed into place, so several daemons of
// one user share one budget and a crash never leaves half a file. A daemon
// adds the time of its open sandboxes every flush, so a crash loses at most
// one flush interval; the records of a daemon that is gone are settled by
// the next daemon (capped at the sandbox's time to live).
//
// A Store with an empty directory keeps everything in memory. Methods are
// safe for concurrent use.
type Store struct {
	dir string

	mu  sync.Mutex
	mem *usageState
}

// NewStore returns a store in dir ("" = memory only). Nothing is created
// until the first change.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// Dir returns the state directory ("" for a memory store).
func (s *Store) Dir() string { return s.dir }

// usageState is the content of usage.json.
type usageState struct {
	Version int `json:"version"`
	// Months maps "2006-01" (UTC) to provider to sandbox-seconds.
	Months map[string]map[string]float64 `json:"months"`
	// Live lists cloud sandboxes some daemon holds open (or is creating:
	// ID "pending-…").
	Live []liveRecord `json:"live"`
}

// liveRecord is one open cloud sandbox.
type liveRecord struct {
	Provider string `json:"provider"`
	ID       string `json:"id"`
	// Daemon is the [Instance.ID] of the daemon that holds it.
	Daemon    string    `json:"daemon"`
	CreatedAt time.Time `json:"createdAt"`
	// AccountedUntil is when its time was last added to Months.
	AccountedUntil time.Time `json:"accountedUntil"`
	// TTLSec is how long the sandbox lives without a keep-alive: the most
	// that is added for it once its daemon is gone.
	TTLSec float64 `json:"ttlSec"`
}

func (r liveRecord) pending() bool { return strings.HasPrefix(r.ID, pendingPrefix) }

const pendingPrefix = "pending-"

func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

func (u *usageState) add(now time.Time, provider string, d time.Duration) {
	if d <= 0 {
		return
	}
	if u.Months == nil {
		u.Months = map[string]map[string]float64{}
	}
	m := u.Months[monthOf(now)]
	if m == nil {
		m = map[string]float64{}
		u.Months[monthOf(now)] = m
	}
	m[provider] += d.Seconds()
}

// unaccounted is the time of r not yet in Months: all of it while its
// daemon runs, at most its time to live once the daemon is gone.
func (r liveRecord) unaccounted(now time.Time, alive bool) time.Duration {
	if r.pending() {
		return 0
	}
	d := now.Sub(r.AccountedUntil)
	if !alive {
		d = min(d, time.Duration(r.TTLSec*float64(time.Second)))
	}
	return max(d, 0)
}

// settle accounts and drops the records of daemons that are gone.
func (u *usageState) settle(now time.Time, self string, alive func(string) bool) bool {
	changed := false
	keep := u.Live[:0]
	for _, r := range u.Live {
		if r.Daemon != self && !alive(r.Daemon) {
			u.add(now, r.Provider, r.unaccounted(now, false))
			changed = true
			continue
		}
		keep = append(keep, r)
	}
	u.Live = keep
	return changed
}

// update runs fn on the state under the exclusive lock and writes the
// result when fn reports a change. A file that cannot be read or written is
// an error naming it (fn's own errors pass unchanged).
func (s *Store) update(fn func(u *usageState) (bool, error)) error {
	var fnErr error
	err := s.updateFile(func(u *usageState) (bool, error) {
		changed, err := fn(u)
		fnErr = err
		return changed, err
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("%w (the cloud usage file is %s; set XDG_STATE_HOME to a writable directory)", err, filepath.Join(s.dir, UsageFile))
	}
	return err
}

func (s *Store) updateFile(fn func(u *usageState) (bool, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		if s.mem == nil {
			s.mem = &usageState{Version: 1}
		}
		_, err := fn(s.mem)
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("usage state: %w", err)
	}
	unlock, err := lockFile(filepath.Join(s.dir, "usage.lock"), true)
	if err != nil {
		return fmt.Errorf("usage state: lock: %w", err)
	}
	defer unlock()
	u, err := s.read()
	if err != nil {
		return err
	}
	changed, err := fn(u)
	if err != nil || !changed {
		return err
	}
	return s.write(u)
}

// view runs fn on a copy of the state (under the shared lock when the file
// exists); it never creates anything.
func (s *Store) view(fn func(u *usageState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		if s.mem == nil {
			s.mem = &usageState{Version: 1}
		}
		fn(s.mem)
		return nil
	}
	path := filepath.Join(s.dir, UsageFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		fn(&usageState{Version: 1})
		return nil
	}
	unlock, err := lockFile(filepath.Join(s.dir, "usage.lock"), false)
	if err != nil {
		return fmt.Errorf("usage state: lock: %w", err)
	}
	defer unlock()
	u, err := s.read()
	if err != nil {
		return err
	}
	fn(u)
	return nil
}

// read loads usage.json. A file that is not valid JSON is moved aside to
// usage.json.corrupt (nothing is lost) and a fresh state begins.
func (s *Store) read() (*usageState, error) {
	path := filepath.Join(s.dir, UsageFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &usageState{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usage state: %w", err)
	}
	u := &usageState{}
	if err := json.Unmarshal(b, u); err != nil {
		if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
			return nil, fmt.Errorf("usage state: %s is not valid JSON (%v) and could not be moved aside: %w", path, err, rerr)
		}
		return &usageState{Version: 1}, nil
	}
	u.Version = 1
	return u, nil
}

func (s *Store) write(u *usageState) error {
	b, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return fmt.Errorf("usage state: %w", err)
	}
	f, err := os.CreateTemp(s.dir, ".usage-*.json")
	if err != nil {
		return fmt.Errorf("usage state: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("usage state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, UsageFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("usage state: %w", err)
	}
	return nil
}

// Budget errors: a *BudgetError matches ErrBudget with errors.Is.
var ErrBudget = errors.New("cloud sandbox budget exceeded")

// Which limit a [BudgetError] is about.
const (
	LimitConcurrent = "maxConcurrent"
	LimitHours      = "maxHoursPerMonth"
)

// BudgetError says which budget limit refused a new cloud sandbox.
type BudgetError struct {
	Provider string
	// Limit is LimitConcurrent or LimitHours.
	Limit string
	// Max is the limit: sandboxes, or hours per month.
	Max float64
	// Used is what is in use: open cloud sandboxes (of every daemon of the
	// user), or hours this month.
	Used float64
	// Month is the month of an hours limit ("2006-01", UTC).
	Month string
	// ByProvider breaks Used down per provider (hours limit).
	ByProvider map[string]float64
}

func (e *BudgetError) Error() string {
	if e.Limit == LimitConcurrent {
		if e.Max <= 0 {
			return fmt.Sprintf("cloud sandboxes are disabled (the budget allows %g at a time), so no %s sandbox was created", e.Max, e.Provider)
		}
		return fmt.Sprintf("no %s sandbox was created: %g cloud sandboxes are already open and the budget allows %g at a time", e.Provider, e.Used, e.Max)
	}
	var parts []string
	names := make([]string, 0, len(e.ByProvider))
	for p := range e.ByProvider {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f h", p, e.ByProvider[p]))
	}
	detail := ""
	if len(parts) > 0 {
		detail = " (" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("no %s sandbox was created: this month's cloud sandbox budget is used up: %.2f of %g sandbox-hours in %s%s", e.Provider, e.Used, e.Max, e.Month, detail)
}

// Is matches [ErrBudget].
func (e *BudgetError) Is(target error) bool { return target == ErrBudget }

// Budget bounds cloud sandboxes. A zero limit refuses every cloud sandbox.
type Budget struct {
	// MaxConcurrent is how many cloud sandboxes all daemons of the user
	// may hold open at once.
	MaxConcurrent int
	// MaxHoursPerMonth bounds the sandbox-hours of a calendar month (UTC),
	// summed over the cloud providers.
	MaxHoursPerMonth float64
}

// reservation is a slot taken by [Store.reserve] for a sandbox being
// created.
type reservation struct {
	s        *Store
	provider string
	self     string
	token    string
	ttl      time.Duration
}

// reserve checks the budget for one more sandbox of provider and, when it
// allows it, records a pending sandbox for daemon self (so that other
// daemons count it at once). Records of daemons that are gone are settled
// first.
func (s *Store) reserve(now time.Time, provider, self string, b Budget, ttl time.Duration, alive func(string) bool) (*reservation, error) {
	token := pendingPrefix + randomHex(8)
	err := s.update(func(u *usageState) (bool, error) {
		u.settle(now, self, alive)
		if n := len(u.Live); float64(n) >= float64(b.MaxConcurrent) {
			return true, &BudgetError{Provider: provider, Limit: LimitConcurrent, Max: float64(b.MaxConcurrent), Used: float64(n)}
		}
		by := map[string]float64{}
		for p, secs := range u.Months[monthOf(now)] {
			by[p] += secs
		}
		for _, r := range u.Live {
			by[r.Provider] += r.unaccounted(now, true).Seconds()
		}
		total := 0.0
		for p, secs := range by {
			total += secs
			by[p] = secs / 3600
		}
		if total >= b.MaxHoursPerMonth*3600 {
			return true, &BudgetError{Provider: provider, Limit: LimitHours, Max: b.MaxHoursPerMonth, Used: total / 3600, Month: monthOf(now), ByProvider: by}
		}
		u.Live = append(u.Live, liveRecord{Provider: provider, ID: token, Daemon: self, CreatedAt: now, AccountedUntil: now, TTLSec: ttl.Seconds()})
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return &reservation{s: s, provider: provider, self: self, token: token, ttl: ttl}, nil
}

// confirm turns the pending record into the sandbox id, created at now.
func (r *reservation) confirm(now time.Time, id string) error {
	return r.s.update(func(u *usageState) (bool, error) {
		for i := range u.Live {
			if u.Live[i].ID == r.token {
				u.Live[i].ID, u.Live[i].CreatedAt, u.Live[i].AccountedUntil = id, now, now
				return true, nil
			}
		}
		// Settled meanwhile by a daemon that thought we were gone: record
		// it again.
		u.Live = append(u.Live, liveRecord{Provider: r.provider, ID: id, Daemon: r.self, CreatedAt: now, AccountedUntil: now, TTLSec: r.ttl.Seconds()})
		return true, nil
	})
}

// cancel drops the pending record (the create failed).
func (r *reservation) cancel() error {
	return r.s.update(func(u *usageState) (bool, error) {
		for i := range u.Live {
			if u.Live[i].ID == r.token {
				u.Live = append(u.Live[:i], u.Live[i+1:]...)
				return true, nil
			}
		}
		return false, nil
	})
}

// flush adds the time since the last flush of daemon self's sandboxes.
func (s *Store) flush(now time.Time, self string) error {
	return s.update(func(u *usageState) (bool, error) {
		changed := false
		for i := range u.Live {
			r := &u.Live[i]
			if r.Daemon != self || r.pending() {
				continue
			}
			u.add(now, r.Provider, r.unaccounted(now, true))
			r.AccountedUntil = now
			changed = true
		}
		return changed, nil
	})
}

// finish accounts a sandbox that ended at now (closed by its daemon, or
// killed as an orphan) and drops its record; a sandbox without a record
// changes nothing.
func (s *Store) finish(now time.Time, provider, id string) error {
	return s.update(func(u *usageState) (bool, error) {
		for i, r := range u.Live {
			if r.Provider == provider && r.ID == id {
				u.add(now, provider, r.unaccounted(now, true))
				u.Live = append(u.Live[:i], u.Live[i+1:]...)
				return true, nil
			}
		}
		return false, nil
	})
}

// Usage returns the sandbox-seconds of the month of now per cloud
// provider: what the file holds plus the time not yet flushed of the
// sandboxes open now (those of daemons that are gone counted up to their
// time to live).
func (s *Store) Usage(now time.Time, alive func(string) bool) (map[string]float64, error) {
	out := map[string]float64{}
	err := s.view(func(u *usageState) {
		for p, secs := range u.Months[monthOf(now)] {
			out[p] += secs
		}
		for _, r := range u.Live {
			if d := r.unaccounted(now, alive(r.Daemon)); d > 0 {
				out[r.Provider] += d.Seconds()
			}
		}
	})
	return out, err
}
