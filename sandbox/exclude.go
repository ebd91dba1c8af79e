package sandbox

import (
	"fmt"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// Excluder decides which workspace paths a sync leaves out ([Source.Excludes]):
// gitignore-style patterns relative to the workspace root, matched with
// go-git's gitignore implementation ("#" comments, "!" negation with the last
// matching pattern winning, a trailing "/" for directories, "*", "?", "[…]"
// and "**"), plus ".git" unless IncludeGit. Paths are slash-separated and
// relative. An Excluder is safe for concurrent use.
type Excluder struct {
	m     gitignore.Matcher
	prune []Prune

	mu   sync.Mutex
	dirs map[string]bool // cached answers for directories
}

// Prune is a pattern simple enough for a remote find(1) to skip what it
// matches without listing it: a single name at any depth (Name) or an
// anchored literal path (Path), optionally directories only.
type Prune struct {
	Name    string
	Path    string
	DirOnly bool
}

// NewExcluder compiles patterns; ".git" is excluded unless includeGit. A
// pattern with a NUL byte is an error.
func NewExcluder(patterns []string, includeGit bool) (*Excluder, error) {
	var ps []gitignore.Pattern
	var prune []Prune
	negated := false
	if !includeGit {
		ps = append(ps, gitignore.ParsePattern(".git", nil))
	}
	for _, p := range patterns {
		if strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("exclude pattern %q contains NUL", p)
		}
		t := strings.TrimRight(p, " \t\r\n")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(t, nil))
		if strings.HasPrefix(t, "!") {
			negated = true
			continue
		}
		dirOnly := strings.HasSuffix(t, "/")
		name := strings.TrimSuffix(t, "/")
		anchored := strings.Contains(name, "/")
		name = strings.TrimPrefix(name, "/")
		switch {
		case name == "" || strings.Contains(name, `\`):
			// Escapes: leave them to the matcher.
		case !anchored:
			// find's -name globs match within one name, as gitignore's do.
			prune = append(prune, Prune{Name: name, DirOnly: dirOnly})
		case !strings.ContainsAny(name, "*?[]"):
			// -path globs would cross "/": only literal anchored paths.
			prune = append(prune, Prune{Path: name, DirOnly: dirOnly})
		}
	}
	if negated {
		// A negation may re-include something under a pruned directory.
		prune = nil
	}
	if !includeGit {
		prune = append([]Prune{{Path: ".git"}}, prune...)
	}
	return &Excluder{m: gitignore.NewMatcher(ps), prune: prune, dirs: map[string]bool{}}, nil
}

// Match reports whether rel is excluded by a pattern of its own (not
// through a parent directory).
func (e *Excluder) Match(rel string, isDir bool) bool {
	return e.m.Match(strings.Split(rel, "/"), isDir)
}

// Excluded reports whether the file rel is excluded by itself or through one
// of its parent directories.
func (e *Excluder) Excluded(rel string) bool {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && e.dirExcluded(rel[:i]) {
			return true
		}
	}
	return e.Match(rel, false)
}

// DirExcluded reports whether the directory rel, or one above it, is excluded.
func (e *Excluder) DirExcluded(rel string) bool {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && e.dirExcluded(rel[:i]) {
			return true
		}
	}
	return e.dirExcluded(rel)
}

func (e *Excluder) dirExcluded(d string) bool {
	e.mu.Lock()
	ex, ok := e.dirs[d]
	e.mu.Unlock()
	if !ok {
		ex = e.Match(d, true)
		e.mu.Lock()
		e.dirs[d] = ex
		e.mu.Unlock()
	}
	return ex
}

// Prunes lists what is surely excluded and may be skipped by a remote
// listing: ".git" unless included and, when no pattern is negated, the
// single-name and anchored literal patterns.
func (e *Excluder) Prunes() []Prune { return e.prune }

// FindPrune renders Prunes as find(1) predicates (already shell-quoted
// when quote is set, for a command line; as separate argv words otherwise),
// ending with "-prune -o", or nil when there is nothing to prune.
func (e *Excluder) FindPrune(quote func(string) string) []string {
	if len(e.prune) == 0 {
		return nil
	}
	q := func(s string) string {
		if quote != nil {
			return quote(s)
		}
		return s
	}
	open, closeP := "(", ")"
	if quote != nil {
		open, closeP = `\(`, `\)`
	}
	out := []string{open}
	for i, p := range e.prune {
		if i > 0 {
			out = append(out, "-o")
		}
		if p.DirOnly {
			out = append(out, "-type", "d")
		}
		if p.Path != "" {
			out = append(out, "-path", q("./"+p.Path))
		} else {
			out = append(out, "-name", q(p.Name))
		}
	}
	return append(out, closeP, "-prune", "-o")
}

// GitIgnores returns an Excluder for what git ignores in the workspace at
// root — .git/info/exclude and every .gitignore, each applying to its own
// directory as git applies them (go-git's reader) — plus the extra
// patterns (settings) and .git itself. Build outputs and dependency trees
// (node_modules/, target/) are what it usually matches.
func GitIgnores(root string, extra []string) (*Excluder, error) {
	ps, err := gitignore.ReadPatterns(osfs.New(root), nil)
	if err != nil {
		return nil, fmt.Errorf("reading the workspace's .gitignore files: %w", err)
	}
	ps = append([]gitignore.Pattern{gitignore.ParsePattern(".git", nil)}, ps...)
	for _, p := range extra {
		if strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("exclude pattern %q contains NUL", p)
		}
		if t := strings.TrimRight(p, " \t\r\n"); t != "" && !strings.HasPrefix(t, "#") {
			ps = append(ps, gitignore.ParsePattern(t, nil))
		}
	}
	return &Excluder{m: gitignore.NewMatcher(ps), dirs: map[string]bool{}}, nil
}
