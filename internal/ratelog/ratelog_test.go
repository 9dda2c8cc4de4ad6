package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := New(2, time.Second, func() time.Time { return now })
	var got []int // suppressed counts of admitted lines, -1 for a line left out
	admit := func(key string) {
		if n, ok := l.Admit(key); ok {
			got = append(got, n)
		} else {
			got = append(got, -1)
		}
	}
	for range 5 {
		admit("a")
	}
	admit("b") // its own window
	now = now.Add(time.Second)
	admit("a")
	admit("a")
	want := []int{0, 0, -1, -1, -1, 0, 3, 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestLimiterBoundsItsKeys(t *testing.T) {
	l := New(1, time.Hour, nil)
	for i := range 3 * maxKeys {
		if _, ok := l.Admit(string(rune(i))); !ok {
			t.Fatalf("a new key %d left out", i)
		}
	}
	if n := len(l.windows); n > maxKeys {
		t.Errorf("%d keys remembered, want at most %d", n, maxKeys)
	}
}
