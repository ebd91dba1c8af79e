package outputdiag

import (
	"fmt"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// gccHandler reads gcc and clang output.
//
//   - "file:l:c: error: msg" (also "fatal error", "warning", "remark")
//     starts a diagnostic; the "note: " lines after it become its related
//     information (a note with nothing before it is a diagnostic of its
//     own, severity information). Source and caret lines are skipped.
//   - "In file included from a.h:1," / "from main.c:2:" lines are the
//     include chain of the diagnostics that follow in the included file:
//     each include site becomes related information; an error in a header
//     outside the workspace (/usr/include) moves to the innermost include
//     site inside the workspace.
//   - Columns are display columns (gcc's default: a tab advances to the
//     next multiple of 8, wide characters take two cells) or bytes (clang,
//     -fdiagnostics-column-unit=byte); in "auto" they follow the file's
//     extension, and a "file:l:c: msg" line without a severity word is an
//     error too.
type gccHandler struct {
	p     *parser
	unit  position.Unit
	byExt bool

	cur      *diag
	curIncl  []loc // include chain of cur
	chain    []loc // the latest include chain, direct includer first
	reading  bool  // chain lines are being read
	chainFor string
}

func (h *gccHandler) line(e *event) {
	if e.m == nil {
		return // source, caret, "In function", "At top level" lines
	}
	m := e.m
	switch e.rule.kind {
	case kCInclude:
		h.flush()
		h.chain = []loc{{file: m.F, dir: h.p.here(), line: m.L}}
		h.reading = true
		return
	case kCFrom:
		if h.reading {
			h.chain = append(h.chain, loc{file: m.F, dir: h.p.here(), line: m.L})
		}
		return
	case kCPos, kCLine:
	default:
		return
	}
	at := loc{file: m.F, dir: h.p.here(), line: m.L, col: m.C, unit: h.unit}
	if h.byExt {
		at.unit = unitByExtension(m.F)
	}
	sev, _, rest, ok := severityWord(m.M)
	if !ok {
		if !h.byExt || strings.HasPrefix(m.M, " ") {
			return // template instantiation context ("  required from here") and the like
		}
		sev, rest = protocol.DiagnosticSeverityError, m.M
	}
	if strings.HasPrefix(strings.ToLower(m.M), "note:") {
		if h.cur != nil {
			h.cur.addRelated(at, rest)
			return
		}
	}
	h.flush()
	switch {
	case h.reading:
		h.reading, h.chainFor = false, m.F
	case h.chainFor != m.F:
		h.chain, h.chainFor = nil, ""
	}
	h.cur = &diag{at: at, sev: sev, msg: rest}
	h.curIncl = h.chain
}

// flush emits the current diagnostic with its include chain.
func (h *gccHandler) flush() {
	d := h.cur
	if d == nil {
		return
	}
	h.cur = nil
	if _, _, inside := h.p.resolve(d.at); !inside {
		// An error inside a header outside the workspace: show it at the
		// innermost include site we own.
		for i, site := range h.curIncl {
			if _, _, ok := h.p.resolve(site); ok {
				moved := &diag{
					at:  site,
					sev: d.sev,
					msg: fmt.Sprintf("%s (in included file %s:%d)", d.msg, d.at.file, d.at.line),
				}
				moved.addRelated(d.at, d.msg)
				moved.related = append(moved.related, d.related...)
				for _, outer := range h.curIncl[i+1:] {
					moved.addRelated(outer, "included from here")
				}
				h.p.emit(moved)
				return
			}
		}
		h.p.emit(d)
		return
	}
	for _, site := range h.curIncl {
		d.addRelated(site, "included from here")
	}
	h.p.emit(d)
}

func (h *gccHandler) end() { h.flush() }
