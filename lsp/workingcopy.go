package lsp

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// workingCopy is a sandbox's working copy brought up to date for one run.
type workingCopy struct {
	// Snapshot lists the files of the working copy after the sync: what a
	// later harvest compares with.
	Snapshot sandbox.Manifest
	// Ignored matches what git ignores in the workspace (plus the settings'
	// excludes): build outputs and dependency trees.
	Ignored *sandbox.Excluder
	Stats   sandbox.SyncStats
}

// prepareWorkingCopy syncs the workspace (with the editor's unsaved
// buffers) into sb and makes the working copy mirror it: files left there by
// earlier runs that the workspace does not have — an agent's file the
// editor did not apply, a file the user deleted since — are removed, unless
// git ignores them (build outputs and caches are kept, so builds stay
// incremental).
func (s *Server) prepareWorkingCopy(ctx context.Context, sb sandbox.Sandbox, src sandbox.Source) (workingCopy, error) {
	var wc workingCopy
	synced, stats, err := sb.Sync(ctx, src)
	if err != nil {
		return wc, fmt.Errorf("syncing the workspace into the sandbox: %w", err)
	}
	wc.Stats = stats
	if wc.Ignored, err = sandbox.GitIgnores(src.Root, src.Excludes); err != nil {
		return wc, err
	}
	if wc.Snapshot, err = sb.Manifest(ctx); err != nil {
		return wc, fmt.Errorf("listing the sandbox's working copy: %w", err)
	}
	var stale []string
	for p := range wc.Snapshot {
		if _, ok := synced[p]; !ok && !wc.Ignored.Excluded(p) {
			stale = append(stale, p)
		}
	}
	if len(stale) == 0 {
		return wc, nil
	}
	sort.Strings(stale)
	for len(stale) > 0 {
		n := min(len(stale), 500)
		st, err := sb.Exec(ctx, sandbox.Cmd{Args: append([]string{"rm", "-f", "--"}, stale[:n]...), Timeout: time.Minute})
		if err != nil || st.Code != 0 {
			return wc, fmt.Errorf("removing files the workspace does not have from the working copy (exit %d): %v", st.Code, err)
		}
		for _, p := range stale[:n] {
			delete(wc.Snapshot, p)
		}
		s.log.Info("Removed stale files from the working copy", "sandbox", sb.ID(), "count", n, "first", stale[0])
		stale = stale[n:]
	}
	return wc, nil
}
