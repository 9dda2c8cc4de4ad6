package nn

import (
	"math"
	"math/rand"
	"sort"
	"testing"
)

func TestTopKMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 500; trial++ {
		n := 1 + rng.Intn(40)
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(rng.Intn(8)) // many ties
		}
		k := 1 + rng.Intn(n)
		idx, val := make([]int32, k), make([]float32, k)
		TopK(scores, idx, val)
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
		for i := 0; i < k; i++ {
			if int(idx[i]) != order[i] || val[i] != scores[order[i]] {
				t.Fatalf("scores %v k=%d: got idx %v val %v, want order %v", scores, k, idx, val, order[:k])
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	logits := []float32{1000, 1000, -1000, 0}
	p := make([]float32, 4)
	Softmax(logits, p)
	if math.Abs(float64(p[0]-0.5)) > 1e-6 || math.Abs(float64(p[1]-0.5)) > 1e-6 || p[2] != 0 {
		t.Fatalf("softmax of large logits: got %v, want [0.5 0.5 0 ~0]", p)
	}
	Softmax([]float32{0, float32(math.Log(3))}, p[:2])
	if math.Abs(float64(p[0]-0.25)) > 1e-6 || math.Abs(float64(p[1]-0.75)) > 1e-6 {
		t.Fatalf("softmax(0, ln 3): got %v, want [0.25 0.75]", p[:2])
	}
}
