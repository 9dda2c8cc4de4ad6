package consensus

import (
	"errors"
	"math"
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
