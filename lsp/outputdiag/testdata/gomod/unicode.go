package main

import "fmt"

func greet() {
	fmt.Printf("é😀 %d\n", "s")
}
