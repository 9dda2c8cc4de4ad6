//go:build !amd64 || purego

package nn

// Without assembly the backward kernels always run in pure Go.

func gemmATBAsm(i isa, m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) bool {
	return false
}

func dwbiRowsAsm(i isa, r *dwbiRows, dout, wb, din []float32, y0, y1 int) bool { return false }

func dwbwRowsAsm(i isa, r *dwbwRow, in, dout, acc []float32, oy0, oy1 int) bool { return false }
