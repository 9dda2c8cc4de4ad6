package nn_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"gorgonia.org/tensor"
)

// randomWeights gives every tensor spec wants random values of a sensible
// scale (running variances positive), for timing only.
func randomWeights(spec nn.Spec, seed uint64) nn.Weights {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := nn.Weights{Tensors: map[string]*tensor.Dense{}, DTypes: map[string]string{}}
	for _, t := range spec.Tensors() {
		if t.Optional {
			continue
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64() * 0.1)
			if strings.HasSuffix(t.Name, "running_var") {
				data[i] = 1 + float32(rng.Float64())
			}
		}
		w.Names = append(w.Names, t.Name)
		w.Tensors[t.Name] = tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(data))
		w.DTypes[t.Name] = "F32"
	}
	return w
}

// BenchmarkForward times one forward pass (batch 1, one thread, no
// preprocessing) of MobileNetV2-1.0 at 224x224 and of a small variant.
func BenchmarkForward(b *testing.B) {
	small := nn.DefaultSpec()
	small.WidthMult, small.Resolution, small.NumClasses = 0.35, 96, 10
	for _, r := range []struct {
		name string
		spec nn.Spec
	}{
		{"w100-r224", nn.DefaultSpec()},
		{"w035-r96", small},
	} {
		b.Run(r.name, func(b *testing.B) {
			m, err := nn.NewModel(r.spec, randomWeights(r.spec, 1), r.name)
			if err != nil {
				b.Fatal(err)
			}
			s := m.NewSession(1, nil)
			in := make([]float32, m.InputSize())
			s.Forward(in) // first touch of every buffer
			b.ReportAllocs()
			for b.Loop() {
				s.Forward(in)
			}
		})
	}
}
