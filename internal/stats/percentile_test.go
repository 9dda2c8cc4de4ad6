package stats

import (
	"slices"
	"testing"
	"time"
)

func TestRank(t *testing.T) {
	tests := []struct {
		n    int
		q    float64
		want int
	}{
		{1, 0.5, 0},
		{1, 0.99, 0},
		{2, 0.5, 0}, // the lower middle
		{3, 0.5, 1},
		{4, 0.5, 1},
		{10, 0.9, 8},   // 9 of 10 do not exceed the 9th value
		{10, 0.91, 9},  // 9 of 10 are fewer than 91%
		{20, 0.9, 17},  // 18th value
		{100, 0.5, 49}, // 50th
		{100, 0.99, 98},
		{100, 1, 99},
		{101, 0.99, 99}, // ceil(99.99) = 100th
		{5, 0, 0},
		{5, -1, 0},
		{5, 2, 4},
	}
	for _, tt := range tests {
		if got := Rank(tt.n, tt.q); got != tt.want {
			t.Errorf("Rank(%d, %g) = %d, want %d", tt.n, tt.q, got, tt.want)
		}
	}
}

func TestRankEmptyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Rank(0, 0.5) did not panic")
		}
	}()
	Rank(0, 0.5)
}

func TestPercentiles(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var xs []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, ms(i))
	}
	orig := slices.Clone(xs)
	got := Percentiles(xs, 0.5, 0.9, 0.99, 1)
	if want := []time.Duration{ms(50), ms(90), ms(99), ms(100)}; !slices.Equal(got, want) {
		t.Errorf("1..100 ms: got %v, want %v", got, want)
	}
	if !slices.Equal(xs, orig) {
		t.Error("Percentiles sorted its input")
	}
	if got := Percentiles([]float64(nil), 0.5, 0.9); !slices.Equal(got, []float64{0, 0}) {
		t.Errorf("no values: got %v, want zeros", got)
	}
	if got := Percentile([]int{3, 7}, 0.5); got != 3 {
		t.Errorf("median of [3 7]: %d, want 3 (the lower middle: a value, not 5)", got)
	}
}
