package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkDepthwise runs the depthwise layers of MobileNetV2-1.0 at 224x224
// (plus two small shapes) on one thread, whole images, ReLU6 with bias, on
// every instruction set available. GB/s counts the input and output bytes
// once; GFLOP/s counts 2 flops per tap (bias and clamp not counted).
func BenchmarkDepthwise(b *testing.B) {
	shapes := []struct{ h, w, c, stride int }{
		{112, 112, 32, 1},
		{112, 112, 96, 2},
		{56, 56, 144, 1},
		{56, 56, 144, 2},
		{28, 28, 192, 1},
		{28, 28, 192, 2},
		{14, 14, 384, 1},
		{14, 14, 576, 1},
		{14, 14, 576, 2},
		{7, 7, 960, 1},
		{16, 16, 48, 1},
		{8, 8, 96, 2},
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, i := range Available() {
		b.Run(i.String(), func(b *testing.B) {
			for _, s := range shapes {
				h, w, c, stride := s.h, s.w, s.c, s.stride
				oh, ow := (h-1)/stride+1, (w-1)/stride+1
				in := dwRandom(r, h*w*c)
				packed := PackDepthwise(c, dwRandom(r, c*9))
				bias := dwRandom(r, c)
				out := make([]float32, oh*ow*c)
				b.Run(fmt.Sprintf("%dx%dx%d/s%d", h, w, c, stride), func(b *testing.B) {
					defer Force(i)()
					b.ReportAllocs()
					for b.Loop() {
						Depthwise3x3(in, h, w, c, stride, packed, bias, ActReLU6, out, 0, oh)
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(4*(len(in)+len(out)))/sec/1e9, "GB/s")
					b.ReportMetric(float64(2*9*len(out))/sec/1e9, "GFLOP/s")
				})
			}
		})
	}
}
