package kernels

import "runtime"

// Pure Go kernel: every architecture, and the reference for the assembly.
//
// A register tile of 4 columns walks the rows in blocks: 4×4 (16
// accumulators, 4 A values and 4 B values per k, 24 live floats) where there
// are 32 FP registers (arm64 and other 64-bit RISCs), 2×4 (14 live floats)
// where there are 16 (amd64 without AVX2, 386, arm). Each block of rows of A
// (at most 4*K floats) stays in L1 while the tile sweeps every 4-column group
// of every panel of B. Left-over rows use a 1×4 tile. Every tile sums in the
// same order, so results do not depend on how the caller splits the rows.

// gemmWideTile selects the 4×4 tile. (A variable, so that tests can run both.)
var gemmWideTile = runtime.GOARCH == "arm64" || runtime.GOARCH == "riscv64" ||
	runtime.GOARCH == "loong64" || runtime.GOARCH == "ppc64" || runtime.GOARCH == "ppc64le" ||
	runtime.GOARCH == "mips64" || runtime.GOARCH == "mips64le"

// gemmGeneric is Gemm for the pure-Go kernel; the arguments are checked.
func gemmGeneric(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	k, n := b.K, b.N
	relu := act == ActReLU6
	var bt [4]float32 // bias of the current 4 columns, zero-padded
	i := 0
	if gemmWideTile {
		for ; i+4 <= m; i += 4 {
			a0 := a[i*lda : i*lda+k]
			a1 := a[(i+1)*lda : (i+1)*lda+k]
			a2 := a[(i+2)*lda : (i+2)*lda+k]
			a3 := a[(i+3)*lda : (i+3)*lda+k]
			for j0 := 0; j0 < n; j0 += 4 {
				bp := b.column(j0)
				c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 := gemmKern4x4(a0, a1, a2, a3, bp)
				w := min(4, n-j0)
				gemmBias4(&bt, bias, j0, w)
				gemmStore4(c, i*ldc+j0, w, res, i*ldr+j0, &bt, relu, c00, c01, c02, c03)
				gemmStore4(c, (i+1)*ldc+j0, w, res, (i+1)*ldr+j0, &bt, relu, c10, c11, c12, c13)
				gemmStore4(c, (i+2)*ldc+j0, w, res, (i+2)*ldr+j0, &bt, relu, c20, c21, c22, c23)
				gemmStore4(c, (i+3)*ldc+j0, w, res, (i+3)*ldr+j0, &bt, relu, c30, c31, c32, c33)
			}
		}
	} else {
		for ; i+2 <= m; i += 2 {
			a0 := a[i*lda : i*lda+k]
			a1 := a[(i+1)*lda : (i+1)*lda+k]
			for j0 := 0; j0 < n; j0 += 4 {
				bp := b.column(j0)
				c00, c01, c02, c03, c10, c11, c12, c13 := gemmKern2x4(a0, a1, bp)
				w := min(4, n-j0)
				gemmBias4(&bt, bias, j0, w)
				gemmStore4(c, i*ldc+j0, w, res, i*ldr+j0, &bt, relu, c00, c01, c02, c03)
				gemmStore4(c, (i+1)*ldc+j0, w, res, (i+1)*ldr+j0, &bt, relu, c10, c11, c12, c13)
			}
		}
	}
	for ; i < m; i++ {
		a0 := a[i*lda : i*lda+k]
		for j0 := 0; j0 < n; j0 += 4 {
			bp := b.column(j0)
			c00, c01, c02, c03 := gemmKern1x4(a0, bp)
			w := min(4, n-j0)
			gemmBias4(&bt, bias, j0, w)
			gemmStore4(c, i*ldc+j0, w, res, i*ldr+j0, &bt, relu, c00, c01, c02, c03)
		}
	}
}

// gemmKern4x4 returns the 4×4 tile of A(4 rows) × B(4 columns): a0..a3 are
// the rows (len K each), bp starts at the first column in its panel at k=0.
func gemmKern4x4(a0, a1, a2, a3, bp []float32) (c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32) {
	a1 = a1[:len(a0)]
	a2 = a2[:len(a0)]
	a3 = a3[:len(a0)]
	for kk, x0 := range a0 {
		bk := bp[kk*gemmPanel : kk*gemmPanel+4 : kk*gemmPanel+4]
		b0, b1, b2, b3 := bk[0], bk[1], bk[2], bk[3]
		c00 += x0 * b0
		c01 += x0 * b1
		c02 += x0 * b2
		c03 += x0 * b3
		x1 := a1[kk]
		c10 += x1 * b0
		c11 += x1 * b1
		c12 += x1 * b2
		c13 += x1 * b3
		x2 := a2[kk]
		c20 += x2 * b0
		c21 += x2 * b1
		c22 += x2 * b2
		c23 += x2 * b3
		x3 := a3[kk]
		c30 += x3 * b0
		c31 += x3 * b1
		c32 += x3 * b2
		c33 += x3 * b3
	}
	return
}

// gemmKern2x4 is gemmKern4x4 for 2 rows: 14 live floats, for architectures
// with 16 FP registers (amd64 without AVX2, 386, arm).
func gemmKern2x4(a0, a1, bp []float32) (c00, c01, c02, c03, c10, c11, c12, c13 float32) {
	a1 = a1[:len(a0)]
	for kk, x0 := range a0 {
		bk := bp[kk*gemmPanel : kk*gemmPanel+4 : kk*gemmPanel+4]
		b0, b1, b2, b3 := bk[0], bk[1], bk[2], bk[3]
		x1 := a1[kk]
		c00 += x0 * b0
		c01 += x0 * b1
		c02 += x0 * b2
		c03 += x0 * b3
		c10 += x1 * b0
		c11 += x1 * b1
		c12 += x1 * b2
		c13 += x1 * b3
	}
	return
}

// gemmKern1x4 is gemmKern4x4 for one row.
func gemmKern1x4(a0, bp []float32) (c00, c01, c02, c03 float32) {
	for kk, x0 := range a0 {
		bk := bp[kk*gemmPanel : kk*gemmPanel+4 : kk*gemmPanel+4]
		c00 += x0 * bk[0]
		c01 += x0 * bk[1]
		c02 += x0 * bk[2]
		c03 += x0 * bk[3]
	}
	return
}

// gemmBias4 loads bias[j0:j0+w] into bt, zero-padded (all zero if bias is nil).
func gemmBias4(bt *[4]float32, bias []float32, j0, w int) {
	*bt = [4]float32{}
	if bias != nil {
		copy(bt[:w], bias[j0:j0+w])
	}
}

// gemmStore4 finishes w (1..4) outputs of one row: adds the bias, applies the
// activation, adds the residual (if res is not nil) and stores at c[off:].
func gemmStore4(c []float32, off, w int, res []float32, roff int, bt *[4]float32, relu bool, v0, v1, v2, v3 float32) {
	v := [4]float32{v0 + bt[0], v1 + bt[1], v2 + bt[2], v3 + bt[3]}
	if relu {
		for j := range v {
			v[j] = min(max(v[j], 0), 6)
		}
	}
	if res != nil {
		r := res[roff : roff+w]
		for j := range r {
			v[j] += r[j]
		}
	}
	copy(c[off:off+w], v[:w])
}

// column returns the packed panel data from column j (at k = 0) to the end of
// its panel; the column's value at k is at [k*gemmPanel].
func (b *PackedB) column(j int) []float32 {
	if b.K == 0 {
		return nil
	}
	p, cg := j/gemmPanel, j%gemmPanel
	return b.data[p*b.K*gemmPanel+cg : (p+1)*b.K*gemmPanel]
}
