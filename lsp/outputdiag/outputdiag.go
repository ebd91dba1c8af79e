// Package outputdiag turns the output of a command run in a sandbox (a
// compiler, a linter, a test runner) into LSP diagnostics on the workspace's
// files, as the editor contract's `opencode.run` requires.
//
// Parse reads the output as a stream and:
//
//   - cleans every line: "\n", "\r\n" and lone "\r" end lines, ANSI/OSC escape
//     sequences are removed, invalid UTF-8 becomes U+FFFD, and a line is cut
//     to MaxLineBytes (its head is kept), so errorformat's 64 KiB line limit
//     is never hit and a huge line costs bounded memory;
//   - matches lines with errorformat (github.com/reviewdog/errorformat): the
//     format is chosen from the command (see [Formats]), or given by name
//     (our formats or errorformat's predefined ones, fmts.DefinedFmts), or
//     given as raw errorformat lines (a setting);
//   - lets the format's handler assemble diagnostics from what the lines
//     mean: gcc notes and "In file included from" chains, rustc's "-->"
//     lines and child notes, tsc related information, Python tracebacks
//     (innermost frame in the workspace), pytest failures, go test's
//     per-package file names, Go panics;
//   - maps paths to workspace URIs: absolute paths under the sandbox's
//     working copy, paths relative to the command's directory (or a
//     `cd DIR &&` in the command, or make's "Entering directory"), and go
//     test's paths relative to the package directory; paths outside the
//     workspace (GOROOT, /usr/include, site-packages) never get a primary
//     diagnostic but may appear as related information;
//   - converts each tool's column unit (Go: bytes; tsc, ESLint: UTF-16 code
//     units; rustc, Python: code points; gcc: display columns, or bytes with
//     -fdiagnostics-column-unit=byte) to the negotiated position encoding
//     with package position, using the text the tool saw.
//
// Every diagnostic has Source "opencode" and Code = the tool (see [Tool]).
//
// Matching follows errorformat's semantics exactly: lines of formats with
// multi-line state go through errorformat's Scanner; other lines are
// matched rule by rule, with a literal prefilter and, for the common items
// (%f %l %c %m %t %n, classes), a regexp-free matcher that reproduces
// errorformat's expressions (differential tests against errorformat guard
// both), so throughput is not bound by the regexp engine.
//
// Known limits: errorformat's %f cannot match a path containing a space
// (only "\ "), so such files get no diagnostics; `go test -json` output is
// not decoded (plain `go test` is); "auto" does not include ESLint's
// stylish format or go test's per-package messages; a Python SyntaxError
// caret is read as CPython 3.11 and 3.12 place it (see pyHandler).
package outputdiag

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/reviewdog/errorformat"
	"github.com/sourcegraph/conc/stream"
	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// Limits that keep memory bounded however much a command prints.
const (
	// MaxDiagnostics is the default cap on kept diagnostics; the rest are
	// counted in Result.Truncated.
	MaxDiagnostics = 10000
	// MaxLineBytes is the longest line kept; longer lines keep their head
	// (counted in Result.LongLines).
	MaxLineBytes = 8 << 10
	// maxMessage caps one diagnostic's message (continuation lines).
	maxMessage = 4 << 10
	// maxRelated caps the related information of one diagnostic.
	maxRelated = 16
	// maxListed caps Result.Outside and Result.Unconverted.
	maxListed = 100
	// maxMapped caps the bytes of file text kept for column conversion.
	maxMapped = 64 << 20
	// chunkBytes is how much output one parallel matching task takes.
	chunkBytes = 64 << 10
)

// Source is the `source` of every diagnostic (editor contract).
const Source = "opencode"

// Spec says how to read one command's output.
type Spec struct {
	// Command is the command line as run; it chooses the format (unless
	// Format or Errorformat is set) and the diagnostics' `code` (see Tool).
	Command string
	// Args is the command in argv form; when set it is used instead of
	// Command for the analysis (no shell syntax is interpreted).
	Args []string
	// Format names the format to use instead of the one the command
	// implies: one of ours (see Formats) or an errorformat predefined name
	// ("mypy", "flake8", "eslint-compact", …). Ignored when Errorformat is
	// set.
	Format string
	// Errorformat, when not empty, is a list of raw errorformat lines (a
	// setting) used instead of any format. Column units: the tool's own
	// when the command names a known tool, display columns for %v and %p,
	// otherwise by file extension (see Formats), bytes when unknown. An end
	// column from %k is inclusive.
	Errorformat []string
	// SandboxRoot is the absolute path of the working copy as the tool
	// printed it (sandbox.Sandbox.Root()); absolute paths under it are
	// workspace files.
	SandboxRoot string
	// Dir is the workspace-relative, slash-separated directory the command
	// ran in ("" = the workspace root).
	Dir string
	// WorkspaceRoot is the absolute host path of the workspace; URIs are
	// file:// URIs under it.
	WorkspaceRoot string
	// Encoding is the negotiated position encoding; "" means UTF-16.
	Encoding position.Encoding
	// MaxDiagnostics overrides the cap on kept diagnostics (0 = the
	// package's MaxDiagnostics).
	MaxDiagnostics int
}

// TextSource returns the text the tool saw for a workspace-relative,
// slash-separated path: the working copy's file, or the unsaved editor
// buffer that was synced in its place. It returns false when the file is not
// available; columns in that file are then used as printed (and the path is
// listed in Result.Unconverted). It is called from one goroutine at a time,
// at most once per path while the path stays in a bounded cache.
type TextSource func(path string) ([]byte, bool)

// Result is what one command's output produced.
type Result struct {
	// ByURI holds the diagnostics per file URI, each list sorted by
	// position. Files without diagnostics are absent (the caller clears
	// them).
	ByURI map[protocol.DocumentURI][]protocol.Diagnostic
	// Tool is the `code` given to the diagnostics.
	Tool string
	// Format is the name of the format used ("go", "gcc", …, "errorformat"
	// for raw lines).
	Format string
	// Outside lists paths, as the tool printed them, that are not in the
	// workspace and whose diagnostics were dropped (sorted, at most 100).
	Outside []string
	// Unconverted lists workspace paths whose text was not available:
	// their columns are used as printed, in the tool's unit (sorted, at
	// most 100).
	Unconverted []string
	// Lines is the number of output lines read.
	Lines int
	// LongLines counts lines cut to MaxLineBytes.
	LongLines int
	// Truncated counts diagnostics beyond the cap, dropped.
	Truncated int
}

// Counts returns the number of diagnostics per URI, the shape of the editor
// contract's `diagnostics` result field.
func (r Result) Counts() map[protocol.DocumentURI]int {
	counts := make(map[protocol.DocumentURI]int, len(r.ByURI))
	for u, ds := range r.ByURI {
		counts[u] = len(ds)
	}
	return counts
}

// Total is the number of diagnostics kept.
func (r Result) Total() int {
	n := 0
	for _, ds := range r.ByURI {
		n += len(ds)
	}
	return n
}

// Parse reads a command's output (stdout and stderr, in the order they were
// printed) until EOF and returns its diagnostics. Memory stays bounded:
// lines are cut at MaxLineBytes, diagnostics beyond the cap are only
// counted, and the input is processed in chunks. Lines are matched in
// parallel (GOMAXPROCS workers, in order) for formats without multi-line
// errorformat state.
//
// Errors: an invalid Spec (WorkspaceRoot not absolute, unknown Encoding or
// Format, an errorformat line that does not compile) is reported before
// reading; a read error or ctx's cancellation stops reading and is returned
// with the diagnostics found so far.
func Parse(ctx context.Context, r io.Reader, spec Spec, text TextSource) (res Result, err error) {
	p, f, err := newParser(spec, text)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if v := recover(); v != nil {
			p.finish()
			res = p.res
			err = fmt.Errorf("outputdiag: internal error reading %s output: %v", f.name, v)
		}
	}()
	lr := newLineReader(r, MaxLineBytes)
	if f.scanner {
		err = p.runScanner(ctx, lr, f)
	} else {
		err = p.runLines(ctx, lr, f)
	}
	if err == nil && lr.err != nil {
		err = fmt.Errorf("outputdiag: reading %s output: %w", f.name, lr.err)
	}
	p.res.LongLines = lr.long
	p.finish()
	return p.res, err
}

// parser holds the state of one Parse call. Handlers run on one goroutine
// at a time (stream callbacks are sequential), so nothing here is locked.
type parser struct {
	spec    Spec
	text    TextSource
	enc     position.Encoding
	dir     string // workspace-relative directory relative paths start from
	sandbox string // cleaned SandboxRoot ("" when unset)
	wsSlash string // WorkspaceRoot with slashes
	max     int
	cmd     command
	unit    position.Unit // the tool's column unit, when toolUnit
	known   bool          // whether unit is known from the tool

	dirStack []string // make's "Entering directory" stack (workspace-relative)

	res         Result
	count       int
	seen        map[string]struct{}
	mappers     map[string]*position.Mapper // nil value: text unavailable
	mapped      int                         // bytes of text the mappers hold
	uris        map[string]protocol.DocumentURI
	outside     map[string]struct{}
	unconverted map[string]struct{}
}

func newParser(spec Spec, text TextSource) (*parser, *format, error) {
	if spec.Encoding == "" {
		spec.Encoding = position.UTF16
	}
	if !spec.Encoding.Valid() {
		return nil, nil, fmt.Errorf("outputdiag: unknown position encoding %q (want utf-8, utf-16 or utf-32)", spec.Encoding)
	}
	if !filepath.IsAbs(spec.WorkspaceRoot) {
		return nil, nil, fmt.Errorf("outputdiag: workspace root %q is not an absolute path", spec.WorkspaceRoot)
	}
	if spec.SandboxRoot != "" && !path.IsAbs(spec.SandboxRoot) {
		return nil, nil, fmt.Errorf("outputdiag: sandbox root %q is not an absolute path", spec.SandboxRoot)
	}
	dir := path.Clean("/" + filepath.ToSlash(spec.Dir))[1:]
	if strings.HasPrefix(path.Clean(filepath.ToSlash(spec.Dir)), "..") {
		return nil, nil, fmt.Errorf("outputdiag: command directory %q is outside the workspace", spec.Dir)
	}
	if text == nil {
		text = func(string) ([]byte, bool) { return nil, false }
	}
	p := &parser{
		spec:        spec,
		text:        text,
		enc:         spec.Encoding,
		wsSlash:     filepath.ToSlash(filepath.Clean(spec.WorkspaceRoot)),
		max:         cmp.Or(spec.MaxDiagnostics, MaxDiagnostics),
		seen:        map[string]struct{}{},
		mappers:     map[string]*position.Mapper{},
		uris:        map[string]protocol.DocumentURI{},
		outside:     map[string]struct{}{},
		unconverted: map[string]struct{}{},
	}
	if spec.SandboxRoot != "" {
		p.sandbox = path.Clean(spec.SandboxRoot)
	}
	if len(spec.Args) > 0 {
		p.cmd = analyzeArgv(spec.Args)
	} else {
		p.cmd = analyzeCommand(spec.Command)
	}
	p.dir = strings.TrimPrefix(path.Join(dir, p.cmd.dir), ".")
	if strings.HasPrefix(p.dir, "..") {
		p.dir = dir // a `cd ..` out of the workspace: stay where we are
	}
	f, err := p.chooseFormat()
	if err != nil {
		return nil, nil, err
	}
	p.res.Format = f.name
	p.res.ByURI = map[protocol.DocumentURI][]protocol.Diagnostic{}
	return p, f, nil
}

// here is the workspace-relative directory relative paths are resolved
// against right now.
func (p *parser) here() string {
	if n := len(p.dirStack); n > 0 {
		return p.dirStack[n-1]
	}
	return p.dir
}

// event is one output line as a handler sees it.
type event struct {
	text string
	rule *rule              // the rule that matched, nil when none did
	m    *errorformat.Match // its match; nil for rules that only ignore lines
}

// handler assembles diagnostics from a format's lines.
type handler interface {
	line(e *event) // every line, in order
	end()          // end of input: flush what is pending
}

// chunk is a run of lines matched by one worker.
type chunk struct {
	text  string
	ends  []int
	rules []int32
	ms    []*errorformat.Match
}

func (c *chunk) line(i int) string {
	start := 0
	if i > 0 {
		start = c.ends[i-1] + 1
	}
	return c.text[start:c.ends[i]]
}

// runLines processes a format without multi-line errorformat state: lines
// are matched in parallel chunks, then handed to the handler in order.
func (p *parser) runLines(ctx context.Context, lr *lineReader, f *format) error {
	h := f.handler(p)
	s := stream.New().WithMaxGoroutines(min(runtime.GOMAXPROCS(0), 4))
	var buf []byte
	var ends []int
	var err error
	submit := func() {
		if len(ends) == 0 {
			return
		}
		c := &chunk{text: string(buf), ends: ends}
		buf, ends = buf[:0], nil
		s.Go(func() stream.Callback {
			c.rules = make([]int32, len(c.ends))
			c.ms = make([]*errorformat.Match, len(c.ends))
			for i := range c.ends {
				ri, m := matchLine(f.rules, c.line(i))
				c.rules[i], c.ms[i] = int32(ri), m
			}
			return func() {
				var ev event
				for i := range c.ends {
					ev = event{text: c.line(i)}
					if ri := c.rules[i]; ri >= 0 {
						ev.rule, ev.m = &f.rules[ri], c.ms[i]
					}
					h.line(&ev)
				}
			}
		})
	}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		p.res.Lines++
		buf = append(buf, line...)
		ends = append(ends, len(buf))
		buf = append(buf, '\n')
		if len(buf) >= chunkBytes || len(ends) >= 4096 {
			if err = ctx.Err(); err != nil {
				break
			}
			submit()
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	submit()
	s.Wait()
	h.end()
	return err
}

// runScanner processes a format whose errorformat lines keep state across
// lines (%E/%C/%Z, %P/%Q, …) with errorformat's own Scanner. The Scanner
// keeps every line it saw; to bound memory it is restarted at lines where
// restarting cannot change the result (see feeder.boundary).
func (p *parser) runScanner(ctx context.Context, lr *lineReader, f *format) error {
	efms := make([]*errorformat.Efm, len(f.rules))
	for i := range f.rules {
		efms[i] = f.rules[i].efm
	}
	ef := &errorformat.Errorformat{Efms: efms}
	fd := &feeder{ctx: ctx, p: p, lr: lr, rules: f.rules, restartable: !slices.ContainsFunc(f.rules, func(r rule) bool {
		return r.prefix != 0 && strings.IndexByte("OPQDX", r.prefix) >= 0
	})}
	h := &entryHandler{p: p, f: f}
	for {
		sc := ef.NewScanner(fd)
		for n := 0; sc.Scan(); n++ {
			if e := sc.Entry(); e.Valid {
				h.entry(e)
			}
			if n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if fd.eof {
			return ctx.Err()
		}
		fd.held = true // the boundary line goes to the next scanner
	}
}

// feeder serves clean lines to an errorformat Scanner and ends its input at
// a safe boundary every so many lines.
type feeder struct {
	ctx         context.Context
	p           *parser
	lr          *lineReader
	rules       []rule
	restartable bool
	line        []byte // the rest of the current line, with its "\n"
	held        bool   // line is a boundary line for the next scanner
	since       int    // lines since the last restart
	eof         bool
}

func (fd *feeder) Read(b []byte) (int, error) {
	if len(fd.line) == 0 || fd.held {
		if !fd.held {
			l, ok := fd.lr.next()
			if !ok {
				fd.eof = true
				return 0, io.EOF
			}
			fd.p.res.Lines++
			fd.since++
			if fd.p.res.Lines%4096 == 0 && fd.ctx.Err() != nil {
				fd.eof = true
				return 0, fd.ctx.Err()
			}
			fd.line = append(append(fd.line[:0], l...), '\n')
			if fd.restartable && fd.since >= 4096 && fd.boundary(string(l)) {
				fd.since = 0
				return 0, io.EOF
			}
		}
		fd.held = false
	}
	n := copy(b, fd.line)
	fd.line = fd.line[n:]
	return n, nil
}

// boundary reports whether a fresh Scanner starting at line gives the same
// entries as the running one: no %C/%Z rule matches it, and the first rule
// that does is a %A/%E/%W/%I (which resets the multi-line state) or none
// does (which resets it too; the running Scanner would then drop a pending
// multi-line entry, the fresh one keeps it).
func (fd *feeder) boundary(line string) bool {
	first := byte(0)
	matched := false
	for i := range fd.rules {
		r := &fd.rules[i]
		if !r.catchAll && (!r.mayMatch(line) || r.match(line) == nil) {
			continue
		}
		if r.prefix == 'C' || r.prefix == 'Z' {
			return false
		}
		if !matched {
			first, matched = r.prefix, true
		}
	}
	return !matched || strings.IndexByte("AEWI", first) >= 0 && first != 0
}

// finish sorts and deduplicates what was collected into the Result.
func (p *parser) finish() {
	for u, ds := range p.res.ByURI {
		slices.SortStableFunc(ds, func(a, b protocol.Diagnostic) int {
			return cmp.Or(
				cmp.Compare(a.Range.Start.Line, b.Range.Start.Line),
				cmp.Compare(a.Range.Start.Character, b.Range.Start.Character),
				cmp.Compare(a.Range.End.Line, b.Range.End.Line),
				cmp.Compare(a.Range.End.Character, b.Range.End.Character),
				cmp.Compare(a.Severity, b.Severity),
				strings.Compare(a.Message, b.Message),
			)
		})
		p.res.ByURI[u] = ds
	}
	p.res.Outside = sortedKeys(p.outside)
	p.res.Unconverted = sortedKeys(p.unconverted)
	p.res.Tool = p.toolName()
}

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// loc is a position as a tool printed it.
type loc struct {
	file string // as printed
	dir  string // workspace-relative directory a relative file starts from
	// 1-based; 0 when absent. endCol is inclusive.
	line, col, endLine, endCol int
	unit                       position.Unit
}

// diag is a diagnostic being assembled by a handler.
type diag struct {
	at      loc
	sev     protocol.DiagnosticSeverity
	msg     string
	related []relInfo
}

type relInfo struct {
	at  loc
	msg string
}

// appendMsg adds a continuation line to d's message, within maxMessage.
func (d *diag) appendMsg(s string) {
	if len(d.msg)+1+len(s) > maxMessage {
		return
	}
	if d.msg == "" {
		d.msg = s
		return
	}
	d.msg += "\n" + s
}

func (d *diag) addRelated(at loc, msg string) {
	if len(d.related) < maxRelated {
		d.related = append(d.related, relInfo{at: at, msg: msg})
	}
}

// resolve maps a printed path to a workspace-relative path (inside) or to
// the absolute path it names outside the workspace.
func (p *parser) resolve(at loc) (rel, outside string, inside bool) {
	f := at.file
	if f == "" {
		return "", "", false
	}
	f = strings.TrimPrefix(f, "file://")
	if path.IsAbs(f) {
		f = path.Clean(f)
		if r, ok := under(f, p.sandbox); ok {
			return r, "", r != ""
		}
		if r, ok := under(f, p.wsSlash); ok {
			return r, "", r != ""
		}
		return "", f, false
	}
	if len(f) >= 2 && f[1] == ':' { // a Windows path: never ours
		return "", f, false
	}
	j := path.Join(at.dir, f)
	if j == ".." || strings.HasPrefix(j, "../") {
		return "", path.Join(p.wsSlash, j), false
	}
	if j == "." {
		return "", "", false
	}
	return j, "", true
}

// under returns p relative to root when p is root or below it.
func under(p, root string) (string, bool) {
	if root == "" {
		return "", false
	}
	if p == root {
		return "", true
	}
	if root == "/" {
		return p[1:], true
	}
	if strings.HasPrefix(p, root) && p[len(root)] == '/' {
		return p[len(root)+1:], true
	}
	return "", false
}

// exists reports whether the text of a workspace path is available.
func (p *parser) exists(rel string) bool {
	return p.mapper(rel) != nil
}

// mapper returns the line index of a workspace file, or nil.
func (p *parser) mapper(rel string) *position.Mapper {
	if m, ok := p.mappers[rel]; ok {
		return m
	}
	if len(p.mappers) >= 1024 || p.mapped > maxMapped {
		clear(p.mappers)
		p.mapped = 0
	}
	var m *position.Mapper
	if text, ok := p.text(rel); ok {
		m = position.NewMapper(text)
		p.mapped += len(text)
	}
	p.mappers[rel] = m
	return m
}

func (p *parser) uriOf(rel string) protocol.DocumentURI {
	if u, ok := p.uris[rel]; ok {
		return u
	}
	if len(p.uris) >= 4096 {
		clear(p.uris)
	}
	u := protocol.DocumentURI(uri.File(filepath.Join(p.spec.WorkspaceRoot, filepath.FromSlash(rel))))
	p.uris[rel] = u
	return u
}

// emit adds a finished diagnostic to the result, or counts it.
func (p *parser) emit(d *diag) {
	rel, out, inside := p.resolve(d.at)
	if !inside {
		if len(p.outside) < maxListed {
			p.outside[cmp.Or(out, d.at.file)] = struct{}{}
		}
		return
	}
	msg := strings.TrimSpace(d.msg)
	if msg == "" {
		msg = "(no message)"
	}
	// Duplicates (tools that print a finding twice) are detected on the
	// printed location, so that no conversion is needed past the cap and
	// the set stops growing there.
	key := dedupKey(rel, d, msg)
	if _, dup := p.seen[key]; dup {
		return
	}
	if p.count >= p.max {
		p.res.Truncated++
		return
	}
	p.seen[key] = struct{}{}
	pd := protocol.Diagnostic{
		Range:    p.rangeOf(rel, d.at),
		Severity: cmp.Or(d.sev, protocol.DiagnosticSeverityError),
		Source:   Source,
		Message:  msg,
	}
	if tool := p.toolName(); tool != "" {
		pd.Code = tool
	}
	for _, r := range d.related {
		var ri protocol.DiagnosticRelatedInformation
		if rrel, rout, ok := p.resolve(r.at); ok {
			ri.Location = protocol.Location{URI: p.uriOf(rrel), Range: p.rangeOf(rrel, r.at)}
		} else if rout != "" {
			ri.Location = protocol.Location{URI: protocol.DocumentURI(uri.File(filepath.FromSlash(rout))), Range: asPrinted(r.at)}
		} else {
			continue
		}
		ri.Message = cmp.Or(strings.TrimSpace(r.msg), "related location")
		pd.RelatedInformation = append(pd.RelatedInformation, ri)
	}
	u := p.uriOf(rel)
	p.count++
	p.res.ByURI[u] = append(p.res.ByURI[u], pd)
}

// dedupKey identifies a diagnostic by its printed location and message.
func dedupKey(rel string, d *diag, msg string) string {
	b := make([]byte, 0, len(rel)+len(msg)+32)
	b = append(b, rel...)
	for _, n := range [...]int{d.at.line, d.at.col, d.at.endLine, d.at.endCol, int(d.at.unit), int(d.sev)} {
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	b = append(b, 0)
	b = append(b, msg...)
	return string(b)
}

// rangeOf converts a printed location in a workspace file to an LSP range
// in the negotiated encoding. No column: the line's text without leading
// and trailing blanks. A column: from it to the end column (inclusive) when
// the tool gave one, else one character. Without the file's text the
// numbers are used as printed.
func (p *parser) rangeOf(rel string, at loc) protocol.Range {
	m := p.mapper(rel)
	line := max(at.line-1, 0)
	if m == nil || line >= m.LineCount() {
		if len(p.unconverted) < maxListed {
			p.unconverted[rel] = struct{}{}
		}
		return asPrinted(at)
	}
	lt := m.Line(line)
	u := p.enc.Unit()
	pos := func(l, b int, text []byte) protocol.Position {
		return protocol.Position{Line: uint32(l), Character: uint32(position.Column(text, b, u))}
	}
	if at.col <= 0 {
		start := len(lt) - len(bytes.TrimLeft(lt, " \t\f"))
		end := max(len(bytes.TrimRight(lt, " \t\f")), start)
		return protocol.Range{Start: pos(line, start, lt), End: pos(line, end, lt)}
	}
	sb := position.ByteOffset(lt, at.col-1, at.unit)
	start := pos(line, sb, lt)
	if at.endCol > 0 {
		el := line
		if at.endLine > 0 {
			el = at.endLine - 1
		}
		if el >= line && el < m.LineCount() {
			elt := m.Line(el)
			eb := position.ByteOffset(elt, at.endCol, at.unit)
			// An inclusive end column inside a wide character: take the whole character.
			if eb < len(elt) && position.Column(elt, eb, at.unit) < at.endCol {
				_, size := utf8.DecodeRune(elt[eb:])
				eb += size
			}
			if el > line || eb > sb {
				return protocol.Range{Start: start, End: pos(el, eb, elt)}
			}
		}
	}
	eb := sb
	if sb < len(lt) {
		_, size := utf8.DecodeRune(lt[sb:])
		eb += size
	}
	return protocol.Range{Start: start, End: pos(line, eb, lt)}
}

// asPrinted is the range of a location whose text is not available: the
// column as printed, one unit wide, or the whole line.
func asPrinted(at loc) protocol.Range {
	line := uint32(max(at.line-1, 0))
	if at.col <= 0 {
		return protocol.Range{Start: protocol.Position{Line: line}, End: protocol.Position{Line: line + 1}}
	}
	start := uint32(at.col - 1)
	end := start + 1
	if at.endCol >= at.col && (at.endLine == 0 || at.endLine == at.line) {
		end = uint32(at.endCol)
	}
	return protocol.Range{Start: protocol.Position{Line: line, Character: start}, End: protocol.Position{Line: line, Character: end}}
}

// errNoFormat is wrapped by errors about unknown format names.
var errNoFormat = errors.New("unknown format")
