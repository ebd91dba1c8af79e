package main

// greeting mixes a 2-byte UTF-8 character (é, one UTF-16 unit) and a 4-byte one (😀, a UTF-16 surrogate pair)
// before a syntax error (the stray parenthesis, which gofmt -e reports), so that every position on its line
// differs in UTF-8, UTF-16 and UTF-32.
func greeting() string {
	return "é😀" + missing)
}
