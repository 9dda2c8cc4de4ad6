package consensus

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestFuse(t *testing.T) {
	weights := []float64{1, 2, 0.5}
	tests := []struct {
		name    string
		answers []Answer
		want    []float64
		wantErr bool
	}{
		{"none", nil, []float64{0, 0, 0, 0}, false},
		{"one", []Answer{{Variant: 1, Indices: []int32{2, 0}, Probs: []float32{0.75, 0.25}}}, []float64{0.5, 0, 1.5, 0}, false},
		{"two overlap", []Answer{
			{Variant: 0, Indices: []int32{3}, Probs: []float32{0.5}},
			{Variant: 2, Indices: []int32{3, 1}, Probs: []float32{0.5, 0.25}},
		}, []float64{0, 0.125, 0, 0.75}, false},
		{"duplicate variant counts once", []Answer{
			{Variant: 0, Indices: []int32{1}, Probs: []float32{1}},
			{Variant: 0, Indices: []int32{1}, Probs: []float32{1}},
		}, []float64{0, 1, 0, 0}, false},
		{"class out of range", []Answer{{Variant: 0, Indices: []int32{4}, Probs: []float32{1}}}, []float64{0, 0, 0, 0}, true},
		{"negative class", []Answer{{Variant: 0, Indices: []int32{-1}, Probs: []float32{1}}}, []float64{0, 0, 0, 0}, true},
		{"unknown variant", []Answer{{Variant: 3, Indices: []int32{0}, Probs: []float32{1}}}, []float64{0, 0, 0, 0}, true},
		{"length mismatch", []Answer{{Variant: 0, Indices: []int32{0, 1}, Probs: []float32{1}}}, []float64{0, 0, 0, 0}, true},
		{"NaN probability", []Answer{{Variant: 0, Indices: []int32{0}, Probs: []float32{float32(math.NaN())}}}, []float64{0, 0, 0, 0}, true},
		{"repeated class", []Answer{{Variant: 0, Indices: []int32{1, 1}, Probs: []float32{0.5, 0.5}}}, []float64{0, 0, 0, 0}, true},
	}
	for _, tt := range tests {
		scores := []float64{9, 9, 9, 9}
		err := Fuse(tt.answers, weights, scores)
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrBadAnswer)) {
			t.Errorf("%s: got error %v, want error %v", tt.name, err, tt.wantErr)
		}
		for i := range tt.want {
			if math.Abs(scores[i]-tt.want[i]) > 1e-12 {
				t.Errorf("%s: got scores %v, want %v", tt.name, scores, tt.want)
				break
			}
		}
	}
}

func TestArgmax(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want int
	}{{nil, -1}, {[]float64{1}, 0}, {[]float64{1, 3, 3}, 1}, {[]float64{-1, -2}, 0}} {
		if got := Argmax(tt.in); got != tt.want {
			t.Errorf("Argmax(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// fuseNaive is the obvious quadratic Fuse, the reference for the fast one.
func fuseNaive(answers []Answer, weights []float64, scores []float64) error {
	clear(scores)
	for i, a := range answers {
		bad := a.Variant < 0 || a.Variant >= len(weights) || len(a.Indices) != len(a.Probs)
		for j := 0; !bad && j < len(a.Indices); j++ {
			c, p := a.Indices[j], a.Probs[j]
			bad = c < 0 || int(c) >= len(scores) || !(p >= 0 && p <= 1) || slices.Contains(a.Indices[:j], c)
		}
		if bad {
			clear(scores)
			return fmt.Errorf("%w %d", ErrBadAnswer, i)
		}
	}
	for i, a := range answers {
		if slices.ContainsFunc(answers[:i], func(b Answer) bool { return b.Variant == a.Variant }) {
			continue
		}
		for j, c := range a.Indices {
			scores[c] += weights[a.Variant] * float64(a.Probs[j])
		}
	}
	return nil
}

func TestFuseAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for trial := range 5000 {
		classes := 1 + rng.IntN(40)
		weights := make([]float64, 1+rng.IntN(300)) // past the 256 a variantSet holds inline
		for v := range weights {
			weights[v] = rng.Float64()
		}
		var answers []Answer
		for range rng.IntN(6) {
			k := rng.IntN(classes + 1)
			a := Answer{Variant: rng.IntN(len(weights)), Indices: make([]int32, k), Probs: make([]float32, k)}
			if rng.IntN(3) == 0 {
				a.Variant = rng.IntN(3) // hedges: the same variant twice
			}
			for j, c := range rng.Perm(classes)[:k] {
				a.Indices[j], a.Probs[j] = int32(c), rng.Float32()
			}
			if k > 1 && rng.IntN(20) == 0 {
				a.Indices[rng.IntN(k)] = a.Indices[rng.IntN(k)] // maybe a repeated class
			}
			if k > 0 && rng.IntN(40) == 0 {
				a.Probs[rng.IntN(k)] = 1.5
			}
			answers = append(answers, a)
		}
		got, want := make([]float64, classes), make([]float64, classes)
		errGot, errWant := Fuse(answers, weights, got), fuseNaive(answers, weights, want)
		if (errGot == nil) != (errWant == nil) || !slices.Equal(got, want) {
			t.Fatalf("trial %d: got %v, %v; want %v, %v", trial, got, errGot, want, errWant)
		}
	}
}

func TestFuseLongAnswers(t *testing.T) {
	// Full softmax vectors, as training fuses them: k = classes = 1000.
	const classes = 1000
	weights := []float64{1, 0.5}
	a := Answer{Variant: 0, Indices: make([]int32, classes), Probs: make([]float32, classes)}
	for c := range classes {
		a.Indices[c], a.Probs[c] = int32(classes-1-c), 1.0/classes
	}
	scores := make([]float64, classes)
	if err := Fuse([]Answer{a, a}, weights, scores); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Fuse([]Answer{a, a}, weights, scores) }); n != 0 {
		t.Errorf("Fuse allocated %v times per run, want 0", n)
	}
	a.Indices[classes-1] = a.Indices[0] // the last repeats the first
	if err := Fuse([]Answer{a}, weights, scores); !errors.Is(err, ErrBadAnswer) {
		t.Errorf("got %v for a class repeated 999 places apart, want ErrBadAnswer", err)
	}
}

func BenchmarkFuse(b *testing.B) {
	for _, k := range []int{5, 100, 1000} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			const classes = 1000
			rng := rand.New(rand.NewPCG(1, 1))
			weights := []float64{1, 0.9, 0.8, 0.7}
			var answers []Answer
			for v := range weights {
				a := Answer{Variant: v, Indices: make([]int32, k), Probs: make([]float32, k)}
				for j, c := range rng.Perm(classes)[:k] {
					a.Indices[j], a.Probs[j] = int32(c), rng.Float32()/float32(k)
				}
				answers = append(answers, a)
			}
			scores := make([]float64, classes)
			b.ReportAllocs()
			for b.Loop() {
				if err := Fuse(answers, weights, scores); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestTop(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		k    int
		want []int
	}{
		{[]float64{0.1, 0.5, 0.5, 0.2}, 3, []int{1, 2, 3}},
		{[]float64{3, 1, 2}, 5, []int{0, 2, 1}},
		{[]float64{1, 2}, 0, []int{}},
		{nil, 2, []int{}},
	} {
		got := Top(tt.in, tt.k)
		if len(got) != len(tt.want) {
			t.Errorf("Top(%v, %d) = %v, want %v", tt.in, tt.k, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("Top(%v, %d) = %v, want %v", tt.in, tt.k, got, tt.want)
				break
			}
		}
	}
}

// TestTopMatchesSorting: Top agrees with a full stable sort by score on
// random scores with many ties.
func TestTopMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		n := rng.IntN(40)
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = float64(rng.IntN(6))
		}
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
		k := rng.IntN(n + 2)
		want := order[:min(k, n)]
		if got := Top(scores, k); !slices.Equal(got, want) {
			t.Fatalf("Top(%v, %d) = %v, want %v", scores, k, got, want)
		}
	}
}
