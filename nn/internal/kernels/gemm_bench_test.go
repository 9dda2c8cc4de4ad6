package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// gemmBenchShapes are MobileNetV2-1.0 at 224x224: the stem (im2col), the
// 1x1 expand/project convolutions of each stage, and the classifier.
var gemmBenchShapes = [][3]int{
	{12544, 27, 32}, // stem 3x3 s2 as im2col
	{12544, 32, 32},
	{12544, 32, 16},
	{784, 32, 16}, {784, 32, 32}, {784, 16, 96},
	{12544, 16, 96},
	{3136, 24, 144},
	{3136, 144, 24},
	{784, 32, 192},
	{784, 192, 32},
	{196, 64, 384},
	{196, 384, 64},
	{196, 96, 576},
	{49, 160, 960},
	{49, 960, 160},
	{49, 320, 1280},
	{1, 1280, 1000},
}

func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, i := range Available() {
		b.Run(i.String(), func(b *testing.B) {
			defer Force(i)()
			for _, s := range gemmBenchShapes {
				m, k, n := s[0], s[1], s[2]
				b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
					a := gemmRandSlice(r, m*k)
					pb := PackB(k, n, gemmRandSlice(r, k*n))
					bias := gemmRandSlice(r, n)
					c := make([]float32, m*n)
					b.ReportAllocs()
					for b.Loop() {
						Gemm(m, a, k, pb, bias, ActReLU6, nil, 0, c, n)
					}
					b.ReportMetric(2*float64(m*k*n)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
				})
			}
		})
	}
}
