package crash

import "testing"

func TestIndex(t *testing.T) {
	if Index([]int{1}, 3) != 0 {
		t.Fatal("unreachable")
	}
}
