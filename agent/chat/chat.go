// Package chat builds the messages of a question about code: the context a
// developer would give a colleague (the file's name and language, the
// selection — or the whole file when it fits —, the problems reported in it,
// and the code around it within a token budget) plus the earlier turns of
// the thread.
package chat

import (
	"fmt"
	"strings"
)

// SystemPrompt frames every conversation.
const SystemPrompt = "You are OpenCode, a senior engineer answering questions inside the user's code editor. " +
	"Answer precisely and concisely in Markdown. Quote code in fenced blocks with the language. " +
	"When the question is about a selection, focus on it and use the surrounding code only as context. " +
	"Say so when something cannot be known from the code shown."

// ExplainPrompt is the question opencode.explain asks.
const ExplainPrompt = "Explain what this code does, step by step, and point out anything surprising or risky."

// CharsPerToken is the estimate used to keep context within a token budget.
const CharsPerToken = 4

// Code is the code a question is about.
type Code struct {
	// Path is the workspace-relative path (or the URI for unsaved buffers).
	Path string
	// Language is the LSP languageId ("go", "typescript", …).
	Language string
	// Text is the whole document.
	Text string
	// SelStart and SelEnd are byte offsets of the selection in Text;
	// SelStart == SelEnd means no selection (the whole file is the subject).
	SelStart, SelEnd int
	// StartLine is the 1-based line where the selection starts.
	StartLine int
	// Problems are diagnostics in the selection, one line each
	// ("12:5 error: undefined: x (go)").
	Problems []string
}

// Turn is one earlier message of the thread.
type Turn struct {
	Role    string // "user" or "assistant"
	Content string
}

// Message is one message to send.
type Message struct {
	Role    string
	Content string
}

// Messages returns the messages for prompt about code (code may be nil for
// a question about no code), after the thread's earlier turns, keeping the
// code context within budgetTokens (at least 256).
//
// Earlier turns keep the code they were asked about (a follow-up refers to
// it); the oldest turns are left out when the thread grows past twice the
// budget.
func Messages(prompt string, code *Code, history []Turn, budgetTokens int) []Message {
	budget := max(256, budgetTokens) * CharsPerToken
	out := []Message{{Role: "system", Content: SystemPrompt}}
	keep, size := len(history), 0
	for keep > 0 && size+len(history[keep-1].Content) <= 2*budget {
		keep--
		size += len(history[keep].Content)
	}
	for _, t := range history[keep:] {
		out = append(out, Message{Role: t.Role, Content: t.Content})
	}
	return append(out, Message{Role: "user", Content: Question(prompt, code, budgetTokens)})
}

// Question is the user message for prompt about code: the code context
// (within budgetTokens) followed by the prompt.
func Question(prompt string, code *Code, budgetTokens int) string {
	var b strings.Builder
	if code != nil {
		writeContext(&b, code, max(256, budgetTokens)*CharsPerToken)
		b.WriteString("\n")
	}
	b.WriteString(prompt)
	return b.String()
}

func writeContext(b *strings.Builder, c *Code, budget int) {
	lang := c.Language
	if lang == "plaintext" {
		lang = ""
	}
	fmt.Fprintf(b, "File: %s", c.Path)
	if c.Language != "" {
		fmt.Fprintf(b, " (%s)", c.Language)
	}
	b.WriteString("\n")
	text := c.Text
	start, end := clamp(c.SelStart, len(text)), clamp(c.SelEnd, len(text))
	if start > end {
		start, end = end, start
	}
	whole := start == end
	switch {
	case whole && len(text) <= budget:
		b.WriteString("The whole file:\n")
		fence(b, lang, text)
	case whole:
		b.WriteString("The beginning of the file (it is too long to show whole):\n")
		fence(b, lang, cutAtLine(text[:budget]))
	default:
		sel := text[start:end]
		if len(sel) > budget {
			sel = cutAtLine(sel[:budget])
		}
		rest := budget - len(sel)
		if len(text) <= budget {
			fmt.Fprintf(b, "The selection (from line %d):\n", max(1, c.StartLine))
			fence(b, lang, sel)
			b.WriteString("The whole file, for context:\n")
			fence(b, lang, text)
			break
		}
		// Surrounding code: half the remaining budget before, half after.
		beforeStart := max(0, start-rest/2)
		afterEnd := min(len(text), end+rest/2)
		before := text[beforeStart:start]
		if i := strings.IndexByte(before, '\n'); beforeStart > 0 && i >= 0 {
			before = before[i+1:]
		}
		after := cutAtLine(text[end:afterEnd])
		if before != "" {
			b.WriteString("Code before the selection:\n")
			fence(b, lang, before)
		}
		fmt.Fprintf(b, "The selection (from line %d):\n", max(1, c.StartLine))
		fence(b, lang, sel)
		if after != "" {
			b.WriteString("Code after the selection:\n")
			fence(b, lang, after)
		}
	}
	if len(c.Problems) > 0 {
		b.WriteString("Problems reported there:\n")
		for _, p := range c.Problems {
			b.WriteString("- " + p + "\n")
		}
	}
}

// fence writes text in a Markdown code fence longer than any fence in it.
func fence(b *strings.Builder, lang, text string) {
	ticks := "```"
	for strings.Contains(text, ticks) {
		ticks += "`"
	}
	b.WriteString(ticks + lang + "\n" + text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(ticks + "\n")
}

// cutAtLine drops a trailing partial line.
func cutAtLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		return s[:i+1]
	}
	return s
}

func clamp(v, n int) int { return max(0, min(v, n)) }
