package fleet

import "time"

// Test hooks.

// ProcessStart exposes processStart (0 when unknown).
func ProcessStart(pid int) uint64 {
	s, _ := processStart(pid)
	return s
}

// StoreRound reserves a sandbox for a made-up daemon of this process,
// confirms it as id and finishes it exactly one second later, adding one
// second to the month.
func StoreRound(st *Store, id string) error {
	now := time.Now()
	self := NewInstance().ID
	r, err := st.reserve(now, "e2b", self, Budget{MaxConcurrent: 1000, MaxHoursPerMonth: 1000}, time.Minute, Alive)
	if err != nil {
		return err
	}
	if err := r.confirm(now, id); err != nil {
		return err
	}
	return st.finish(now.Add(time.Second), "e2b", id)
}
