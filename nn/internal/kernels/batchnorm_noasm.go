//go:build !amd64 || purego

package kernels

// Without assembly the batch-norm kernels run their pure-Go loops.

func bnStatsAsm(z []float32, c int, s, q []float64) bool { return false }

func bnApplyAsm(z, y []float32, c int, scale, shift []float32, relu bool, res []float32) bool {
	return false
}

func bnBackReduceAsm(dy, z []float32, c int, scale, shift []float32, relu bool, sg, sgz []float64) bool {
	return false
}

func bnBackApplyAsm(dy, z, dz []float32, c int, scale, shift []float32, relu bool, a, b, cc []float32) bool {
	return false
}

func ntCopyAsm(dst, src []float32) (from, n int) { return 0, 0 }
