//go:build !amd64 || purego

package kernels

// Without assembly, activeISA is always isaGeneric; these only satisfy the
// dispatch in Gemm.

func gemmAVX512(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	gemmGeneric(m, a, lda, b, bias, act, res, ldr, c, ldc)
}

func gemmAVX2(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	gemmGeneric(m, a, lda, b, bias, act, res, ldr, c, ldc)
}
