package greet

import "testing"

func TestHello(t *testing.T) {
	if got := Hello("Gopher"); got != "Hello, Gopher" {
		t.Errorf("Hello(%q) = %q, want %q", "Gopher", got, "Hello, Gopher")
	}
}
