package outputdiag

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/reviewdog/errorformat/fmts"
)

// fastRules returns every errorformat line (ours, errorformat's predefined
// formats, and a few written to reach the corners of the subset) that has a
// fast form, with errorformat's compiled expression.
func fastRules(t testing.TB) []rule {
	var srcs []string
	for _, b := range builtins {
		srcs = append(srcs, b.rules...)
	}
	for _, d := range fmts.DefinedFmts() {
		srcs = append(srcs, d.Errorformat...)
	}
	srcs = append(srcs,
		`%f:%l:%c:%m`, `%f`, `%f:%l`, `%t%f:%l: %m`, `%f %l %m`, `%*[0-9]:%l:%m`, `%f(%l):%m`,
		`%l%c:%m`, `%f:%n%l: %m`, `[%t] %f%[,:]%l%m`, `%%%f: %m`, `a\.b%f:%l`, `%f%*[a-c:]%l`,
		`%E%f:%l:%c: %trror: %m`, `%f\,%l\,%c: %m`,
	)
	var rules []rule
	for _, s := range srcs {
		r, err := compileRule(s, kindNone)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if r.fast != nil {
			rules = append(rules, r)
		}
	}
	if len(rules) < 60 {
		t.Fatalf("only %d rules have a fast form", len(rules))
	}
	return rules
}

// agree checks the fast form against errorformat on one line.
func agree(t testing.TB, r *rule, line string) {
	fast, ok := r.fast.match(line)
	if !ok {
		return // handed to errorformat
	}
	want := r.efm.Match(line)
	if (fast == nil) != (want == nil) || fast != nil && !reflect.DeepEqual(*fast, *want) {
		t.Errorf("rule %q on %q:\nfast        %+v\nerrorformat %+v", r.src, line, fast, want)
	}
}

func TestFastMatch(t *testing.T) {
	rules := fastRules(t)
	lines := prefilterCorpus(t)
	// Random short lines over an alphabet that keeps hitting the items'
	// corner cases: digit runs, colons, drive letters, spaces, classes.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "::00123aAbcCz  ,()[]%.-\t\\éx"
	for range 30000 {
		n := rng.IntN(16)
		var b strings.Builder
		for range n {
			b.WriteString(string([]rune(alphabet)[rng.IntN(len([]rune(alphabet)))]))
		}
		lines = append(lines, b.String())
	}
	// Random concatenations of the pieces errorformat lines are made of.
	pieces := []string{"a", "C", "é", ":", "1", "23", " ", "(", ",", ")", ": ", "x", "\\", "\t", "-", "error", "TS1"}
	for range 30000 {
		var b strings.Builder
		for range rng.IntN(9) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		lines = append(lines, b.String())
	}
	lines = append(lines, "a:1:2:x", "a:1:2: m", "C:1:2:3: x", "C:(1,2): m", "a:b:1: m")
	decided := 0
	for _, l := range lines {
		for i := range rules {
			agree(t, &rules[i], l)
			if _, ok := rules[i].fast.match(l); ok {
				decided++
			}
		}
	}
	if decided < len(lines)*len(rules)*9/10 {
		t.Errorf("the fast form decided only %d of %d matches", decided, len(lines)*len(rules))
	}
}

func FuzzFastMatch(f *testing.F) {
	rules := fastRules(f)
	for _, l := range strings.Split(sampleOutputs, "\n") {
		f.Add(l)
	}
	f.Add("C:1:2: x")
	f.Add("a:1:2:3: m")
	f.Fuzz(func(t *testing.T, line string) {
		for i := range rules {
			agree(t, &rules[i], line)
		}
	})
}

// TestFastSubset checks which constructs stay with errorformat.
func TestFastSubset(t *testing.T) {
	for _, s := range []string{`%f:%l: %m (%n)`, `%f:%l:%r`, `%f:%p^`, `%f%.%#`, `%f:%l:%m%m`, `%f%*\s%l`, `%f%*[^x]`, `x?%f`, `%f\.%l`, `%f%*[\d]`} {
		if compileFast(s) != nil {
			t.Errorf("%q got a fast form", s)
		}
	}
	for _, s := range []string{`%f:%l:%c: %m`, `%f`, `%*[ ]%f:%l: %m`, `%f(%l,%c): %t%*[a-z] TS%n: %m`} {
		if compileFast(s) == nil {
			t.Errorf("%q has no fast form", s)
		}
	}
}
