package outputdiag

import (
	"path"
	"strings"
	"unicode/utf8"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// pyHandler reads Python's and pytest's output.
//
// Tracebacks ("Traceback (most recent call last):", frames
// `  File "/abs/x.py", line 5, in f` with their source lines, then the
// exception line) become one error at the innermost frame inside the
// workspace, message = the exception line, the other frames as related
// information (frames outside the workspace, such as the standard library,
// keep their absolute file URI). Python 3.11 prints absolute paths; relative
// ones are relative to the command's directory.
//
// A SyntaxError block (`  File "x.py", line 2` without ", in", the source
// line, a caret line, "SyntaxError: msg") gets a column from the caret.
// The caret is placed under the printed source line (leading blanks
// removed) at a UTF-8 byte index (see syntaxColumn); the column is mapped
// back into the file's line with the text the tool saw.
//
// pytest: a failure section ("____ test_add ____") collects the locations
// printed by --tb=long/short ("test_calc.py:5: AssertionError",
// "helper.py:3: in helper") and the "E   " lines; it becomes one error at
// the innermost location inside the workspace, message = the E lines (or
// the location's text). --tb=line lines ("/abs/test_calc.py:5: assert …")
// are diagnostics of their own; under the "warnings summary" banner they
// are warnings. Paths are relative to the command's directory, or to the
// "rootdir:" pytest prints.
type pyHandler struct {
	p      *parser
	pytest bool

	tb         *pyTraceback
	compiling  bool // after compileall's "*** Error compiling": carets may be clamped
	sec        *pySection
	banner     string // the last "=== … ===" line
	rootdir    string // workspace-relative "rootdir:", when inside
	hasRootdir bool
}

type pyFrame struct {
	at     loc
	fn     string
	syntax bool   // a SyntaxError location (no ", in …")
	src    string // printed source line (SyntaxError)
	caret  int    // caret index in src's printer unit, -1 when none
	state  int    // 0: expect source, 1: expect caret, 2: done
}

type pyTraceback struct {
	frames    []*pyFrame
	compiling bool
}

type pySection struct {
	name    string
	locs    []pyLoc
	elines  []string
	emitted bool
}

type pyLoc struct {
	at  loc
	msg string
}

func (h *pyHandler) line(e *event) {
	t := e.text
	if e.m != nil && (e.rule.kind == kPyFrame || e.rule.kind == kPySyntax) {
		if h.tb == nil {
			h.tb = &pyTraceback{compiling: h.compiling}
		}
		f := &pyFrame{at: loc{file: e.m.F, dir: h.p.here(), line: e.m.L, unit: position.CodePoints}, caret: -1}
		if e.rule.kind == kPyFrame {
			f.fn = e.m.M
		} else {
			f.syntax = true
		}
		h.tb.frames = append(h.tb.frames, f)
		return
	}
	if t == "Traceback (most recent call last):" {
		h.tb = &pyTraceback{compiling: h.compiling}
		return
	}
	if h.tb != nil {
		if h.tracebackLine(t) {
			return
		}
		h.tb = nil
	}
	if strings.HasPrefix(t, "*** Error compiling ") {
		h.compiling = true
		return
	}
	if h.pytest {
		h.pytestLine(e)
	}
}

// tracebackLine consumes a line inside a traceback; false means the
// traceback was not well formed and is dropped.
func (h *pyHandler) tracebackLine(t string) bool {
	tb := h.tb
	if strings.HasPrefix(t, " ") || t == "" {
		if n := len(tb.frames); n > 0 && strings.HasPrefix(t, "    ") {
			f := tb.frames[n-1]
			switch {
			case f.state == 0:
				f.src, f.state = t[4:], 1
			case f.state == 1 && f.syntax && strings.Trim(t, " \t^~") == "" && strings.Contains(t, "^"):
				f.caret, f.state = strings.IndexByte(t, '^')-4, 2
			}
		}
		return true
	}
	if len(tb.frames) == 0 || !isExceptionLine(t) {
		return false
	}
	h.finishTraceback(t)
	return true
}

// isExceptionLine recognizes "ValueError: msg", "KeyboardInterrupt",
// "json.decoder.JSONDecodeError: msg".
func isExceptionLine(t string) bool {
	name, _, _ := strings.Cut(t, ":")
	if name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r == '.' && i > 0 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// finishTraceback emits a traceback at its innermost workspace frame.
func (h *pyHandler) finishTraceback(exc string) {
	tb := h.tb
	h.tb, h.compiling = nil, false
	at := len(tb.frames) - 1
	for i := len(tb.frames) - 1; i >= 0; i-- {
		if _, _, inside := h.p.resolve(tb.frames[i].at); inside {
			at = i
			break
		}
	}
	f := tb.frames[at]
	d := &diag{at: f.at, sev: protocol.DiagnosticSeverityError, msg: exc}
	if f.syntax && f.caret >= 0 {
		h.syntaxColumn(d, f, tb.compiling)
	}
	for i := len(tb.frames) - 1; i >= 0; i-- {
		if i != at {
			g := tb.frames[i]
			msg := "in " + g.fn
			if g.fn == "" {
				msg = ""
			}
			d.addRelated(g.at, msg)
		}
	}
	if h.sec != nil {
		h.sec.emitted = true
	}
	h.p.emit(d)
}

// syntaxColumn sets d's column from a SyntaxError caret. The printed line
// is the file's line without its leading blanks; CPython 3.11 places the
// caret at a UTF-8 byte index into it: the interpreter's own printer
// (python3 x.py) counts bytes, and compileall/py_compile report a byte
// offset that the traceback module then uses as a character index, clamped
// to the line's length. A clamped caret (at or past the end of a non-ASCII
// line, from compileall) says nothing precise: the diagnostic then covers
// the line.
func (h *pyHandler) syntaxColumn(d *diag, f *pyFrame, clamped bool) {
	src := strings.TrimRight(f.src, " \t\f")
	caret := f.caret
	if clamped && caret >= utf8.RuneCountInString(src) && !isASCII(src) {
		return
	}
	caret = min(max(caret, 0), len(src))
	rel, _, inside := h.p.resolve(f.at)
	if inside {
		if m := h.p.mapper(rel); m != nil {
			orig := strings.TrimRight(string(m.Line(f.at.line-1)), " \t\f")
			if strings.HasSuffix(orig, src) {
				d.at.col = len(orig) - len(src) + caret + 1
				d.at.unit = position.Bytes
				return
			}
		}
	}
	// Without the text: the caret as printed, in the printed line's bytes.
	d.at.col = position.Column([]byte(src), caret, position.CodePoints) + 1
	d.at.unit = position.CodePoints
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// pytestLine handles a line outside tracebacks in pytest mode.
func (h *pyHandler) pytestLine(e *event) {
	t := e.text
	switch {
	case e.m != nil && e.rule.kind == kPytestLoc:
		l := pyLoc{at: loc{file: e.m.F, dir: h.p.here(), line: e.m.L, unit: position.CodePoints}, msg: strings.TrimSpace(e.m.M)}
		if h.sec != nil {
			h.sec.locs = append(h.sec.locs, l)
			return
		}
		d := &diag{at: h.pytestLoc(l.at), sev: protocol.DiagnosticSeverityError, msg: l.msg}
		if strings.Contains(h.banner, "warnings summary") {
			d.sev = protocol.DiagnosticSeverityWarning
		}
		h.p.emit(d)
	case strings.HasPrefix(t, "===") && strings.HasSuffix(t, "==="):
		h.flushSection()
		h.banner = t
	case strings.HasPrefix(t, "___") && strings.HasSuffix(t, "___") && !strings.HasPrefix(t, "_ _"):
		h.flushSection()
		h.sec = &pySection{name: strings.Trim(t, "_ ")}
	case h.sec != nil && (t == "E" || strings.HasPrefix(t, "E ")):
		if len(h.sec.elines) < 64 {
			h.sec.elines = append(h.sec.elines, t[1:])
		}
	case strings.HasPrefix(t, "rootdir: "):
		dir, _, _ := strings.Cut(strings.TrimPrefix(t, "rootdir: "), ",")
		if rel, _, inside := h.p.resolve(loc{file: path.Join(dir, "x"), dir: h.p.here()}); inside {
			h.rootdir, h.hasRootdir = path.Dir(rel), true
			if h.rootdir == "." {
				h.rootdir = ""
			}
		}
	}
}

// pytestLoc resolves a pytest location: relative to the command's
// directory, or to rootdir when the file is not there.
func (h *pyHandler) pytestLoc(at loc) loc {
	if h.hasRootdir && !path.IsAbs(at.file) {
		if rel, _, ok := h.p.resolve(at); !ok || !h.p.exists(rel) {
			alt := at
			alt.dir = h.rootdir
			if rel, _, ok := h.p.resolve(alt); ok && h.p.exists(rel) {
				return alt
			}
		}
	}
	return at
}

// flushSection emits a pytest failure section.
func (h *pyHandler) flushSection() {
	s := h.sec
	h.sec = nil
	if s == nil || s.emitted || len(s.locs) == 0 {
		return
	}
	at := len(s.locs) - 1
	for i := len(s.locs) - 1; i >= 0; i-- {
		s.locs[i].at = h.pytestLoc(s.locs[i].at)
		if _, _, inside := h.p.resolve(s.locs[i].at); inside {
			at = i
			break
		}
	}
	msg := dedent(s.elines)
	if msg == "" {
		msg = s.locs[at].msg
	}
	if msg == "" {
		msg = s.name
	}
	d := &diag{at: s.locs[at].at, sev: protocol.DiagnosticSeverityError, msg: msg}
	for i := len(s.locs) - 1; i >= 0; i-- {
		if i != at {
			d.addRelated(h.pytestLoc(s.locs[i].at), s.locs[i].msg)
		}
	}
	h.p.emit(d)
}

// dedent joins lines after removing their common leading blanks.
func dedent(lines []string) string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if common < 0 || n < common {
			common = n
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		if len(l) >= common && common > 0 {
			l = l[common:]
		}
		b.WriteString(strings.TrimRight(l, " "))
	}
	return strings.TrimSpace(b.String())
}

func (h *pyHandler) end() {
	h.tb = nil
	h.flushSection()
}
