// Command hello is the example project of opencode-lsp's README: it has
// real problems that `opencode-lsp run` reports as diagnostics.
package main

import (
	"fmt"

	"example.com/hello/greet"
)

func main() {
	name := "café 😀"
	fmt.Printf("%d\n", name) // go vet: wrong verb for a string
	fmt.Println(greet.Hello(name))
}
