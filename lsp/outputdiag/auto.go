package outputdiag

import (
	"path"
	"strings"
)

// autoHandler reads outputs of unknown or composite commands (make, npm
// scripts, shell scripts): it runs the handlers of several formats side by
// side, giving each the lines its own rules matched and every other line as
// unmatched context, and follows make's directory changes.
type autoHandler struct {
	p     *parser
	f     *format
	subs  []handler
	other event
}

func newAutoHandler(p *parser, f *format) handler {
	h := &autoHandler{p: p, f: f}
	for _, sub := range f.subs {
		s := *sub
		s.opts = f.opts
		s.opts.byExtension = true
		h.subs = append(h.subs, s.handler(p))
	}
	return h
}

func (h *autoHandler) line(e *event) {
	if h.makeDir(e.text) {
		return
	}
	owner := -1
	if e.rule != nil {
		owner = e.rule.owner
	}
	for i, s := range h.subs {
		if i == owner {
			s.line(e)
			continue
		}
		h.other = event{text: e.text}
		s.line(&h.other)
	}
}

func (h *autoHandler) end() {
	for _, s := range h.subs {
		s.end()
	}
}

// makeDir follows GNU make's "make[N]: Entering directory '/abs'" and
// "Leaving directory" lines (also with `…' quotes, as older makes print).
func (h *autoHandler) makeDir(line string) bool {
	if !strings.HasPrefix(line, "make") {
		return false
	}
	_, rest, ok := strings.Cut(line, ": ")
	if !ok {
		return false
	}
	var entering bool
	switch {
	case strings.HasPrefix(rest, "Entering directory "):
		entering = true
		rest = rest[len("Entering directory "):]
	case strings.HasPrefix(rest, "Leaving directory "):
		rest = rest[len("Leaving directory "):]
	default:
		return false
	}
	dir := strings.Trim(rest, "'`\"‘’")
	p := h.p
	if !entering {
		if n := len(p.dirStack); n > 0 {
			p.dirStack = p.dirStack[:n-1]
		}
		return true
	}
	rel, _, inside := p.resolve(loc{file: path.Join(dir, "x"), dir: p.here()})
	if inside {
		p.dirStack = append(p.dirStack, path.Dir(rel))
	} else {
		p.dirStack = append(p.dirStack, p.here()) // outside: keep resolving as before
	}
	if d := p.dirStack[len(p.dirStack)-1]; d == "." {
		p.dirStack[len(p.dirStack)-1] = ""
	}
	return true
}
