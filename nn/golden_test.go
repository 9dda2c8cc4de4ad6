package nn_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/internal/kernels"
)

// The golden families were written by tools/golden/gen_golden.py with
// torchvision's mobilenet_v2 (see testdata/golden/README.md). The engine must
// give the same logits to within 1e-4 and the same top-5, with every kernel
// set and thread count.
const goldenTol = 1e-4

var goldenFamilies = []string{"golden10", "golden1000"}

type goldenCase struct {
	family, id string
	model      *nn.Model
	ref        *format.Safetensors
	png        string
}

func loadGolden(tb testing.TB) []goldenCase {
	tb.Helper()
	var out []goldenCase
	for _, fam := range goldenFamilies {
		dir := filepath.Join("testdata", "golden", fam)
		f, err := format.LoadFamily(dir)
		if err != nil {
			tb.Fatalf("format.LoadFamily(%s): %v", dir, err)
		}
		for i, v := range f.Manifest.Variants {
			ref, err := format.ReadSafetensors(filepath.Join(dir, v.ID+".golden.safetensors"))
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, goldenCase{family: fam, id: v.ID, model: f.Models[i], ref: ref, png: filepath.Join(dir, v.ID+".png")})
		}
	}
	return out
}

func f32(tb testing.TB, st *format.Safetensors, name string) []float32 {
	tb.Helper()
	t, ok := st.Tensors[name]
	if !ok {
		tb.Fatalf("golden file lacks tensor %q", name)
	}
	return t.Data().([]float32)
}

// compareLogits checks each row of got against want: max |diff| and top-5.
func compareLogits(tb testing.TB, what string, got, want []float32, classes int) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d logits, want %d", what, len(got), len(want))
	}
	for row := 0; row < len(want)/classes; row++ {
		g, w := got[row*classes:(row+1)*classes], want[row*classes:(row+1)*classes]
		maxDiff, at := 0.0, 0
		for i := range w {
			if d := math.Abs(float64(g[i] - w[i])); d > maxDiff || math.IsNaN(d) {
				maxDiff, at = d, i
			}
		}
		if !(maxDiff <= goldenTol) {
			tb.Errorf("%s row %d: max |logit diff| %.3g at class %d (got %v, want %v), tolerance %g", what, row, maxDiff, at, g[at], w[at], goldenTol)
		}
		k := min(5, classes)
		gi, wi := make([]int32, k), make([]int32, k)
		nn.TopK(g, gi, make([]float32, k))
		nn.TopK(w, wi, make([]float32, k))
		if fmt.Sprint(gi) != fmt.Sprint(wi) {
			tb.Errorf("%s row %d: top-%d %v, want %v", what, row, k, gi, wi)
		}
	}
}

func TestGoldenLogits(t *testing.T) {
	cases := loadGolden(t)
	for _, isa := range kernels.Available() {
		restore := kernels.Force(isa)
		for _, threads := range []int{1, 2} {
			pool := nn.NewPool(threads)
			for _, c := range cases {
				name := fmt.Sprintf("%s/%s/%s/threads=%d", isa, c.family, c.id, pool.Threads())
				in, want := f32(t, c.ref, "input"), f32(t, c.ref, "logits")
				batch := len(in) / c.model.InputSize()
				got := c.model.NewSession(batch, pool).Forward(in)
				compareLogits(t, name, got, want, c.model.Classes())
				// Batch 1, one image at a time, gives the same answers.
				s1 := c.model.NewSession(1, pool)
				for b := 0; b < batch; b++ {
					got := s1.Forward(in[b*c.model.InputSize():])
					compareLogits(t, name+fmt.Sprintf("/image%d", b), got, want[b*c.model.Classes():(b+1)*c.model.Classes()], c.model.Classes())
				}
			}
			pool.Close()
		}
		restore()
	}
}

// TestGoldenPNG runs the whole path a user's image takes: decode the PNG,
// preprocess (the PNG is at the model's resolution, so exactly ToTensor and
// Normalize) and classify.
func TestGoldenPNG(t *testing.T) {
	for _, c := range loadGolden(t) {
		img, err := nn.LoadImageFile(c.png, nn.DefaultMaxPixels)
		if err != nil {
			t.Fatal(err)
		}
		in := make([]float32, c.model.InputSize())
		s := &c.model.Spec
		nn.ImageToTensor(img, s.Resolution, s.Mean, s.Std, in)
		wantIn := f32(t, c.ref, "png_input")
		for i := range in {
			if d := math.Abs(float64(in[i] - wantIn[i])); d > 1e-5 {
				t.Fatalf("%s: preprocessed value %d: got %v, want %v", c.id, i, in[i], wantIn[i])
			}
		}
		got := c.model.NewSession(1, nil).Forward(in)
		compareLogits(t, c.family+"/"+c.id+"/png", got, f32(t, c.ref, "png_logits"), c.model.Classes())
	}
}

// TestGoldenF16 loads F16 weights (converted to F32 on load) and checks them
// against logits torch computed from the same F16-rounded weights.
func TestGoldenF16(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "golden1000")
	f, err := format.LoadFamily(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := format.ReadSafetensors(filepath.Join(dir, "w035-r64.f16.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if dt := st.DTypes["features.0.0.weight"]; dt != "F16" {
		t.Fatalf("f16 file holds %s weights", dt)
	}
	m, err := nn.NewModel(f.Manifest.Variants[0].Spec, st.Weights(), "w035-r64.f16.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := format.ReadSafetensors(filepath.Join(dir, "w035-r64.f16.golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	in := f32(t, ref, "input")
	got := m.NewSession(len(in)/m.InputSize(), nil).Forward(in)
	compareLogits(t, "f16", got, f32(t, ref, "logits"), m.Classes())
}

func TestForwardAllocatesNothing(t *testing.T) {
	c := loadGolden(t)[0]
	for _, threads := range []int{1, 2} {
		pool := nn.NewPool(threads)
		s := c.model.NewSession(2, pool)
		in := f32(t, c.ref, "input")
		s.Forward(in)
		if n := testing.AllocsPerRun(20, func() { s.Forward(in) }); n != 0 {
			t.Errorf("threads=%d: Forward allocates %v times per call, want 0", pool.Threads(), n)
		}
		pool.Close()
	}
}
