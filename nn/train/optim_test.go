package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/varpar/varpar/nn/format"
)

// TestSGDUpdate checks sgdUpdate against PyTorch's SGD step written out in
// float64: d = g + wd*p; buf = mom*buf + d (buf = d on the first step);
// d = d + mom*buf (Nesterov) or buf; p -= lr*d; over three steps.
func TestSGDUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, nesterov := range []bool{false, true} {
		const n, lr, mom, wd = 37, 0.05, 0.9, 5e-4
		p := make([]float32, n)
		buf := make([]float32, n)
		rp := make([]float64, n)
		rbuf := make([]float64, n)
		for j := range p {
			p[j] = float32(rng.NormFloat64())
			rp[j] = float64(p[j])
		}
		for step := 0; step < 3; step++ {
			g := make([]float32, n)
			for j := range g {
				g[j] = float32(rng.NormFloat64())
			}
			sgdUpdate(p, g, buf, lr, mom, wd, nesterov)
			for j := range rp {
				d := float64(g[j]) + wd*rp[j]
				if step == 0 {
					rbuf[j] = d
				} else {
					rbuf[j] = mom*rbuf[j] + d
				}
				if nesterov {
					d += mom * rbuf[j]
				} else {
					d = rbuf[j]
				}
				rp[j] -= lr * d
			}
			for j := range p {
				if math.Abs(float64(p[j])-rp[j]) > 1e-5 || math.Abs(float64(buf[j])-rbuf[j]) > 1e-5 {
					t.Fatalf("nesterov=%v step %d element %d: p %v buf %v, want %v %v", nesterov, step, j, p[j], buf[j], rp[j], rbuf[j])
				}
			}
		}
	}
}

// TestWeightDecayOnlyOnWeights: with zero gradients a step changes only what
// weight decay touches, and that must be exactly the convolution and linear
// weights: batch-norm scales and shifts and the classifier's bias keep
// their values.
func TestWeightDecayOnlyOnWeights(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.WeightDecay = 0.1
	tr := newTrainerT(t, gcSpecs(), cfg, nil)
	tr.lr = 0.5
	for _, n := range tr.nets {
		before := append([]float32(nil), n.params...)
		clear(n.grads)
		clear(n.mom)
		tr.net = n
		tr.sgdPart(0, 1)
		tr.net = nil
		seen := 0
		for _, p := range n.tensors {
			if p.stat {
				continue
			}
			seen++
			isWeight := len(p.shape) >= 2 // conv [out,in,kh,kw] or linear [out,in]
			if p.decay != isWeight {
				t.Errorf("%s %v: decay=%v, want %v", p.name, p.shape, p.decay, isWeight)
			}
			changed := 0
			for j := p.off; j < p.off+p.n; j++ {
				if n.params[j] != before[j] {
					changed++
				}
				if isWeight && before[j] != 0 {
					// One step from a zero buffer with Nesterov: d = wd*p; buf = d; p -= lr*(d + mom*d).
					want := before[j] - float32(0.5*(1+cfg.Momentum))*float32(0.1)*before[j]
					if math.Abs(float64(n.params[j]-want)) > 1e-6*math.Abs(float64(before[j]))+1e-9 {
						t.Fatalf("%s[%d]: %v -> %v, want %v", p.name, j-p.off, before[j], n.params[j], want)
					}
				}
			}
			if !isWeight && changed > 0 {
				t.Errorf("%s %v: %d values changed by weight decay", p.name, p.shape, changed)
			}
			if isWeight && changed == 0 {
				t.Errorf("%s %v: weight decay changed nothing", p.name, p.shape)
			}
		}
		if seen == 0 {
			t.Fatal("no parameters")
		}
	}
}
