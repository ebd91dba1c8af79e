package outputdiag

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/reviewdog/errorformat"
)

// fastRule matches one errorformat line without a regular expression, for
// the subset of items most formats use: %f, %l, %c, %n, %e, %k, %v, %t, %m
// (last), %*[class], %[class], %% and literal characters. It reproduces the
// expression errorformat.NewEfm builds for the same text, including its
// leftmost-first semantics (the non-greedy %f with its optional drive
// letter, greedy digit runs and classes), so its matches are errorformat's
// matches: TestFastMatch and FuzzFastMatch compare the two on every rule
// that has a fast form. Go's regexp costs about 25 ns per byte of a
// matching line; this costs a few. Anything outside the subset keeps
// errorformat's matcher, and so does a line that would need a long search
// (see maxSteps) or holds "\ " (an escaped space %f may contain).
type fastRule struct {
	toks []fastTok
}

type fastKind uint8

const (
	fLit       fastKind = iota // literal text
	fFile                      // %f
	fNum                       // %l %c %n %e %k %v: \d+
	fType                      // %t: one character
	fClassPlus                 // %*[…]: one or more bytes of an ASCII class
	fClassOne                  // %[…]: one byte of an ASCII class
	fMsg                       // %m at the end: .+$
)

type fastTok struct {
	kind  fastKind
	lit   string
	field byte // f l c n e k v t m
	class *[256]bool
}

// maxSteps bounds the search of one line before handing it to errorformat.
const maxSteps = 4096

// compileFast returns the fast form of an errorformat line, or nil when it
// uses something outside the subset.
func compileFast(s string) *fastRule {
	var toks []fastTok
	var lit []byte
	flushLit := func() {
		if len(lit) > 0 {
			toks = append(toks, fastTok{kind: fLit, lit: string(lit)})
			lit = nil
		}
	}
	add := func(t fastTok) {
		flushLit()
		toks = append(toks, t)
	}
	hasFile := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c == '\\' {
				if i+1 >= len(s) {
					return nil
				}
				i++
				c = s[i]
				if strings.IndexByte(`\.+*?()|[]{}^$`, c) >= 0 {
					return nil // a regexp escape or metacharacter
				}
			} else if c == '?' {
				return nil // an unescaped quantifier
			}
			lit = append(lit, c)
			continue
		}
		if i+1 >= len(s) {
			return nil
		}
		i++
		c = s[i]
		switch {
		case c == 'f':
			if hasFile {
				return nil
			}
			hasFile = true
			add(fastTok{kind: fFile, field: 'f'})
		case strings.IndexByte("lcnekv", c) >= 0:
			add(fastTok{kind: fNum, field: c})
		case c == 't':
			add(fastTok{kind: fType, field: 't'})
		case c == 'm':
			if i != len(s)-1 {
				return nil // %m must end the line
			}
			add(fastTok{kind: fMsg, field: 'm'})
		case c == '%':
			lit = append(lit, '%')
		case c == '*' && i+1 < len(s) && s[i+1] == '[':
			end := strings.IndexByte(s[i+2:], ']')
			if end <= 0 {
				return nil
			}
			cl := parseClass(s[i+2 : i+2+end])
			if cl == nil {
				return nil
			}
			add(fastTok{kind: fClassPlus, class: cl})
			i += 2 + end
		case c == '[':
			end := strings.IndexByte(s[i+1:], ']')
			if end <= 0 {
				return nil
			}
			cl := parseClass(s[i+1 : i+1+end])
			if cl == nil {
				return nil
			}
			add(fastTok{kind: fClassOne, class: cl})
			i += 1 + end
		case (c == '+' || c == '-') && i+1 < len(s) && strings.IndexByte("DXAEWICZGOPQ", s[i+1]) >= 0:
			i++ // flags and prefix: no expression
		case strings.IndexByte("DXAEWICZGOPQ", c) >= 0:
		default:
			return nil // %r %p %s %. %# %? %+ %^ %$ %\ …
		}
	}
	flushLit()
	return &fastRule{toks: toks}
}

// parseClass parses the inside of a bracket expression made of ASCII
// characters and ranges (no negation, escapes or named classes).
func parseClass(s string) *[256]bool {
	if s == "" || s[0] == '^' || strings.ContainsAny(s, "\\[") {
		return nil
	}
	var cl [256]bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return nil
		}
		if i+2 < len(s) && s[i+1] == '-' {
			hi := s[i+2]
			if hi < c || hi >= utf8.RuneSelf {
				return nil
			}
			for x := c; ; x++ {
				cl[x] = true
				if x == hi {
					break
				}
			}
			i += 2
			continue
		}
		cl[c] = true
	}
	return &cl
}

// fastState is one match attempt.
type fastState struct {
	r     *fastRule
	line  string
	steps int
	m     errorformat.Match
}

// match returns the match of line and true, or nil and true when the
// expression does not match; false means "ask errorformat".
func (r *fastRule) match(line string) (*errorformat.Match, bool) {
	if strings.Contains(line, `\ `) {
		return nil, false
	}
	st := fastState{r: r, line: line}
	ok := st.at(0, 0)
	if st.steps > maxSteps {
		return nil, false
	}
	if !ok {
		return nil, true
	}
	m := st.m
	return &m, true
}

// at reports whether tokens ti… match line[pos:] through to its end,
// trying alternatives in the order the regular expression would.
func (st *fastState) at(ti, pos int) bool {
	if st.steps++; st.steps > maxSteps {
		return false
	}
	line := st.line
	if ti == len(st.r.toks) {
		return pos == len(line)
	}
	t := &st.r.toks[ti]
	switch t.kind {
	case fLit:
		return strings.HasPrefix(line[pos:], t.lit) && st.at(ti+1, pos+len(t.lit))
	case fMsg:
		if pos >= len(line) || strings.IndexByte(line[pos:], '\n') >= 0 {
			return false // '.' matches anything but a newline
		}
		st.m.M = line[pos:]
		return true
	case fType:
		if pos >= len(line) || line[pos] == '\n' {
			return false
		}
		_, size := utf8.DecodeRuneInString(line[pos:])
		st.m.T = line[pos]
		return st.at(ti+1, pos+size)
	case fClassOne:
		return pos < len(line) && t.class[line[pos]] && st.at(ti+1, pos+1)
	case fClassPlus:
		n := 0
		for pos+n < len(line) && t.class[line[pos+n]] {
			n++
		}
		for k := n; k >= 1; k-- { // greedy
			if st.at(ti+1, pos+k) {
				return true
			}
		}
		return false
	case fNum:
		n := 0
		for pos+n < len(line) && line[pos+n] >= '0' && line[pos+n] <= '9' {
			n++
		}
		for k := n; k >= 1; k-- { // greedy
			v, _ := strconv.Atoi(line[pos : pos+k])
			switch t.field {
			case 'l':
				st.m.L = v
			case 'c':
				st.m.C = v
			case 'n':
				st.m.N = v
			case 'e':
				st.m.E = v
			case 'k':
				st.m.K = v
			case 'v':
				st.m.V = v
			}
			if st.at(ti+1, pos+k) {
				return true
			}
		}
		return false
	case fFile:
		// (?:[[:alpha:]]:)?(?:\\ |[^ ])+? — the drive letter first, then
		// without it; the shortest name first. ("\ " never occurs here.)
		if pos+1 < len(line) && isAlpha(line[pos]) && line[pos+1] == ':' && st.file(ti, pos, pos+2) {
			return true
		}
		return st.file(ti, pos, pos)
	}
	return false
}

// file tries names line[start:end] for end after from, shortest first: at
// least one character, none of them a space.
func (st *fastState) file(ti, start, from int) bool {
	line := st.line
	var next byte // the first byte the rest must start with, when known
	if ti+1 < len(st.r.toks) && st.r.toks[ti+1].kind == fLit {
		next = st.r.toks[ti+1].lit[0]
	}
	for end := from; end < len(line) && line[end] != ' '; {
		_, size := utf8.DecodeRuneInString(line[end:])
		end += size
		if next != 0 && (end >= len(line) || line[end] != next) {
			continue
		}
		st.m.F = line[start:end]
		if st.at(ti+1, end) {
			return true
		}
		if st.steps > maxSteps {
			return false
		}
	}
	return false
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
