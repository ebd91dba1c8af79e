package sub

import (
	"fmt"
	"strings"
	"testing"
)

func TestAdd(t *testing.T) {
	fmt.Println(strings.Repeat("x", 100*1024))
	if got := Add(2, 3); got != 5 {
		t.Errorf("Add(2, 3) = %d, want 5", got)
	}
}

func TestLog(t *testing.T) {
	t.Log("only a log of a passing test")
}
