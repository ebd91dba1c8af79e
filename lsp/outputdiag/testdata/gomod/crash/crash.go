// Package crash is a fixture package whose test panics.
package crash

// Index returns s[i].
func Index(s []int, i int) int { return s[i] }
