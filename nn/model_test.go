package nn_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"gorgonia.org/tensor"
)

// goldenWeights reads the weights and spec of golden10's first variant.
func goldenWeights(tb testing.TB) (nn.Spec, *format.Safetensors) {
	tb.Helper()
	dir := filepath.Join("testdata", "golden", "golden10")
	f, err := format.LoadFamily(dir)
	if err != nil {
		tb.Fatal(err)
	}
	v := f.Manifest.Variants[0]
	st, err := format.ReadSafetensors(filepath.Join(dir, v.Weights))
	if err != nil {
		tb.Fatal(err)
	}
	return v.Spec, st
}

func TestNewModelTensorErrors(t *testing.T) {
	const conv = "features.3.conv.1.0.weight" // depthwise of block 3: [144 1 3 3] at width 0.35
	tests := []struct {
		name  string
		edit  func(st *format.Safetensors)
		field string
		want  string
	}{
		{"wrong shape", func(st *format.Safetensors) {
			st.Tensors[conv] = tensor.New(tensor.WithShape(32, 1, 3, 3), tensor.WithBacking(make([]float32, 32*9)))
		}, "shape", "w.safetensors: tensor features.3.conv.1.0.weight has shape [32 1 3 3], spec wants [48 1 3 3]"},
		{"missing", func(st *format.Safetensors) {
			delete(st.Tensors, "classifier.1.bias")
		}, "missing", "w.safetensors: tensor classifier.1.bias is missing, spec wants [10]"},
		{"unexpected", func(st *format.Safetensors) {
			st.Names = append(st.Names, "features.99.weight")
			st.Tensors["features.99.weight"] = tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))
		}, "unexpected", "tensor features.99.weight ([2]) is not part of the spec"},
		{"dtype", func(st *format.Safetensors) {
			st.DTypes["features.0.0.weight"] = "I64"
		}, "dtype", "tensor features.0.0.weight has dtype I64, spec wants F32"},
		{"non-finite", func(st *format.Safetensors) {
			d := st.Tensors["features.0.1.running_var"].Data().([]float32)
			d[0] = float32(posInf())
		}, "data", "features.0.1.running_var has data a non-finite value"},
	}
	for _, tt := range tests {
		spec, st := goldenWeights(t)
		tt.edit(st)
		_, err := nn.NewModel(spec, st.Weights(), "w.safetensors")
		var te *nn.TensorError
		if !errors.As(err, &te) || te.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a %s TensorError containing %q", tt.name, err, tt.field, tt.want)
		}
	}
}

func posInf() float64 { var z float64; return 1 / z }

// A spec that differs from the weights is caught by the tensor check, not by
// an index panic in the packing code.
func TestNewModelSpecMismatch(t *testing.T) {
	spec, st := goldenWeights(t)
	for _, edit := range []func(s *nn.Spec){
		func(s *nn.Spec) { s.WidthMult = 0.5 },
		func(s *nn.Spec) { s.NumClasses = 11 },
		func(s *nn.Spec) { s.LastChannel = 512 },
		func(s *nn.Spec) { s.Setting = s.Setting[:len(s.Setting)-1] },
	} {
		s := spec
		s.Setting = append([][4]int(nil), spec.Setting...)
		edit(&s)
		if _, err := nn.NewModel(s, st.Weights(), "w.safetensors"); err == nil {
			t.Errorf("spec %+v accepted weights of another spec", s)
		}
	}
}

// TopKResized on Resize's output answers exactly as TopK on the image, for
// every variant of the golden family (each its own resolution).
func TestRunnerTopKResized(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "golden10")
	fam, err := format.LoadFamily(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range fam.Manifest.Variants {
		img, err := nn.LoadImageFile(filepath.Join(dir, v.ID+".png"), 0)
		if err != nil {
			t.Fatal(err)
		}
		r := fam.Models[i].NewRunner(nil)
		k := len(fam.Manifest.Classes)
		wantIdx, wantVal := make([]int32, k), make([]float32, k)
		r.TopK(img, wantIdx, wantVal)
		res := v.Spec.Resolution
		rgb := make([]float32, res*res*3)
		nn.ResizeImage(img, res, rgb)
		gotIdx, gotVal := make([]int32, k), make([]float32, k)
		r.TopKResized(rgb, gotIdx, gotVal)
		for j := range wantIdx {
			if gotIdx[j] != wantIdx[j] || math.Float32bits(gotVal[j]) != math.Float32bits(wantVal[j]) {
				t.Fatalf("%s: rank %d: got %d %v, want %d %v", v.ID, j, gotIdx[j], gotVal[j], wantIdx[j], wantVal[j])
			}
		}
	}
}
