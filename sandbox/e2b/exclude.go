package e2b

import (
	"path"
	"strings"
)

// excluder applies [sandbox.Source] excludes: gitignore-style patterns
// relative to the workspace root ("#" comments, "!" negation with the last
// matching pattern winning, a trailing "/" for directories only, a pattern
// with a slash before its end anchored at the root and one without matching
// a name at any depth, "*", "?", "[...]" within a name and "**" across
// directories), plus ".git" unless includeGit.
type excluder struct {
	rules      []rule
	includeGit bool
	negations  bool
}

type rule struct {
	segs    []string // pattern split on "/", "**" for any number of segments
	negate  bool
	dirOnly bool
	simple  string // the raw single-name pattern when it has no slash
	literal bool   // anchored pattern without glob characters
}

func newExcluder(patterns []string, includeGit bool) *excluder {
	e := &excluder{includeGit: includeGit}
	for _, p := range patterns {
		p = strings.TrimRight(p, " \t\r")
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		var r rule
		if strings.HasPrefix(p, "!") {
			r.negate = true
			e.negations = true
			p = p[1:]
		} else if strings.HasPrefix(p, `\!`) || strings.HasPrefix(p, `\#`) {
			p = p[1:]
		}
		if strings.HasSuffix(p, "/") {
			r.dirOnly = true
			p = strings.TrimRight(p, "/")
		}
		if p == "" {
			continue
		}
		anchored := strings.Contains(p, "/")
		p = strings.TrimPrefix(p, "/")
		r.segs = strings.Split(p, "/")
		if !anchored {
			r.simple = p
			r.segs = append([]string{"**"}, r.segs...)
		} else {
			r.literal = !strings.ContainsAny(p, `*?[\`)
		}
		e.rules = append(e.rules, r)
	}
	return e
}

// excluded reports whether the slash-separated relative path is excluded by
// itself (not counting its parents).
func (e *excluder) excluded(rel string, isDir bool) bool {
	segs := strings.Split(rel, "/")
	if !e.includeGit && segs[0] == ".git" {
		return true
	}
	out := false
	for _, r := range e.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if matchSegs(r.segs, segs) {
			out = !r.negate
		}
	}
	return out
}

// excludedPath reports whether a file path is excluded by itself or through
// one of its parent directories.
func (e *excluder) excludedPath(rel string) bool {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && e.excluded(rel[:i], true) {
			return true
		}
	}
	return e.excluded(rel, false)
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			pat = pat[1:]
			if len(pat) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// findPrune returns find(1) predicates that prune what is surely excluded,
// so the remote manifest does not hash it: ".git" unless included, and (when
// no pattern is negated) single-name patterns and anchored literal paths.
// The result is either empty or ends with "-prune -o".
func (e *excluder) findPrune() []string {
	var alts [][]string
	if !e.includeGit {
		alts = append(alts, []string{"-path", "./.git"})
	}
	if !e.negations {
		for _, r := range e.rules {
			var a []string
			switch {
			case r.simple != "" && r.dirOnly:
				a = []string{"-type", "d", "-name", r.simple}
			case r.simple != "":
				a = []string{"-name", r.simple}
			case r.literal && r.dirOnly:
				a = []string{"-type", "d", "-path", "./" + strings.Join(r.segs, "/")}
			case r.literal:
				a = []string{"-path", "./" + strings.Join(r.segs, "/")}
			default:
				continue
			}
			alts = append(alts, a)
		}
	}
	if len(alts) == 0 {
		return nil
	}
	out := []string{"("}
	for i, a := range alts {
		if i > 0 {
			out = append(out, "-o")
		}
		out = append(out, a...)
	}
	return append(out, ")", "-prune", "-o")
}
