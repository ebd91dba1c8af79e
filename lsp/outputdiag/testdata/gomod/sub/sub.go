// Package sub is a fixture package with a failing test.
package sub

// Add returns the sum of a and b, wrongly.
func Add(a, b int) int { return a - b }
