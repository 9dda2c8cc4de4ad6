package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// atbBenchShapes are weight gradients of CIFAR MobileNetV2-1.0 (32x32
// input, batch 128) as the trainer calls GemmATB: m is one chunk of rows
// (about 32K floats of input and output, see chunkRows), k the narrower and
// n the wider of the layer's input and output channels; then whole-batch
// calls (m = 128 × the layer's pixels) of the early layers, and the
// classifier (m = batch, k = 10 classes, n = 1280 features).
var atbBenchShapes = [][3]int{
	{544, 27, 32},   // stem (im2col)
	{672, 16, 32},   // block 1 project
	{288, 16, 96},   // expand
	{272, 24, 96},   // project
	{192, 24, 144},  // expand / project
	{176, 32, 144},  // project
	{144, 32, 192},  // expand / project
	{128, 64, 192},  // project
	{64, 64, 384},   // expand / project
	{64, 96, 384},   // project
	{48, 96, 576},   // expand / project
	{32, 160, 576},  // project
	{32, 160, 960},  // expand / project
	{32, 320, 960},  // project
	{32, 320, 1280}, // last 1x1
	{131072, 32, 32},
	{131072, 16, 96},
	{32768, 24, 144},
	{8192, 32, 192},
	{2048, 64, 384},
	{128, 10, 1280}, // classifier
}

func BenchmarkGemmATB(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, i := range Available() {
		b.Run(i.String(), func(b *testing.B) {
			defer Force(i)()
			for _, s := range atbBenchShapes {
				m, k, n := s[0], s[1], s[2]
				b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
					a := gemmRandSlice(r, m*k)
					d := gemmRandSlice(r, m*n)
					dw := make([]float32, k*n)
					b.ReportAllocs()
					for b.Loop() {
						GemmATB(m, k, n, a, k, d, n, dw)
					}
					b.ReportMetric(2*float64(m*k*n)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
				})
			}
		})
	}
}

// dwbBenchShapes are the depthwise layers of CIFAR MobileNetV2-1.0, one image.
var dwbBenchShapes = []struct{ h, w, c, stride int }{
	{32, 32, 32, 1},
	{32, 32, 96, 1},
	{32, 32, 144, 1},
	{32, 32, 144, 2},
	{16, 16, 192, 1},
	{16, 16, 192, 2},
	{8, 8, 384, 1},
	{8, 8, 576, 1},
	{8, 8, 576, 2},
	{4, 4, 960, 1},
}

// benchDepthwiseBack times one of the depthwise backward kernels on every
// ISA. GFLOP/s counts 2 flops per tap of every output pixel (as
// BenchmarkDepthwise does), padding taps included.
func benchDepthwiseBack(b *testing.B, weight bool) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, i := range Available() {
		b.Run(i.String(), func(b *testing.B) {
			for _, s := range dwbBenchShapes {
				h, w, c, stride := s.h, s.w, s.c, s.stride
				oh, ow := (h-1)/stride+1, (w-1)/stride+1
				in := dwRandom(r, h*w*c)
				dout := dwRandom(r, oh*ow*c)
				wts := dwRandom(r, 9*c)
				b.Run(fmt.Sprintf("%dx%dx%d/s%d", h, w, c, stride), func(b *testing.B) {
					defer Force(i)()
					b.ReportAllocs()
					for b.Loop() {
						if weight {
							Depthwise3x3BackWeight(in, h, w, c, stride, dout, wts, 0, oh)
						} else {
							Depthwise3x3BackInput(dout, h, w, c, stride, wts, in, 0, h)
						}
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(2*9*oh*ow*c)/sec/1e9, "GFLOP/s")
				})
			}
		})
	}
}

func BenchmarkDepthwiseBackInput(b *testing.B)  { benchDepthwiseBack(b, false) }
func BenchmarkDepthwiseBackWeight(b *testing.B) { benchDepthwiseBack(b, true) }
