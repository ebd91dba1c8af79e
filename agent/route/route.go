// Package route decides where a free-form request goes (opencode.ask's
// smart routing): to the chat model ("chat"), to the coding agent
// ("generate"), or to both at once ("both").
//
// Explicit prefixes win: "/chat …", "/build …" (or "/generate …") and
// "/both …". Otherwise a question ("Why does the build fail?", "How do I
// create a map?": it starts with a question word or ends with "?") goes to
// chat, and a request that contains one of the build keywords as a word
// (install, deploy, database, api, backend, full-stack, build, create,
// implement, scaffold, fix, … — configurable) goes to the agent; everything
// else goes to chat.
package route

import (
	"strings"
	"unicode"
)

// Route names (editor contract: opencode.ask result's `route`).
const (
	Chat     = "chat"
	Generate = "generate"
	Both     = "both"
)

// DefaultKeywords are the words that send a request to the agent.
var DefaultKeywords = []string{
	"install", "deploy", "database", "api", "backend", "full-stack", "full stack", "fullstack", "build",
	"create", "implement", "scaffold", "fix", "generate", "set up", "setup",
}

// Decision is where a request goes and the prompt without its prefix.
type Decision struct {
	Route  string
	Prompt string
	// Reason says why ("prefix /build", "keyword \"create\"", "no build keyword").
	Reason string
}

// Decide routes prompt. keywords nil means DefaultKeywords.
func Decide(prompt string, keywords []string) Decision {
	p := strings.TrimSpace(prompt)
	for _, pre := range []struct{ prefix, route string }{
		{"/chat", Chat}, {"/build", Generate}, {"/generate", Generate}, {"/both", Both},
	} {
		if rest, ok := cutPrefixWord(p, pre.prefix); ok {
			return Decision{Route: pre.route, Prompt: rest, Reason: "prefix " + pre.prefix}
		}
	}
	if isQuestion(p) {
		return Decision{Route: Chat, Prompt: p, Reason: "a question"}
	}
	if keywords == nil {
		keywords = DefaultKeywords
	}
	lower := strings.ToLower(p)
	for _, k := range keywords {
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" && containsWord(lower, k) {
			return Decision{Route: Generate, Prompt: p, Reason: "keyword \"" + k + "\""}
		}
	}
	return Decision{Route: Chat, Prompt: p, Reason: "no build keyword"}
}

// cutPrefixWord removes a leading command word ("/build") followed by a
// space or the end.
func cutPrefixWord(p, prefix string) (string, bool) {
	if !strings.HasPrefix(strings.ToLower(p), prefix) {
		return "", false
	}
	rest := p[len(prefix):]
	if rest != "" && !unicode.IsSpace(rune(rest[0])) && rest[0] != ':' {
		return "", false
	}
	return strings.TrimSpace(strings.TrimPrefix(rest, ":")), true
}

// containsWord reports whether w occurs in s delimited by non-letters
// (so "api" matches "an API for" but not "capital").
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		if (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		i = start + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

// questionWords start a question rather than a request.
// ("Do the migration" is a request: words like do, can, will ask only with a
// "?", which the caller checks first.)
var questionWords = []string{"why", "what", "how", "when", "where", "which", "who", "whose", "is", "are", "explain"}

// isQuestion reports whether p asks something rather than asks for work: it
// ends with "?" or starts with a question word. A polite request ("Can you
// create …?", "Would you fix …") is not a question: the keywords decide.
func isQuestion(p string) bool {
	lower := strings.ToLower(strings.TrimSpace(p))
	first, rest, _ := strings.Cut(lower, " ")
	polite := (first == "can" || first == "could" || first == "would" || first == "will") && strings.HasPrefix(rest, "you ")
	if polite {
		return false
	}
	if strings.HasSuffix(lower, "?") {
		return true
	}
	first = strings.TrimRight(first, ",:")
	for _, w := range questionWords {
		if first == w {
			return true
		}
	}
	return false
}
