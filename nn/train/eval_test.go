package train

import (
	"image"
	"image/draw"
	"math"
	"path/filepath"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
)

// evalFixture builds a small labelled set from the golden PNGs, resized
// copies included, labelled with class i%10.
func evalFixture(tb testing.TB, f *format.Family) *data.Dataset {
	tb.Helper()
	d := &data.Dataset{Name: "fixture", Classes: f.Manifest.Classes}
	pngs, _ := filepath.Glob(filepath.Join("..", "testdata", "golden", "golden10", "*.png"))
	for i := 0; i < 40; i++ {
		img, err := nn.LoadImageFile(pngs[i%len(pngs)], nn.DefaultMaxPixels)
		if err != nil {
			tb.Fatal(err)
		}
		b := img.Bounds()
		rgba := image.NewRGBA(b)
		draw.Draw(rgba, b, img, b.Min, draw.Src)
		s := data.Sample{W: b.Dx(), H: b.Dy(), Label: i % 10, Path: pngs[i%len(pngs)]}
		for p := 0; p < b.Dx()*b.Dy(); p++ {
			// Vary the pixels per sample so that answers differ.
			s.Pix = append(s.Pix, rgba.Pix[p*4]^uint8(i*7), rgba.Pix[p*4+1], rgba.Pix[p*4+2]^uint8(i*3))
		}
		d.Samples = append(d.Samples, s)
	}
	return d
}

func TestEvaluateConsistent(t *testing.T) {
	f, err := format.LoadFamily(filepath.Join("..", "testdata", "golden", "golden10"))
	if err != nil {
		t.Fatal(err)
	}
	d := evalFixture(t, f)
	pool := nn.NewPool(2)
	defer pool.Close()
	rep, err := Evaluate(f, d, 3, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Each variant alone, recomputed image by image through the Runner path.
	for v, m := range f.Models {
		r := m.NewRunner(nil)
		correct := 0
		for _, s := range d.Samples {
			img := &image.NRGBA{Pix: make([]uint8, s.W*s.H*4), Stride: s.W * 4, Rect: image.Rect(0, 0, s.W, s.H)}
			for p := 0; p < s.W*s.H; p++ {
				copy(img.Pix[p*4:p*4+3], s.Pix[p*3:p*3+3])
				img.Pix[p*4+3] = 255
			}
			if argmax32(r.Probs(img)) == s.Label {
				correct++
			}
		}
		if want := float64(correct) / float64(len(d.Samples)); math.Abs(rep.Variants[v].Accuracy-want) > 1e-12 {
			t.Errorf("variant %s: Evaluate says %.4f, the runner %.4f", rep.Variants[v].ID, rep.Variants[v].Accuracy, want)
		}
	}
	if len(rep.Subsets) != 4 {
		t.Fatalf("%d subset sizes, want 4", len(rep.Subsets))
	}
	// A single variant's fused answer is its own arg-max.
	mean := 0.0
	for _, v := range rep.Variants {
		mean += v.Accuracy / 4
	}
	if s := rep.Subsets[0]; s.Count != 4 || math.Abs(s.Mean-mean) > 1e-12 {
		t.Errorf("size 1: %+v, want 4 subsets with mean %.4f", s, mean)
	}
	if s := rep.Subsets[1]; s.Count != 6 || s.Min > s.Mean || s.Mean > s.Max {
		t.Errorf("size 2: %+v", s)
	}
	if s := rep.Subsets[3]; s.Count != 1 || s.Mean != rep.Fused || s.Min != rep.Fused {
		t.Errorf("size 4: %+v, want the fused accuracy %.4f", s, rep.Fused)
	}
	// Mismatched classes are refused.
	d.Classes = append([]string{"x"}, d.Classes[1:]...)
	if _, err := Evaluate(f, d, 3, pool, nil); err == nil {
		t.Error("Evaluate accepted data with other class names")
	}
}
