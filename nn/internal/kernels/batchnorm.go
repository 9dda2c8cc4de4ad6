package kernels

// Batch norm in training mode, and the elementwise work around it.
//
// A convolution's pre-BN output z (rows of c channels, NHWC) becomes
//
//	y = act(z*scale + shift)           (+ res for a residual projection)
//
// with per-channel scale = gamma*invstd and shift = beta - mean*scale, the
// same float32 expression in the forward pass and when the backward pass
// recomputes the ReLU6 mask, so the mask is exactly the forward's. In the
// backward pass, with g = dy where 0 < z*scale+shift < 6 (ReLU6) and 0
// elsewhere, and sums over the N = batch*H*W rows:
//
//	dgamma = sum g*xhat,  dbeta = sum g,  xhat = (z-mean)*invstd
//	dz     = gamma*invstd*(g - sum(g)/N - xhat*sum(g*xhat)/N)
//	       = a*g + b*z + c   (per-channel a, b, c; see bnBackCoeffs)
//
// so the backward pass is one reduction (sum g, sum g*z) and one pass writing
// dz. Sums are float64; the elementwise math is float32. The kernels here work
// on a range of rows; the trainer splits rows across the pool and adds the
// partial sums in a fixed order.
//
// Each kernel dispatches to AVX-512 or AVX2 assembly where there is some
// (batchnorm_amd64.s) and otherwise runs the pure-Go loops of batchnorm_generic.go: bounds
// checks hoisted out of the loops, and no branch on the data (the ReLU6
// clamp and mask would mispredict on half the values).

// BNStats adds, for each channel j < c, the sum and the sum of squares of
// z[r*c+j] over the rows of z (len(z) is a multiple of c) to s[j] and q[j].
func BNStats(z []float32, c int, s, q []float64) {
	if len(z) == 0 {
		return
	}
	if bnStatsAsm(z, c, s, q) {
		return
	}
	bnStatsGeneric(z, c, s, q)
}

// BNApply writes y = act(z*scale + shift) (+ res[i] if res is not nil) for
// the rows of z; act is ReLU6 if relu. y may be z.
func BNApply(z, y []float32, c int, scale, shift []float32, relu bool, res []float32) {
	if len(z) == 0 {
		return
	}
	y = y[:len(z)]
	if res != nil {
		res = res[:len(z)]
	}
	if bnApplyAsm(z, y, c, scale, shift, relu, res) {
		return
	}
	bnApplyGeneric(z, y, c, scale, shift, relu, res)
}

// BNBackReduce adds, for each channel, sum g and sum g*z over the rows of dy
// and z to sg and sgz, where g = dy, masked by 0 < z*scale+shift < 6 if relu.
func BNBackReduce(dy, z []float32, c int, scale, shift []float32, relu bool, sg, sgz []float64) {
	if len(z) == 0 {
		return
	}
	dy = dy[:len(z)]
	if bnBackReduceAsm(dy, z, c, scale, shift, relu, sg, sgz) {
		return
	}
	bnBackReduceGeneric(dy, z, c, scale, shift, relu, sg, sgz)
}

// BNBackApply writes dz = a*g + b*z + cc with g as in BNBackReduce. dz may be
// dy.
func BNBackApply(dy, z, dz []float32, c int, scale, shift []float32, relu bool, a, b, cc []float32) {
	if len(z) == 0 {
		return
	}
	dy, dz = dy[:len(z)], dz[:len(z)]
	if bnBackApplyAsm(dy, z, dz, c, scale, shift, relu, a, b, cc) {
		return
	}
	bnBackApplyGeneric(dy, z, dz, c, scale, shift, relu, a, b, cc)
}

// NTCopy copies src to dst (same length) bypassing the caches where the
// hardware allows (non-temporal stores): for a large tensor written now and
// read back only in a later phase, so that the store does not first read each
// line of dst from memory. Float32 alignment is all it needs; the unaligned
// ends are copied normally.
func NTCopy(dst, src []float32) {
	src = src[:len(dst)]
	from, n := ntCopyAsm(dst, src)
	if n == 0 {
		copy(dst, src)
		return
	}
	copy(dst[:from], src[:from])
	copy(dst[from+n:], src[from+n:])
}
