package main

import "fmt"

func greet() {
	s := "é😀"; fmt.Printf("%d\n", s)
}
