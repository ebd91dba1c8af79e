package chat

import (
	"strings"
	"testing"
)

func TestQuestionWholeFileSelectionAndProblems(t *testing.T) {
	text := "package a\n\nfunc A() {}\n\nfunc B() {}\n"
	sel := strings.Index(text, "func B")
	q := Question("What does B do?", &Code{Path: "a/a.go", Language: "go", Text: text, SelStart: sel, SelEnd: len(text) - 1, StartLine: 5,
		Problems: []string{"5:6 error: unused"}}, 1000)
	for _, want := range []string{"File: a/a.go (go)", "The selection (from line 5):\n```go\nfunc B() {}\n```", "The whole file, for context:", "- 5:6 error: unused", "What does B do?"} {
		if !strings.Contains(q, want) {
			t.Errorf("question lacks %q:\n%s", want, q)
		}
	}
}

func TestQuestionRespectsTheBudget(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		b.WriteString("line of code number such and such\n")
	}
	text := b.String()
	mid := len(text) / 2
	q := Question("?", &Code{Path: "big.txt", Text: text, SelStart: mid, SelEnd: mid + 34, StartLine: 2500}, 256)
	if len(q) > 256*CharsPerToken+400 {
		t.Fatalf("question of %d bytes for a 256-token budget", len(q))
	}
	if !strings.Contains(q, "Code before the selection") || !strings.Contains(q, "Code after the selection") {
		t.Fatalf("no surrounding code:\n%s", q)
	}
	whole := Question("?", &Code{Path: "big.txt", Text: text}, 256)
	if !strings.Contains(whole, "too long to show whole") || len(whole) > 256*CharsPerToken+400 {
		t.Fatalf("whole-file question of %d bytes", len(whole))
	}
}

func TestFenceLongerThanFencesInside(t *testing.T) {
	q := Question("?", &Code{Path: "README.md", Language: "markdown", Text: "```go\nx\n```\n"}, 1000)
	if !strings.Contains(q, "````markdown\n```go") {
		t.Fatalf("inner fence not escaped:\n%s", q)
	}
}

func TestMessagesKeepRecentHistoryWithinBudget(t *testing.T) {
	var history []Turn
	for i := 0; i < 10; i++ {
		history = append(history, Turn{Role: "user", Content: strings.Repeat("q", 1000)}, Turn{Role: "assistant", Content: strings.Repeat("a", 1000)})
	}
	msgs := Messages("next?", nil, history, 256) // 2×1024 chars of history at most
	if msgs[0].Role != "system" || msgs[len(msgs)-1].Content != "next?" {
		t.Fatalf("messages: %+v", msgs[0])
	}
	if n := len(msgs) - 2; n != 2 || msgs[1].Role != "user" && msgs[1].Role != "assistant" {
		t.Fatalf("%d history turns kept, want the last 2", n)
	}
	if got := Messages("x", nil, history[:2], 4000); len(got) != 4 {
		t.Fatalf("short history trimmed: %d messages", len(got))
	}
}
