package main

import "fmt"

func crlf() {
	v := 1.5
	fmt.Printf("%s\n", v)
}
