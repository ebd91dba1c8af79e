// Package main is a fixture with go vet findings.
package main

import "fmt"

func main() {
	name := "gopher"
	fmt.Printf("hello %d\n", name)
	greet()
	crlf()
}
