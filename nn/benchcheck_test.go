package nn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn/format"
)

// TestBenchCompareModels checks that the models make bench-compare times give
// torch's logits: bench/compare/compare.sh runs it with VARPAR_BENCH_DIR set
// (the rows' directory) before it times anything, so the table compares two
// engines computing the same function. Without the variable it skips.
func TestBenchCompareModels(t *testing.T) {
	dir := os.Getenv("VARPAR_BENCH_DIR")
	if dir == "" {
		t.Skip("VARPAR_BENCH_DIR not set (bench/compare/compare.sh sets it)")
	}
	rows := strings.Split(os.Getenv("VARPAR_BENCH_ROWS"), ",")
	for _, row := range rows {
		if row == "" {
			continue
		}
		f, err := format.LoadFamily(filepath.Join(dir, row))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := format.ReadSafetensors(filepath.Join(dir, row, row+".check.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m := f.Models[0]
		nchw := f32(t, ref, "input") // [1, 3, R, R]
		r := m.Spec.Resolution
		in := make([]float32, m.InputSize())
		for c := 0; c < 3; c++ {
			for p := 0; p < r*r; p++ {
				in[p*3+c] = nchw[c*r*r+p]
			}
		}
		got := m.NewSession(1, nil).Forward(in)
		compareLogits(t, row, got, f32(t, ref, "logits"), m.Classes())
	}
}
