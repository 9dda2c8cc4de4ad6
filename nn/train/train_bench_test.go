package train

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// BenchmarkTrainStep times one training step (forward, backward, SGD update)
// of a single CIFAR-style model at batch 128 on GOMAXPROCS threads, the rows
// bench/train/compare.sh compares with PyTorch.
func BenchmarkTrainStep(b *testing.B) {
	rows := []struct {
		name  string
		width float64
		res   int
		last  int
	}{
		{"w035-r32", 0.35, 32, 512},
		{"w050-r24", 0.5, 24, 512},
		{"base-w100-r32", 1.0, 32, 1280},
	}
	const batch = 128
	for _, r := range rows {
		b.Run(r.name+"/batch128", func(b *testing.B) {
			spec := trainCIFARSpec(r.width, r.res, r.last, 10)
			cfg := format.DefaultTrainConfig()
			cfg.Batch = batch
			cfg.LossB = 0
			pool := nn.NewPool(runtime.GOMAXPROCS(0))
			defer pool.Close()
			tr, err := NewTrainer([]nn.Spec{spec}, nil, cfg, pool)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			in := make([]float32, batch*r.res*r.res*3)
			for i := range in {
				in[i] = float32(rng.NormFloat64())
			}
			tg := make([]float32, batch*10)
			for i := 0; i < batch; i++ {
				tg[i*10+rng.IntN(10)] = 1
			}
			inputs := [][]float32{in}
			tr.Step(inputs, tg, 0.05) // first touch of every buffer
			b.ReportAllocs()
			for b.Loop() {
				tr.Step(inputs, tg, 0.05)
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
