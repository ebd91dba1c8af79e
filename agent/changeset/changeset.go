// Package changeset harvests what an agent changed in a sandbox's working
// copy: it compares the working copy's [sandbox.Manifest] now with the one
// taken when the workspace was synced into the sandbox, reads the new
// contents, and refuses every change that must never reach the user's
// workspace (a path outside the root, through a symlink that escapes it,
// inside .git/, with a NUL byte or another bad name, or over a size limit).
//
// The result is a list of [Change]s (created / modified / deleted files,
// workspace-relative, '/'-separated, sorted by path) plus the [Refusal]s to
// report; the LSP layer turns the changes into one WorkspaceEdit. Nothing in
// this package writes anywhere.
package changeset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/sourcegraph/conc/pool"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Action is what happened to a file: "created", "modified" or "deleted" (the
// editor contract's `action`).
type Action string

// The actions of a [Change].
const (
	Created  Action = "created"
	Modified Action = "modified"
	Deleted  Action = "deleted"
)

// Change is one file the agent changed in the working copy.
type Change struct {
	// Path is workspace-relative and '/'-separated; it passed [CheckPath]
	// and the symlink check.
	Path   string
	Action Action
	// Content is the new content (nil for a deletion).
	Content []byte
	// Mode is the new file mode (the old one for a deletion).
	Mode fs.FileMode
	// OldHash is the lowercase hex SHA-256 of the content at the snapshot
	// ("" for a creation); the LSP layer may compare it with the
	// workspace's file before applying.
	OldHash string
	// Hash is the lowercase hex SHA-256 of Content ("" for a deletion).
	Hash string
}

// Refusal is a change that was left out, and why. Path may be "" for a
// summary line (see [GitSummaryPath]).
type Refusal struct {
	Path   string
	Reason string
}

// GitSummaryPath is the Path of the single [Refusal] that sums up every
// change under .git/ ("N changes under .git/ left out").
const GitSummaryPath = ".git/"

// Defaults for [Limits].
const (
	DefaultMaxFileSize  = 10 << 20
	DefaultMaxTotalSize = 50 << 20
	DefaultConcurrency  = 8
)

// Limits bounds a harvest. Zero fields take the defaults.
type Limits struct {
	// MaxFileSize is the largest file, in bytes, a change may carry
	// (default 10 MiB).
	MaxFileSize int64
	// MaxTotalSize is the most bytes all created and modified files may
	// carry together (default 50 MiB); changes past it, in path order, are
	// refused.
	MaxTotalSize int64
	// Ignore lists workspace-relative paths whose changes are dropped
	// silently: files a tool writes for itself (OpenCode's .git/opencode).
	Ignore []string
	// Concurrency is how many files are read from the sandbox at once
	// (default 8; cloud sandboxes read each file over HTTP).
	Concurrency int
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.Concurrency <= 0 {
		l.Concurrency = DefaultConcurrency
	}
	return l
}

// Harvest compares the working copy of sb with snapshot, the manifest of the
// working copy taken right after the workspace was synced into it (so files
// left there by earlier runs are not reported again), and returns the
// changes that may be applied plus the refusals to report, both sorted by
// path. Contents of created and modified files are read from the sandbox.
//
// The error is non-nil only when the sandbox could not be listed or read (a
// file that vanished while being read is not an error: it is reported as
// deleted when it existed at the snapshot). Secrets never appear in it.
func Harvest(ctx context.Context, sb sandbox.Sandbox, snapshot sandbox.Manifest, limits Limits) ([]Change, []Refusal, error) {
	limits = limits.withDefaults()
	now, err := sb.Manifest(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("harvest: list the working copy: %w", err)
	}
	ignore := make(map[string]bool, len(limits.Ignore))
	for _, p := range limits.Ignore {
		ignore[p] = true
	}

	// The raw diff, in path order.
	var diff []Change
	for p, st := range now {
		old, ok := snapshot[p]
		switch {
		case !ok:
			diff = append(diff, Change{Path: p, Action: Created, Mode: st.Mode, Hash: st.Hash})
		case old.Hash != st.Hash || old.Mode != st.Mode:
			diff = append(diff, Change{Path: p, Action: Modified, Mode: st.Mode, Hash: st.Hash, OldHash: old.Hash})
		}
	}
	for p, old := range snapshot {
		if _, ok := now[p]; !ok {
			diff = append(diff, Change{Path: p, Action: Deleted, Mode: old.Mode, OldHash: old.Hash})
		}
	}
	slices.SortFunc(diff, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })

	var (
		refused  []Refusal
		gitCount int
		kept     []Change
	)
	for _, c := range diff {
		if ignore[c.Path] {
			continue
		}
		if underGit(c.Path) {
			gitCount++
			continue
		}
		if why := CheckPath(c.Path); why != "" {
			refused = append(refused, Refusal{Path: c.Path, Reason: why})
			continue
		}
		kept = append(kept, c)
	}
	// Symlinks: a change through one is refused, and one that points out of
	// the working copy is reported even when no listed file goes through it.
	links, err := scanSymlinks(ctx, sb)
	if err != nil {
		return nil, nil, err
	}
	reported := map[string]bool{}
	kept = slices.DeleteFunc(kept, func(c Change) bool {
		l, ok := links.through(c.Path)
		if !ok {
			return false
		}
		reason := fmt.Sprintf("the path goes through the symlink %s → %s", l.path, l.target)
		if l.escapes {
			reason = fmt.Sprintf("the path goes through the symlink %s → %s, outside the workspace", l.path, l.target)
			reported[l.path] = true
		}
		refused = append(refused, Refusal{Path: c.Path, Reason: reason})
		return true
	})
	for _, l := range links.list {
		if l.escapes && !reported[l.path] && !ignore[l.path] {
			refused = append(refused, Refusal{Path: l.path, Reason: fmt.Sprintf("a symlink pointing outside the workspace (→ %s) is not applied", l.target)})
		}
	}

	// Sizes, in path order, before anything is read.
	var total int64
	kept = slices.DeleteFunc(kept, func(c Change) bool {
		if c.Action == Deleted {
			return false
		}
		size := now[c.Path].Size
		if size > limits.MaxFileSize {
			refused = append(refused, Refusal{Path: c.Path, Reason: fmt.Sprintf("the file is %s, over the %s limit per file", byteSize(size), byteSize(limits.MaxFileSize))})
			return true
		}
		if total+size > limits.MaxTotalSize {
			refused = append(refused, Refusal{Path: c.Path, Reason: fmt.Sprintf("the changes together are over the %s limit", byteSize(limits.MaxTotalSize))})
			return true
		}
		total += size
		return false
	})

	if err := readContents(ctx, sb, kept, limits, snapshot); err != nil {
		return nil, nil, err
	}
	// A file rewritten with its old content while being read, or gone.
	kept = slices.DeleteFunc(kept, func(c Change) bool {
		return c.Action == Modified && c.Hash == c.OldHash && now[c.Path].Mode == snapshot[c.Path].Mode ||
			c.Action == "" // vanished, and it was not at the snapshot
	})
	kept = slices.DeleteFunc(kept, func(c Change) bool {
		if c.Action == Deleted || int64(len(c.Content)) <= limits.MaxFileSize {
			return false
		}
		// It grew between the listing and the read.
		refused = append(refused, Refusal{Path: c.Path, Reason: fmt.Sprintf("the file is %s, over the %s limit per file", byteSize(int64(len(c.Content))), byteSize(limits.MaxFileSize))})
		return true
	})

	if gitCount > 0 {
		noun := "changes"
		if gitCount == 1 {
			noun = "change"
		}
		refused = append(refused, Refusal{Path: GitSummaryPath, Reason: fmt.Sprintf("%d %s under .git/ left out", gitCount, noun)})
	}
	slices.SortStableFunc(refused, func(a, b Refusal) int { return strings.Compare(a.Path, b.Path) })
	return kept, refused, nil
}

// readContents fills Content and Hash of the created and modified changes,
// reading up to limits.Concurrency files at once. A file that vanished
// becomes a deletion when it existed at the snapshot, and gets an empty
// Action (to be dropped) otherwise.
func readContents(ctx context.Context, sb sandbox.Sandbox, cs []Change, limits Limits, snapshot sandbox.Manifest) error {
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(limits.Concurrency)
	var mu sync.Mutex
	for i := range cs {
		if cs[i].Action == Deleted {
			continue
		}
		c := &cs[i]
		p.Go(func(ctx context.Context) error {
			b, err := sb.ReadFile(ctx, c.Path)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if old, ok := snapshot[c.Path]; ok {
					*c = Change{Path: c.Path, Action: Deleted, Mode: old.Mode, OldHash: old.Hash}
				} else {
					c.Action = ""
				}
				return nil
			case err != nil:
				return fmt.Errorf("harvest: read %s: %w", c.Path, err)
			}
			sum := sha256.Sum256(b)
			c.Content = b
			c.Hash = hex.EncodeToString(sum[:])
			return nil
		})
	}
	return p.Wait()
}

// byteSize formats n bytes for a message ("12.5 MiB", "300 B").
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("KMGTPE"[exp]) + "iB"
}

// CrossCheck compares a harvest with the files the agent's own tools
// reported writing (workspace-relative; absolute when outside): unseen are
// reported files that are neither a change nor a refusal (rewritten with
// the same content, written outside the working copy, or removed again),
// unreported are changes no tool reported (made by a shell command: npm
// init, mv, a generator). Neither is an error; callers log them. Both are
// sorted.
func CrossCheck(changes []Change, refused []Refusal, reported []string) (unseen, unreported []string) {
	harvested := make(map[string]bool, len(changes)+len(refused))
	for _, c := range changes {
		harvested[c.Path] = true
	}
	for _, r := range refused {
		harvested[r.Path] = true
	}
	tools := make(map[string]bool, len(reported))
	for _, p := range reported {
		tools[p] = true
		if !harvested[p] {
			unseen = append(unseen, p)
		}
	}
	for _, c := range changes {
		if !tools[c.Path] {
			unreported = append(unreported, c.Path)
		}
	}
	slices.Sort(unseen)
	unseen = slices.Compact(unseen)
	slices.Sort(unreported)
	return unseen, unreported
}
