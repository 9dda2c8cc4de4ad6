package data

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// splitDataset has classes of 40, 13, 5, 3 and 1 images.
func splitDataset() *Dataset {
	d := &Dataset{Name: "toy", Classes: []string{"a", "b", "c", "d", "e"}}
	sizes := []int{40, 13, 5, 3, 1}
	// Interleaved, as a loader never gives them, so that order keeping
	// is tested too.
	for i := 0; i < 40; i++ {
		for c, n := range sizes {
			if i < n {
				d.Samples = append(d.Samples, Sample{W: 1, H: 1, Pix: []uint8{uint8(c), uint8(i), 0}, Label: c, Path: fmt.Sprintf("%d/%d", c, i)})
			}
		}
	}
	return d
}

func TestSplit(t *testing.T) {
	d := splitDataset()
	train, val := d.Split(0.2, 7)
	wantVal := []int{8, 3, 1, 1, 0} // round(0.2·n): 8, 2.6, 1, 0.6, 0.2
	got := make([]int, len(d.Classes))
	for _, s := range val.Samples {
		got[s.Label]++
	}
	if !slices.Equal(got, wantVal) {
		t.Errorf("val per class %v, want %v", got, wantVal)
	}
	if len(train.Samples)+len(val.Samples) != len(d.Samples) {
		t.Fatalf("%d + %d != %d", len(train.Samples), len(val.Samples), len(d.Samples))
	}
	// A partition, each part in the original order.
	pos := map[string]int{}
	for i, s := range d.Samples {
		pos[s.Path] = i
	}
	seen := map[string]bool{}
	for _, part := range []*Dataset{train, val} {
		last := -1
		for _, s := range part.Samples {
			if seen[s.Path] {
				t.Fatalf("%s in both parts", s.Path)
			}
			seen[s.Path] = true
			if pos[s.Path] <= last {
				t.Fatalf("%s: order not kept", part.Name)
			}
			last = pos[s.Path]
		}
		if !slices.Equal(part.Classes, d.Classes) {
			t.Errorf("%s: classes %q", part.Name, part.Classes)
		}
	}

	// Deterministic, and seed-dependent.
	train2, val2 := d.Split(0.2, 7)
	if !sameSamples(train, train2) || !sameSamples(val, val2) {
		t.Error("same seed, different split")
	}
	_, val3 := d.Split(0.2, 8)
	if sameSamples(val, val3) {
		t.Error("seeds 7 and 8 give the same split")
	}
	// Uniform: over many seeds every image of class a lands in val
	// about 20% of the time.
	hits := make([]int, 40)
	const seeds = 2000
	for s := int64(0); s < seeds; s++ {
		_, v := d.Split(0.2, s)
		for _, x := range v.Samples {
			if x.Label == 0 {
				hits[x.Pix[1]]++
			}
		}
	}
	for i, h := range hits {
		if f := float64(h) / seeds; math.Abs(f-0.2) > 0.05 {
			t.Errorf("image a/%d in val %.3f of the time, want 0.2", i, f)
		}
	}

	for _, c := range []struct {
		frac     float64
		train, v int
	}{{0, 62, 0}, {-1, 62, 0}, {math.NaN(), 62, 0}, {1, 0, 62}, {2, 0, 62}} {
		tr, v := d.Split(c.frac, 1)
		if len(tr.Samples) != c.train || len(v.Samples) != c.v {
			t.Errorf("fraction %v: %d/%d, want %d/%d", c.frac, len(tr.Samples), len(v.Samples), c.train, c.v)
		}
	}
}
