package outputdiag

import (
	"path"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// goHandler reads the output of the go command.
//
//   - Compiler and vet lines ("./x.go:8:20: msg", "vet: x.go:2:23: msg")
//     are relative to the command's directory; columns are bytes. Lines
//     indented by a tab right after one ("\thave (int)") continue its
//     message. Under `go vet`, analyzer findings are warnings and type
//     errors ("vet: " prefix) errors; everything else is an error.
//   - go test messages ("    x_test.go:12: msg") name a file in the
//     package's directory. They are held until the package's result line
//     ("FAIL\texample.com/m/sub\t0.01s", "ok  \t…") says which package they
//     belong to; the import path is mapped to a directory with the module
//     path of the nearest go.mod above the command's directory. A message
//     of a test that then passes or is skipped (-v output logs) is dropped.
//     Lines indented deeper right after a message continue it.
//   - A panic ("panic: msg" or "fatal error: msg", then "goroutine N
//     [running]:" and its frames) becomes one error at the innermost frame
//     inside the workspace, with the other workspace frames as related
//     information.
type goHandler struct {
	p    *parser
	opts formatOpts

	cur *diag // compiler/vet diagnostic that may get continuation lines

	pending []*testMsg
	last    *testMsg // the message continuation lines extend
	test    string   // the test the next messages belong to
	failing bool     // they follow a "--- FAIL" header (non -v output)

	panic *goPanic

	modLoaded      bool
	modRoot, modPC string // module root (workspace-relative) and module path
}

type testMsg struct {
	d      diag
	test   string
	status int // 0 unknown, 1 failing, 2 passed or skipped
	indent int
}

type goPanic struct {
	msg    string
	frames []goFrame
	fn     string // the function line before the next frame
	inG    bool   // inside the first goroutine's trace
	done   bool
}

type goFrame struct {
	at loc
	fn string
}

func (h *goHandler) line(e *event) {
	t := e.text
	if h.panic != nil && h.panicLine(e) {
		return
	}
	if e.m != nil {
		switch e.rule.kind {
		case kGoVet, kGoPos, kGoLine:
			h.flushCur()
			h.last = nil
			sev := protocol.DiagnosticSeverityError
			if h.opts.goVet && e.rule.kind != kGoVet {
				sev = protocol.DiagnosticSeverityWarning
			}
			h.cur = &diag{
				at:  loc{file: e.m.F, dir: h.p.here(), line: e.m.L, col: e.m.C, unit: position.Bytes},
				sev: sev,
				msg: e.m.M,
			}
			return
		case kGoTest:
			if h.opts.goTest {
				h.flushCur()
				tm := &testMsg{
					d:      diag{at: loc{file: e.m.F, line: e.m.L, unit: position.Bytes}, sev: protocol.DiagnosticSeverityError, msg: e.m.M},
					test:   h.test,
					indent: len(t) - len(strings.TrimLeft(t, " ")),
				}
				if h.failing {
					tm.status = 1
				}
				h.pending = append(h.pending, tm)
				h.last = tm
				return
			}
		case kGoFrame:
			return // a frame of a goroutine dump outside a panic
		}
	}
	// Continuation lines.
	if h.cur != nil && strings.HasPrefix(t, "\t") {
		h.cur.appendMsg(strings.TrimSpace(t))
		return
	}
	h.flushCur()
	if h.last != nil {
		ind := len(t) - len(strings.TrimLeft(t, " "))
		trimmed := strings.TrimSpace(t)
		if ind > h.last.indent && trimmed != "" && !strings.HasPrefix(trimmed, "--- ") && !strings.HasPrefix(trimmed, "=== ") {
			h.last.d.appendMsg(trimmed)
			return
		}
		h.last = nil
	}
	switch trimmed := strings.TrimLeft(t, " "); {
	case strings.HasPrefix(t, "panic: ") || strings.HasPrefix(t, "fatal error: "):
		h.panic = &goPanic{msg: t}
	case strings.HasPrefix(trimmed, "--- FAIL: "):
		h.test, h.failing = testName(trimmed[len("--- FAIL: "):]), true
		h.mark(h.test, 1)
	case strings.HasPrefix(trimmed, "--- PASS: ") || strings.HasPrefix(trimmed, "--- SKIP: "):
		name := testName(trimmed[len("--- PASS: "):])
		h.mark(name, 2)
		h.test, h.failing = name, false
	case strings.HasPrefix(trimmed, "=== "):
		if f := strings.Fields(trimmed); len(f) >= 3 {
			h.test, h.failing = f[2], false
		}
	default:
		if pkg, ok := testResult(t); ok {
			h.resolve(pkg)
		}
	}
}

// testName drops the " (0.00s)" after a test name.
func testName(s string) string {
	if i := strings.LastIndex(s, " ("); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// testResult recognizes a package result line of go test: "ok  \tpkg\t0.1s",
// "FAIL\tpkg\t0.1s", "FAIL\tpkg [build failed]", "?   \tpkg\t[no test files]".
func testResult(t string) (string, bool) {
	head, rest, ok := strings.Cut(t, "\t")
	if !ok {
		return "", false
	}
	switch strings.TrimSpace(head) {
	case "ok", "FAIL", "?":
	default:
		return "", false
	}
	pkg, _, _ := strings.Cut(rest, "\t")
	pkg, _, _ = strings.Cut(pkg, " ")
	return pkg, pkg != ""
}

// mark sets the status of pending messages of test name and its subtests
// whose status is still unknown.
func (h *goHandler) mark(name string, status int) {
	for _, tm := range h.pending {
		if tm.status == 0 && (tm.test == name || strings.HasPrefix(tm.test, name+"/")) {
			tm.status = status
		}
	}
}

// resolve emits the pending test messages of package pkg.
func (h *goHandler) resolve(pkg string) {
	dir, ok := h.pkgDir(pkg)
	for _, tm := range h.pending {
		if tm.status == 2 {
			continue
		}
		tm.d.at.dir = h.p.here()
		if ok {
			tm.d.at.dir = dir
		}
		h.p.emit(&tm.d)
	}
	h.pending = h.pending[:0]
	h.last = nil
	h.test, h.failing = "", false
}

// pkgDir maps an import path to a workspace-relative directory through the
// module path of the nearest go.mod at or above the command's directory.
func (h *goHandler) pkgDir(pkg string) (string, bool) {
	if !h.modLoaded {
		h.modLoaded = true
		for d := h.p.dir; ; d = path.Dir(d) {
			if d == "." || d == "/" {
				d = ""
			}
			if data, ok := h.p.text(path.Join(d, "go.mod")); ok {
				h.modRoot, h.modPC = d, modulePath(string(data))
				break
			}
			if d == "" {
				break
			}
		}
	}
	if h.modPC == "" {
		return "", false
	}
	if pkg == h.modPC {
		return h.modRoot, true
	}
	if rest, ok := strings.CutPrefix(pkg, h.modPC+"/"); ok {
		return path.Join(h.modRoot, rest), true
	}
	return "", false
}

// modulePath returns the path of a go.mod's module directive.
func modulePath(gomod string) string {
	for _, l := range strings.Split(gomod, "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '"') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), "\"`")
		}
	}
	return ""
}

// panicLine consumes a line of a panic's report; false hands the line back.
func (h *goHandler) panicLine(e *event) bool {
	pn := h.panic
	t := e.text
	switch {
	case e.m != nil && e.rule.kind == kGoFrame:
		if pn.inG {
			pn.frames = append(pn.frames, goFrame{at: loc{file: e.m.F, dir: h.p.here(), line: e.m.L, unit: position.Bytes}, fn: pn.fn})
		}
		return true
	case strings.HasPrefix(t, "goroutine ") && strings.HasSuffix(t, ":"):
		if len(pn.frames) > 0 {
			h.flushPanic()
			return true
		}
		pn.inG = true
		return true
	case t == "":
		if len(pn.frames) > 0 {
			h.flushPanic()
		}
		return true
	case strings.HasPrefix(t, "[signal ") || strings.HasPrefix(t, "\tpanic: ") || strings.HasPrefix(t, "panic: "):
		if strings.HasPrefix(t, "[signal ") {
			pn.msg += "\n" + t
		}
		return true
	case pn.inG && !strings.HasPrefix(t, "\t") && !strings.HasPrefix(t, "FAIL") && !strings.HasPrefix(t, "exit status"):
		pn.fn = t // a function line: "main.f(...)", "created by …"
		return true
	}
	if pn.inG || len(pn.frames) > 0 {
		h.flushPanic()
		return false
	}
	return true // lines between "panic:" and "goroutine" ([recovered], …)
}

// flushPanic emits the panic at its innermost workspace frame.
func (h *goHandler) flushPanic() {
	pn := h.panic
	h.panic = nil
	if pn == nil || len(pn.frames) == 0 {
		return
	}
	at := -1
	for i, f := range pn.frames {
		if _, _, inside := h.p.resolve(f.at); inside {
			at = i
			break
		}
	}
	if at < 0 {
		h.p.emit(&diag{at: pn.frames[0].at, msg: pn.msg}) // counted as outside
		return
	}
	d := &diag{at: pn.frames[at].at, sev: protocol.DiagnosticSeverityError, msg: pn.msg}
	for i, f := range pn.frames {
		if i == at {
			continue
		}
		if _, _, inside := h.p.resolve(f.at); inside {
			d.addRelated(f.at, strings.TrimSpace("called from "+funcName(f.fn)))
		}
	}
	h.p.emit(d)
}

// funcName trims a trace's function line ("main.f(0x1, ...)") to its name.
func funcName(fn string) string {
	if i := strings.LastIndexByte(fn, '('); i > 0 {
		return fn[:i]
	}
	return fn
}

func (h *goHandler) flushCur() {
	if h.cur != nil {
		h.p.emit(h.cur)
		h.cur = nil
	}
}

func (h *goHandler) end() {
	h.flushCur()
	if h.panic != nil {
		h.flushPanic()
	}
	if len(h.pending) > 0 {
		h.resolve("")
	}
}
