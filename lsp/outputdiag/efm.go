package outputdiag

import (
	"fmt"
	"strings"

	"github.com/reviewdog/errorformat"
)

// rule is one compiled errorformat line plus what we learn from its text
// without running the regular expression: its prefix and flags (Vim's %E,
// %-G, …) and literal strings every matching line must contain, which let
// most lines skip the regular expression entirely.
type rule struct {
	src  string
	efm  *errorformat.Efm
	fast *fastRule // the same expression without regexp, when possible
	kind kind      // what the line means to the format's handler
	// owner is the index of the sub-format the rule comes from ("auto").
	owner int

	prefix      byte // one of "DXAEWICZGOPQ", or 0
	minus, plus bool // %- (ignore the line) and %+ (the whole line is the message)
	catchAll    bool // matches every line (%.%#): no need to run it

	lead    string   // literal the line must start with
	needles []string // literals the line must contain
	// first, when not empty, holds every byte a matching line can start
	// with (from a leading %*[ ] or %*\s).
	first string
}

// compileRule compiles one errorformat line with errorformat.NewEfm and
// derives its prefilter.
func compileRule(src string, k kind) (rule, error) {
	efm, err := errorformat.NewEfm(src)
	if err != nil {
		return rule{}, fmt.Errorf("errorformat %q: %w", src, err)
	}
	r := rule{src: src, efm: efm, kind: k, fast: compileFast(src)}
	r.analyze()
	return r, nil
}

// multiline reports whether the rule uses a prefix that makes errorformat
// keep state between lines (multi-line messages, file and directory stacks).
func (r *rule) multiline() bool {
	return r.prefix != 0 && strings.IndexByte("AEWICZOPQDX", r.prefix) >= 0
}

// mayMatch is the prefilter: false means the rule's expression cannot match
// line. It never returns false for a line the expression matches
// (FuzzPrefilter checks this against errorformat itself).
func (r *rule) mayMatch(line string) bool {
	if !strings.HasPrefix(line, r.lead) {
		return false
	}
	if r.first != "" && (line == "" || strings.IndexByte(r.first, line[0]) < 0) {
		return false
	}
	for _, n := range r.needles {
		if !strings.Contains(line, n) {
			return false
		}
	}
	return true
}

// analyze walks the errorformat text the way errorformat.NewEfm translates
// it (a port of Vim's efm_to_regpat) and records the prefix, the flags and
// the runs of literal characters that are mandatory in every match. It is
// conservative: anything it does not fully understand ends literal
// extraction.
func (r *rule) analyze() {
	s := r.src
	var run []byte // current run of mandatory literal characters
	leading := true
	stop := false // after a character class: extract nothing more
	flush := func() {
		if len(run) > 0 && !stop {
			if leading {
				r.lead = string(run)
			} else {
				r.needles = append(r.needles, string(run))
			}
		}
		run = run[:0]
		leading = false
	}
	dropLast := func() { // the previous atom is optional (%# or %?)
		if len(run) > 0 {
			run = run[:len(run)-1]
		}
		flush()
	}
	body := strings.Builder{} // the efm without prefix and flags, to spot catch-alls
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c == '\\' && i+1 < len(s) {
				// NewEfm copies the next character unescaped: a regexp
				// metacharacter keeps its meaning, a backslash escapes
				// whatever the expression holds next.
				i++
				c = s[i]
				body.WriteByte('\\')
				body.WriteByte(c)
				if strings.IndexByte(`\.+*?()|[]{}^$`, c) >= 0 {
					flush()
					stop = true
					continue
				}
			} else {
				body.WriteByte(c)
			}
			if c == '?' { // unescaped: the previous atom is optional
				dropLast()
				continue
			}
			run = append(run, c)
			continue
		}
		if i+1 >= len(s) {
			stop = true
			break
		}
		i++
		c = s[i]
		switch {
		case strings.IndexByte("fnlecktmrpvs", c) >= 0:
			body.WriteString("%" + string(c))
			flush()
		case c == '*':
			body.WriteString("%*")
			atStart := leading && len(run) == 0
			flush()
			if i+1 < len(s) && s[i+1] == '[' {
				start := i + 2
				for i < len(s) && s[i] != ']' {
					i++
				}
				// A plain class (no ranges, negation or escapes) at the
				// start of the expression: the line starts with one of
				// its bytes.
				if class := s[min(start, len(s)):min(i, len(s))]; atStart && class != "" && !strings.ContainsAny(class, "^-\\[:") {
					r.first = class
				}
			} else {
				if atStart && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 's' {
					r.first = " \t\n\v\f\r"
				}
				i += 2 // %*\s and the like: the backslash and its character
			}
		case (c == '+' || c == '-') && i+1 < len(s) && strings.IndexByte("DXAEWICZGOPQ", s[i+1]) >= 0:
			if c == '+' {
				r.plus = true
			} else {
				r.minus = true
			}
			i++
			r.prefix = s[i]
		case strings.IndexByte("DXAEWICZGOPQ", c) >= 0:
			r.prefix = c
		case c == '%':
			body.WriteString("%%")
			run = append(run, '%')
		case c == '#' || c == '?':
			body.WriteString("%" + string(c))
			dropLast()
		case c == '+':
			body.WriteString("%+")
			flush()
		case c == '\\':
			body.WriteString("%\\")
			flush()
			i++ // the regexp escape's character (%\s, %\d, …)
		case c == '[':
			body.WriteString("%[")
			flush()
			stop = true
		default: // %. %^ %$ and anything unknown
			body.WriteString("%" + string(c))
			flush()
		}
	}
	flush()
	r.catchAll = body.String() == "%.%#"
}

// compileRules compiles a list of errorformat lines, each with its kind.
func compileRules(srcs []string, kinds []kind) ([]rule, error) {
	rules := make([]rule, 0, len(srcs))
	for i, src := range srcs {
		k := kindNone
		if kinds != nil {
			k = kinds[i]
		}
		r, err := compileRule(src, k)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// match runs the rule's expression on line: the fast form when it has one
// and it can decide, errorformat's otherwise.
func (r *rule) match(line string) *errorformat.Match {
	if r.fast != nil {
		if m, ok := r.fast.match(line); ok {
			return m
		}
	}
	return r.efm.Match(line)
}

// matchLine returns the first rule (in order, as errorformat tries them)
// whose expression matches line, and its match; (-1, nil) when none does.
// A rule that only ignores lines (%-…) or matches everything returns a nil
// match. Only single-line rules are tried: multi-line formats go through
// errorformat's Scanner instead.
func matchLine(rules []rule, line string) (int, *errorformat.Match) {
	for i := range rules {
		r := &rules[i]
		if r.catchAll {
			return i, nil
		}
		if !r.mayMatch(line) {
			continue
		}
		if m := r.match(line); m != nil {
			if r.minus {
				return i, nil
			}
			return i, m
		}
	}
	return -1, nil
}
