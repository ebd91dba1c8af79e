//go:build !unix

package main

import "io"

// pollableStdin returns in unchanged where stdin cannot be made pollable.
func pollableStdin(in io.Reader) io.Reader { return in }
