package outputdiag

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/reviewdog/errorformat"
	"github.com/reviewdog/errorformat/fmts"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// kind tells a handler what a rule's line means.
type kind uint8

const (
	kindNone kind = iota

	kGoVet   // "vet: file:l:c: msg": a type error found by go vet
	kGoPos   // "file:l:c: msg"
	kGoLine  // "file:l: msg"
	kGoTest  // "    file:l: msg": go test output, relative to the package dir
	kGoFrame // "\t/abs/file.go:l +0x1d": a goroutine trace frame

	kCInclude // "In file included from file:l," or ":"
	kCFrom    // "                 from file:l," or ":"
	kCPos     // "file:l:c: error: msg" (also any "file:l:c: msg" in auto)
	kCLine    // "file:l: error: msg"

	kRustHeader // "error[E0308]: msg", "warning: msg", "note: msg", "help: msg"
	kRustLoc    // "  --> file:l:c"
	kRustLoc2   // "  ::: file:l:c"
	kRustSub    // "   = note: msg"
	kRustShort  // "file:l:c: error[E0308]: msg" (--message-format=short)

	kTSPos           // "file(l,c): error TS2322: msg"
	kTSPretty        // "file:l:c - error TS2322: msg"
	kTSRelated       // "  file(l,c): msg"
	kTSPrettyRelated // "  file:l:c"

	kPyFrame   // `  File "file", line l, in func`
	kPySyntax  // `  File "file", line l`
	kPytestLoc // "file:l: msg" (pytest's tracebacks and --tb=line)
)

// format is a compiled set of rules plus the handler that interprets them.
type format struct {
	name    string
	rules   []rule
	scanner bool // some rule keeps errorformat state across lines
	// newHandler builds the format's handler; nil means the generic one.
	newHandler func(p *parser, f *format) handler
	subs       []*format // the formats "auto" combines
	opts       formatOpts
}

// formatOpts are what the command line tells a handler.
type formatOpts struct {
	goTest, goVet bool
	unit          position.Unit // gcc: DisplayColumns, or Bytes for clang / -fdiagnostics-column-unit=byte
	byExtension   bool          // units by file extension (auto)
	pytest        bool
}

// builtin defines one of our formats.
type builtin struct {
	name    string
	desc    string
	rules   []string
	kinds   []kind
	handler func(p *parser, f *format) handler
}

var builtins = []builtin{
	{
		name:  "go",
		desc:  "go build, go vet, go run, go install, go test: compiler and vet diagnostics (paths relative to the command's directory, bytes), go test failures (paths relative to the package directory), panics (innermost frame in the workspace)",
		rules: []string{`vet: %f:%l:%c: %m`, `%*[ ]%f:%l: %m`, `%*[	]%f:%l +0x%m`, `%*[	]%f:%l`, `%f:%l:%c: %m`, `%f:%l: %m`},
		kinds: []kind{kGoVet, kGoTest, kGoFrame, kGoFrame, kGoPos, kGoLine},
		handler: func(p *parser, f *format) handler {
			return &goHandler{p: p, opts: f.opts}
		},
	},
	{
		name:  "gcc",
		desc:  "gcc, g++, clang: errors, warnings and notes (notes become related information), include chains; display columns (gcc) or bytes (clang, -fdiagnostics-column-unit=byte)",
		rules: []string{`In file included from %f:%l%[,:]`, `%*[ ]from %f:%l%[,:]`, `%f:%l:%c: %m`, `%f:%l: %m`},
		kinds: []kind{kCInclude, kCFrom, kCPos, kCLine},
		handler: func(p *parser, f *format) handler {
			return &gccHandler{p: p, unit: f.opts.unit, byExt: f.opts.byExtension}
		},
	},
	{
		name:  "rustc",
		desc:  "cargo and rustc, human and short formats: \"error[E…]: msg\" with its \"-->\" line; notes and help with a location become related information; code points",
		rules: []string{`%*[ ]--> %f:%l:%c`, `%*[ ]::: %f:%l:%c`, `%*[ ]= %t%*[a-z]: %m`, `%trror[E%n]: %m`, `%t%*[a-z]: %m`, `%f:%l:%c: %m`},
		kinds: []kind{kRustLoc, kRustLoc2, kRustSub, kRustHeader, kRustHeader, kRustShort},
		handler: func(p *parser, f *format) handler {
			return &rustHandler{p: p}
		},
	},
	{
		name:  "tsc",
		desc:  "TypeScript compiler, plain and --pretty; related information; UTF-16 code units",
		rules: []string{`%f(%l,%c): %t%*[a-z] TS%n: %m`, `%f:%l:%c - %t%*[a-z] TS%n: %m`, `%*[ ]%f(%l,%c): %m`, `%*[ ]%f:%l:%c`},
		kinds: []kind{kTSPos, kTSPretty, kTSRelated, kTSPrettyRelated},
		handler: func(p *parser, f *format) handler {
			return &tscHandler{p: p}
		},
	},
	{
		name:  "python",
		desc:  "Python tracebacks (innermost frame in the workspace, message = the exception line), SyntaxError with its caret, compileall and unittest output; code points",
		rules: []string{`%*[ ]File "%f", line %l, in %m`, `%*[ ]File "%f", line %l`},
		kinds: []kind{kPyFrame, kPySyntax},
		handler: func(p *parser, f *format) handler {
			return &pyHandler{p: p}
		},
	},
	{
		name:  "pytest",
		desc:  "pytest failures and collection errors (--tb=long, short, line, native): innermost location in the workspace, message = the E lines; plus Python tracebacks",
		rules: []string{`%*[ ]File "%f", line %l, in %m`, `%*[ ]File "%f", line %l`, `%f:%l:%m`},
		kinds: []kind{kPyFrame, kPySyntax, kPytestLoc},
		handler: func(p *parser, f *format) handler {
			return &pyHandler{p: p, pytest: true}
		},
	},
}

// autoParts are the formats combined by "auto" (make, npm scripts, unknown
// commands), in rule order.
var autoParts = []string{"tsc", "rustc", "python", "gcc"}

// FormatInfo describes a format Parse can use.
type FormatInfo struct {
	Name        string
	Description string
	Errorformat []string // the errorformat lines it matches with
}

// Formats lists our formats. Besides these, Spec.Format accepts every name
// errorformat predefines (fmts.DefinedFmts: "mypy", "flake8", "eslint",
// "eslint-compact", "golangci-lint", …).
//
// The command chooses the format: go → "go" (test and vet are noted);
// gcc, g++, cc, c++, clang, clang++ (any prefix or version suffix) → "gcc";
// cargo, rustc → "rustc"; tsc, vue-tsc → "tsc"; eslint → errorformat's
// "eslint" (stylish) or "eslint-compact" for -f/--format compact;
// python -m pytest, pytest → "pytest"; python -m MODULE where errorformat
// defines MODULE (mypy, flake8, …) → that format; other python commands →
// "python"; a program errorformat defines a format for → that format;
// npm/pnpm/yarn/bun test|run SCRIPT → the script's command from
// package.json; anything else (make, sh scripts, …) → "auto", the union of
// tsc, rustc, python and gcc (with units by file extension: .go bytes;
// .c/.h/.cc/.cpp/… display columns; .rs and .py code points; .ts/.js/…
// UTF-16; otherwise bytes), which also follows make's "Entering directory"
// lines.
func Formats() []FormatInfo {
	var out []FormatInfo
	for _, b := range builtins {
		out = append(out, FormatInfo{Name: b.name, Description: b.desc, Errorformat: slices.Clone(b.rules)})
	}
	var rules []string
	for _, n := range autoParts {
		for _, b := range builtins {
			for i, r := range b.rules {
				if b.name == n && b.kinds[i] != kRustShort {
					rules = append(rules, r)
				}
			}
		}
	}
	out = append(out, FormatInfo{Name: "auto", Description: "make, npm scripts and unknown commands: tsc, rustc, python and gcc formats together, units by file extension, make's directory tracking", Errorformat: rules})
	return out
}

var (
	compileOnce sync.Once
	compiled    map[string]*format
	compileErr  error
)

// builtinFormat returns a fresh copy of a compiled built-in format (the
// rules are shared and read-only; options are per call).
func builtinFormat(name string) (*format, error) {
	compileOnce.Do(func() {
		compiled = map[string]*format{}
		for _, b := range builtins {
			rules, err := compileRules(b.rules, b.kinds)
			if err != nil {
				compileErr = fmt.Errorf("outputdiag: built-in format %s: %w", b.name, err)
				return
			}
			compiled[b.name] = &format{name: b.name, rules: rules, newHandler: b.handler}
		}
		auto := &format{name: "auto", newHandler: newAutoHandler}
		for i, n := range autoParts {
			sub := compiled[n]
			auto.subs = append(auto.subs, sub)
			for _, r := range sub.rules {
				if r.kind == kRustShort {
					continue // gcc's "file:l:c: msg" rule reads these lines in auto
				}
				r.owner = i
				auto.rules = append(auto.rules, r)
			}
		}
		compiled["auto"] = auto
	})
	if compileErr != nil {
		return nil, compileErr
	}
	f, ok := compiled[name]
	if !ok {
		return nil, nil
	}
	c := *f
	return &c, nil
}

// userFormat compiles raw errorformat lines (a setting or a predefined
// errorformat format).
func userFormat(name string, lines []string) (*format, error) {
	rules, err := compileRules(lines, nil)
	if err != nil {
		return nil, fmt.Errorf("outputdiag: %w", err)
	}
	f := &format{name: name, rules: rules}
	f.scanner = slices.ContainsFunc(rules, func(r rule) bool { return r.multiline() })
	return f, nil
}

// namedFormat resolves a format name: ours first, then errorformat's.
func namedFormat(name string) (*format, error) {
	f, err := builtinFormat(name)
	if err != nil || f != nil {
		return f, err
	}
	if d, ok := fmts.DefinedFmts()[name]; ok {
		return userFormat(name, d.Errorformat)
	}
	return nil, fmt.Errorf("outputdiag: %w %q (ours: go, gcc, rustc, tsc, python, pytest, auto; or an errorformat predefined name)", errNoFormat, name)
}

// chooseFormat picks the format from the Spec and the command, and sets
// the tool's column unit.
func (p *parser) chooseFormat() (*format, error) {
	c := p.effectiveCommand()
	p.unit, p.known = toolUnit(c)
	var f *format
	var err error
	switch {
	case len(p.spec.Errorformat) > 0:
		f, err = userFormat("errorformat", p.spec.Errorformat)
	case p.spec.Format != "":
		f, err = namedFormat(p.spec.Format)
	default:
		f, err = namedFormat(formatFor(c))
	}
	if err != nil {
		return nil, err
	}
	f.opts = optsFor(c, f.name)
	return f, nil
}

// effectiveCommand is the command whose output we read: `npm test` and
// `npm run x` stand for the script package.json defines, when it is a
// single command.
func (p *parser) effectiveCommand() command {
	c := p.cmd
	for depth := 0; depth < 3; depth++ {
		script, ok := p.npmScript(c)
		if !ok {
			break
		}
		sc := analyzeCommand(script)
		if len(sc.argv) == 0 || len(sc.rest) > 0 {
			break
		}
		c = sc
	}
	return c
}

// toolName is the diagnostics' code: the effective command's program.
func (p *parser) toolName() string {
	if p.res.Tool != "" {
		return p.res.Tool
	}
	p.res.Tool = p.effectiveCommand().tool()
	return p.res.Tool
}

// npmScript returns the package.json script an npm-like command runs.
func (p *parser) npmScript(c command) (string, bool) {
	args := c.args()
	var name string
	switch c.tool() {
	case "npm", "pnpm", "yarn", "bun":
		if len(args) == 0 {
			return "", false
		}
		switch args[0] {
		case "test", "t", "tst":
			name = "test"
		case "run", "run-script", "rum", "urn":
			if len(args) < 2 {
				return "", false
			}
			name = args[1]
		default:
			if c.tool() == "npm" {
				return "", false
			}
			name = args[0] // yarn/pnpm/bun SCRIPT
		}
	default:
		return "", false
	}
	data, ok := p.text(path.Join(p.dir, c.dir, "package.json"))
	if !ok {
		return "", false
	}
	var pkg struct {
		Scripts map[string]string `json:"scripts"`
	}
	if json.Unmarshal(data, &pkg) != nil {
		return "", false
	}
	s, ok := pkg.Scripts[name]
	return s, ok && strings.TrimSpace(s) != ""
}

// formatFor names the format a command's output is read with.
func formatFor(c command) string {
	tool := c.tool()
	args := c.args()
	switch {
	case tool == "go":
		return "go"
	case isCCompiler(tool):
		return "gcc"
	case tool == "cargo" || tool == "rustc" || strings.HasPrefix(tool, "cargo-"):
		return "rustc"
	case tool == "tsc" || tool == "vue-tsc":
		return "tsc"
	case tool == "eslint":
		for i, a := range args {
			if (a == "-f" || a == "--format") && i+1 < len(args) && args[i+1] == "compact" || a == "--format=compact" {
				return "eslint-compact"
			}
		}
		return "eslint"
	case tool == "pytest" || tool == "py.test":
		return "pytest"
	case isPython(tool):
		mod := pythonModule(args)
		switch {
		case mod == "pytest":
			return "pytest"
		case mod != "" && fmts.DefinedFmts()[mod] != nil:
			return mod
		}
		return "python"
	case fmts.DefinedFmts()[tool] != nil:
		return tool
	}
	return "auto"
}

// optsFor derives handler options from the command.
func optsFor(c command, format string) formatOpts {
	o := formatOpts{unit: position.DisplayColumns}
	tool := c.tool()
	if tool == "go" {
		for _, cc := range append([]command{c}, c.rest...) {
			if cc.tool() != "go" || len(cc.args()) == 0 {
				continue
			}
			switch cc.args()[0] {
			case "test":
				o.goTest = true
			case "vet":
				o.goVet = true
			}
		}
		if o.goTest {
			o.goVet = false
		}
	}
	if u, ok := toolUnit(c); ok && isCCompiler(tool) {
		o.unit = u
	}
	o.byExtension = format == "auto"
	o.pytest = format == "pytest"
	return o
}

// toolUnit is the column unit a tool prints, when we know it.
func toolUnit(c command) (position.Unit, bool) {
	tool := c.tool()
	switch {
	case tool == "go" || tool == "gofmt" || tool == "staticcheck" || tool == "golangci-lint" || tool == "golint" || tool == "revive":
		return position.Bytes, true
	case isCCompiler(tool):
		if strings.Contains(tool, "clang") {
			return position.Bytes, true
		}
		for _, a := range c.args() {
			if a == "-fdiagnostics-column-unit=byte" {
				return position.Bytes, true
			}
		}
		return position.DisplayColumns, true
	case tool == "cargo" || tool == "rustc" || strings.HasPrefix(tool, "cargo-"):
		return position.CodePoints, true
	case tool == "tsc" || tool == "vue-tsc" || tool == "eslint" || tool == "tslint" || tool == "standard":
		return position.UTF16Units, true
	case isPython(tool) || tool == "pytest" || tool == "mypy" || tool == "flake8" || tool == "pycodestyle" || tool == "pylint" || tool == "ruff":
		return position.CodePoints, true
	}
	return position.Bytes, false
}

// unitByExtension guesses the column unit of a file's diagnostics from its
// extension, for outputs whose tool is unknown.
func unitByExtension(file string) position.Unit {
	switch strings.ToLower(path.Ext(file)) {
	case ".c", ".h", ".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".m", ".mm", ".i", ".ii":
		return position.DisplayColumns
	case ".rs", ".py", ".pyi":
		return position.CodePoints
	case ".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".vue", ".svelte":
		return position.UTF16Units
	}
	return position.Bytes
}

// unitFor is the unit of a generic diagnostic's columns in file.
func (p *parser) unitFor(file string, vcol bool) position.Unit {
	switch {
	case p.known:
		return p.unit
	case vcol:
		return position.DisplayColumns
	}
	return unitByExtension(file)
}

func isCCompiler(tool string) bool {
	t := strings.TrimSuffix(tool, ".exe")
	if i := strings.LastIndexByte(t, '-'); i > 0 && strings.Trim(t[i+1:], "0123456789.") == "" {
		t = t[:i] // gcc-12, clang-16
	}
	if i := strings.LastIndexByte(t, '-'); i >= 0 {
		t = t[i+1:] // x86_64-linux-gnu-gcc
	}
	switch t {
	case "gcc", "g++", "cc", "c++", "clang", "clang++", "cpp":
		return true
	}
	return false
}

func isPython(tool string) bool {
	return tool == "python" || strings.HasPrefix(tool, "python3") || strings.HasPrefix(tool, "python2") || tool == "pypy" || tool == "pypy3"
}

// pythonModule returns the module of `python [options] -m MODULE`.
func pythonModule(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-m" && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "-m") && len(a) > 2:
			return a[2:]
		case a == "-W" || a == "-X":
			i++
		case !strings.HasPrefix(a, "-"):
			return "" // a script
		}
	}
	return ""
}

// severityWord recognizes a leading "error:", "warning:", … in a message,
// case-insensitively, with an optional bracketed code ("error[E0308]:").
// It returns the severity, the code and the rest of the message.
func severityWord(msg string) (sev protocol.DiagnosticSeverity, code, rest string, ok bool) {
	colon := strings.Index(msg, ": ")
	if colon < 0 {
		if !strings.HasSuffix(msg, ":") {
			return 0, "", msg, false
		}
		colon = len(msg) - 1
	}
	word := msg[:colon]
	if i := strings.IndexByte(word, '['); i > 0 && strings.HasSuffix(word, "]") {
		code = word[i+1 : len(word)-1]
		word = word[:i]
	}
	sev, ok = severityOf(word)
	if !ok {
		return 0, "", msg, false
	}
	return sev, code, strings.TrimLeft(msg[min(colon+1, len(msg)):], " "), true
}

// severityOf maps a tool's word for a severity.
func severityOf(word string) (protocol.DiagnosticSeverity, bool) {
	switch strings.ToLower(word) {
	case "error", "fatal error", "fatal", "failure", "err":
		return protocol.DiagnosticSeverityError, true
	case "warning", "warn":
		return protocol.DiagnosticSeverityWarning, true
	case "note", "info", "information", "remark":
		return protocol.DiagnosticSeverityInformation, true
	case "help", "hint", "suggestion":
		return protocol.DiagnosticSeverityHint, true
	}
	return 0, false
}

// severityOfType maps errorformat's %t (first letter of the tool's word,
// in whatever case it printed: 'e', 'E', 'w', …).
func severityOfType(t rune) (protocol.DiagnosticSeverity, bool) {
	switch t {
	case 'e', 'E', 'f', 'F':
		return protocol.DiagnosticSeverityError, true
	case 'w', 'W':
		return protocol.DiagnosticSeverityWarning, true
	case 'i', 'I', 'n', 'N', 'r', 'R':
		return protocol.DiagnosticSeverityInformation, true
	case 'h', 'H', 's', 'S':
		return protocol.DiagnosticSeverityHint, true
	}
	return 0, false
}

// genericDiag builds a diagnostic from an errorformat match of a format we
// know nothing more about: severity from %t, else from a leading word in
// the message, else error.
func (p *parser) genericDiag(file string, lnum, col, endLnum, endCol int, vcol bool, typ rune, text string) *diag {
	d := &diag{
		at:  loc{file: file, dir: p.here(), line: lnum, col: col, endLine: endLnum, endCol: endCol, unit: p.unitFor(file, vcol)},
		msg: text,
	}
	if sev, ok := severityOfType(typ); ok {
		d.sev = sev
	} else if sev, _, rest, ok := severityWord(text); ok {
		d.sev, d.msg = sev, rest
	}
	return d
}

// genericHandler reads single-line user and predefined formats.
type genericHandler struct{ p *parser }

func (h *genericHandler) line(e *event) {
	if e.m == nil || e.m.F == "" || e.rule.prefix == 'G' {
		return
	}
	m := e.m
	text := m.M
	if e.rule.plus {
		text = e.text
	}
	col, vcol := m.C, false
	if m.P != "" || m.V != 0 {
		vcol = true
		col = max(m.V, col)
		if m.P != "" {
			col = position.Column([]byte(m.P), len(m.P), position.DisplayColumns) + 1
		}
	}
	h.p.emit(h.p.genericDiag(m.F, m.L, col, m.E, m.K, vcol, rune(m.T), squeeze(text)))
}

// squeeze collapses runs of blanks in a one-line message (ESLint's stylish
// format pads its columns with spaces).
func squeeze(s string) string {
	if !strings.Contains(s, "  ") || strings.Contains(s, "\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func (h *genericHandler) end() {}

// entryHandler reads the entries of errorformat's Scanner (multi-line
// formats).
type entryHandler struct {
	p *parser
	f *format
}

func (h *entryHandler) entry(e *errorformat.Entry) {
	if e.Filename == "" {
		return
	}
	h.p.emit(h.p.genericDiag(e.Filename, e.Lnum, e.Col, e.EndLnum, e.EndCol, e.Vcol, e.Type, squeeze(e.Text)))
}

// newHandler returns the format's handler.
func (f *format) handler(p *parser) handler {
	if f.newHandler != nil {
		return f.newHandler(p, f)
	}
	return &genericHandler{p: p}
}
