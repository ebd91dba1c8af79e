package changeset

import (
	"path"
	"strings"
	"unicode/utf8"
)

// CheckPath reports why a workspace-relative path must not be applied to the
// user's workspace, or "" when it may. The rules, in order:
//
//   - no NUL byte, no other control character, valid UTF-8;
//   - not empty, not absolute ("/x", `\x`, a drive letter "c:"), no
//     backslash (a separator on Windows editors);
//   - clean and slash-separated: no "", "." or ".." element;
//   - no ".git" element, compared case-insensitively (the repository's
//     internals, and a nested repository's, are never applied).
//
// The reasons are short English phrases meant for the user.
func CheckPath(p string) string {
	switch {
	case strings.IndexByte(p, 0) >= 0:
		return "the name contains a NUL byte"
	case !utf8.ValidString(p):
		return "the name is not valid UTF-8"
	case hasControl(p):
		return "the name contains a control character"
	case p == "" || p == ".":
		return "empty path"
	case strings.HasPrefix(p, "/"):
		return "absolute path"
	case strings.IndexByte(p, '\\') >= 0:
		return `the name contains a backslash`
	}
	first, _, _ := strings.Cut(p, "/")
	if len(first) == 2 && first[1] == ':' && isLetter(first[0]) {
		return "absolute path (drive letter)"
	}
	for _, el := range strings.Split(p, "/") {
		switch {
		case el == "..":
			return "the path leaves the workspace (\"..\")"
		case el == "" || el == ".":
			return "the path is not clean"
		case isGit(el):
			return "inside .git/"
		}
	}
	if path.Clean(p) != p {
		return "the path is not clean"
	}
	return ""
}

// underGit reports whether a path has a ".git" element (case-insensitive).
func underGit(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if isGit(el) {
			return true
		}
	}
	return false
}

func isGit(el string) bool { return strings.EqualFold(el, ".git") }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
