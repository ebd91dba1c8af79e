package outputdiag

import (
	"strconv"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// tscHandler reads the TypeScript compiler's output, plain
//
//	src/main.ts(4,1): error TS2554: Expected 2 arguments, but got 1.
//	  Continuation of the message chain.
//	  src/greet.ts(1,37): An argument for 'times' was not provided.
//
// and --pretty (colours stripped):
//
//	src/main.ts:4:1 - error TS2554: Expected 2 arguments, but got 1.
//
//	4 greet("x");
//	  ~~~~~
//
//	  src/greet.ts:1:37
//	    1 export function greet(name: string, times: number): string {
//	                                          ~~~~~~~~~~~~~
//	    An argument for 'times' was not provided.
//
// Indented lines right after the header continue the message; related
// locations become related information. Columns are UTF-16 code units. The
// TS code is kept at the end of the message: "… [TS2554]".
type tscHandler struct {
	p        *parser
	cur      *diag
	pretty   bool
	inHeader bool // continuation lines may follow
	rel      *loc // pretty related location waiting for its message
}

func (h *tscHandler) line(e *event) {
	t := e.text
	if e.m != nil {
		m := e.m
		at := loc{file: m.F, dir: h.p.here(), line: m.L, col: m.C, unit: position.UTF16Units}
		switch e.rule.kind {
		case kTSPos, kTSPretty:
			h.flush()
			sev, ok := severityOfType(rune(m.T))
			if m.T == 'm' { // "message"
				sev, ok = protocol.DiagnosticSeverityInformation, true
			}
			if !ok {
				sev = protocol.DiagnosticSeverityError
			}
			h.cur = &diag{at: at, sev: sev, msg: withCode(m.M, "TS"+strconv.Itoa(m.N))}
			h.pretty, h.inHeader = e.rule.kind == kTSPretty, true
			return
		case kTSRelated:
			if h.cur != nil {
				h.cur.addRelated(at, m.M)
				h.inHeader = false
				return
			}
		case kTSPrettyRelated:
			if h.cur != nil && h.pretty {
				h.rel, h.inHeader = &at, false
				return
			}
		}
	}
	if h.cur == nil {
		return
	}
	trimmed := strings.TrimSpace(t)
	indented := strings.HasPrefix(t, " ")
	switch {
	case h.rel != nil && indented && trimmed != "":
		if !tsSourceLine(trimmed) {
			h.cur.addRelated(*h.rel, trimmed)
			h.rel = nil
		}
	case h.inHeader && indented && trimmed != "":
		h.cur.appendMsg(trimmed)
	case trimmed == "":
		h.inHeader = false
	case !h.pretty && !indented, strings.HasPrefix(t, "Found "):
		h.flush()
	default:
		h.inHeader = false
	}
}

// tsSourceLine recognizes the source excerpt lines of pretty output: "12 code"
// and squiggle lines ("~~~~").
func tsSourceLine(s string) bool {
	if strings.Trim(s, "~ ") == "" {
		return true
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i > 0 && (i == len(s) || s[i] == ' ')
}

func (h *tscHandler) flush() {
	if h.cur != nil {
		if h.rel != nil {
			h.cur.addRelated(*h.rel, "")
		}
		h.p.emit(h.cur)
	}
	h.cur, h.rel, h.inHeader = nil, nil, false
}

func (h *tscHandler) end() { h.flush() }
