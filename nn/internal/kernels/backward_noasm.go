//go:build !amd64 || purego

package kernels

// Without assembly the backward kernels always run in pure Go.

func gemmATBAsm(i ISA, m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) bool {
	return false
}

func dwbiRowsAsm(i ISA, r *dwbiRows, dout, wb, din []float32, y0, y1 int) bool { return false }

func dwbwRowsAsm(i ISA, r *dwbwRow, in, dout, acc []float32, oy0, oy1 int) bool { return false }
