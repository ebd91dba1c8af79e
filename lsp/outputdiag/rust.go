package outputdiag

import (
	"strings"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// rustHandler reads rustc's human format (what cargo prints by default):
//
//	error[E0308]: mismatched types
//	 --> src/main.rs:4:40
//	  |
//	4 |     let x: i32 = "a";
//	  |                  ^^^ expected `i32`, found `&str`
//	  |
//	note: function defined here
//	 --> src/util.rs:1:8
//	help: remove the extra argument
//	   = note: `#[warn(unused_variables)]` on by default
//
// An "error"/"warning" header takes the location of the first "-->" line
// after it; "note:"/"help:" children with their own "-->" become related
// information, those without one (and "= note:" lines) are appended to the
// message. A blank line ends the diagnostic; a header that never gets a
// location ("error: could not compile …") is dropped. The short format
// (--message-format=short: "src/main.rs:4:40: error[E0308]: msg") is read
// too. Columns are code points. The rustc code is kept at the end of the
// message: "mismatched types [E0308]".
type rustHandler struct {
	p      *parser
	cur    *diag
	hasLoc bool
	child  string // a note/help header waiting for its location
	inKid  bool
}

func (h *rustHandler) line(e *event) {
	if e.m == nil {
		if strings.TrimSpace(e.text) == "" {
			h.flush()
		}
		return
	}
	m := e.m
	switch e.rule.kind {
	case kRustHeader:
		word, code, rest, ok := rustHeader(e.text)
		if !ok {
			return
		}
		switch word {
		case "error", "warning":
			h.flush()
			sev, _ := severityOf(word)
			h.cur = &diag{sev: sev, msg: withCode(rest, code)}
		case "note", "help":
			if h.cur != nil {
				h.endChild()
				h.child, h.inKid = word+": "+rest, true
			}
		}
	case kRustLoc:
		at := loc{file: m.F, dir: h.p.here(), line: m.L, col: m.C, unit: position.CodePoints}
		switch {
		case h.cur == nil:
		case h.inKid:
			h.cur.addRelated(at, h.child)
			h.child, h.inKid = "", false
		case !h.hasLoc:
			h.cur.at, h.hasLoc = at, true
		default:
			h.cur.addRelated(at, "")
		}
	case kRustLoc2:
		if h.cur != nil {
			h.cur.addRelated(loc{file: m.F, dir: h.p.here(), line: m.L, col: m.C, unit: position.CodePoints}, "")
		}
	case kRustSub:
		if h.cur != nil {
			h.cur.appendMsg(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(e.text), "=")))
		}
	case kRustShort:
		sev, code, rest, ok := severityWord(m.M)
		if !ok {
			return
		}
		h.flush()
		h.p.emit(&diag{
			at:  loc{file: m.F, dir: h.p.here(), line: m.L, col: m.C, unit: position.CodePoints},
			sev: sev,
			msg: withCode(rest, code),
		})
	}
}

// rustHeader splits "error[E0308]: msg" into its word, code and message.
func rustHeader(line string) (word, code, rest string, ok bool) {
	head, rest, ok := strings.Cut(line, ": ")
	if !ok {
		return "", "", "", false
	}
	word = head
	if i := strings.IndexByte(head, '['); i > 0 && strings.HasSuffix(head, "]") {
		word, code = head[:i], head[i+1:len(head)-1]
	}
	switch word {
	case "error", "warning", "note", "help":
		return word, code, rest, true
	}
	return "", "", "", false
}

func withCode(msg, code string) string {
	if code == "" {
		return msg
	}
	return msg + " [" + code + "]"
}

// endChild appends a note/help that got no location to the message.
func (h *rustHandler) endChild() {
	if h.inKid && h.cur != nil {
		h.cur.appendMsg(h.child)
	}
	h.child, h.inKid = "", false
}

func (h *rustHandler) flush() {
	h.endChild()
	if h.cur != nil && h.hasLoc {
		h.p.emit(h.cur)
	}
	h.cur, h.hasLoc = nil, false
}

func (h *rustHandler) end() { h.flush() }
