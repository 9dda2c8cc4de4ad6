package kernels

// Pure-Go backward kernels: the only ones off amd64 and with -tags purego,
// and the fallback on amd64 CPUs without AVX2.

// gemmATBGeneric is GemmATB (arguments checked, m, k, n > 0) in pure Go. It
// takes four rows of dw at a time and, for every row i of a and d, adds the
// four multiples a[i][kk..kk+3] * d[i][:] to them; the four rows (4n floats)
// stay in L1 while the rows of a and d stream past. Each dw element sums its
// terms in order of i.
func gemmATBGeneric(m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) {
	kk := 0
	for ; kk+4 <= k; kk += 4 {
		w0 := dw[kk*n : kk*n+n]
		w1 := dw[(kk+1)*n : (kk+1)*n+n]
		w2 := dw[(kk+2)*n : (kk+2)*n+n]
		w3 := dw[(kk+3)*n : (kk+3)*n+n]
		for i := 0; i < m; i++ {
			ar := a[i*lda+kk : i*lda+kk+4]
			a0, a1, a2, a3 := ar[0], ar[1], ar[2], ar[3]
			dr := d[i*ldd : i*ldd+n]
			for j, v := range dr {
				w0[j] += a0 * v
				w1[j] += a1 * v
				w2[j] += a2 * v
				w3[j] += a3 * v
			}
		}
	}
	for ; kk < k; kk++ {
		w0 := dw[kk*n : kk*n+n]
		for i := 0; i < m; i++ {
			a0 := a[i*lda+kk]
			dr := d[i*ldd : i*ldd+n]
			for j, v := range dr {
				w0[j] += a0 * v
			}
		}
	}
}

// dwbiRowGeneric computes one input row of Depthwise3x3BackInput for one
// channel chunk (see dwbiRows); wb holds the chunk's weights, tap-major.
func dwbiRowGeneric(r *dwbiRows, dout, wb, din []float32) {
	c, cc, ccp, w, ow, s := r.c, r.cc, r.ccp, r.w, r.ow, r.stride
	drow := din[r.din : r.din+(w-1)*c+cc]
	for ix := 0; ix < w; ix++ {
		clear(drow[ix*c : ix*c+cc])
	}
	for q := 0; q < r.n; q++ {
		grow := dout[r.dout[q] : r.dout[q]+(ow-1)*c+cc]
		for kx := 0; kx < 3; kx++ {
			t := wb[r.tap[q]+kx*ccp : r.tap[q]+kx*ccp+cc]
			// Input column ix receives output column ox when
			// ox*s + kx - 1 = ix.
			for ox := 0; ox < ow; ox++ {
				ix := ox*s + kx - 1
				if ix < 0 || ix >= w {
					continue
				}
				o := drow[ix*c : ix*c+cc]
				g := grow[ox*c : ox*c+cc]
				for j := range o {
					o[j] += t[j] * g[j]
				}
			}
		}
	}
}

// dwbwRowGeneric adds the products of one input row and one output row (see
// dwbwRow) to the three accumulators acc[r.acc+kx*ccp:][:cc], kx = 0, 1, 2.
func dwbwRowGeneric(r *dwbwRow, in, dout, acc []float32) {
	c, cc, ccp, w, ow, s := r.c, r.cc, r.ccp, r.w, r.ow, r.stride
	irow := in[r.in : r.in+(w-1)*c+cc]
	grow := dout[r.dout : r.dout+(ow-1)*c+cc]
	for kx := 0; kx < 3; kx++ {
		sum := acc[r.acc+kx*ccp : r.acc+kx*ccp+cc]
		for ox := 0; ox < ow; ox++ {
			ix := ox*s + kx - 1
			if ix < 0 || ix >= w {
				continue
			}
			x := irow[ix*c : ix*c+cc]
			g := grow[ox*c : ox*c+cc]
			for j := range sum {
				sum[j] += x[j] * g[j]
			}
		}
	}
}
