package kernels

import "math"

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
// (train_bn_amd64.s) and otherwise runs the pure-Go loops below: bounds
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

func bnStatsGeneric(z []float32, c int, s, q []float64) {
	s, q = s[:c:c], q[:c:c]
	for ; len(z) >= c; z = z[c:] {
		row := z[:c:c]
		j := 0
		for ; j+4 <= c; j += 4 {
			v := row[j : j+4 : j+4]
			ss := s[j : j+4 : j+4]
			qq := q[j : j+4 : j+4]
			v0, v1, v2, v3 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
			ss[0] += v0
			ss[1] += v1
			ss[2] += v2
			ss[3] += v3
			qq[0] += v0 * v0
			qq[1] += v1 * v1
			qq[2] += v2 * v2
			qq[3] += v3 * v3
		}
		for ; j < c; j++ {
			v := float64(row[j])
			s[j] += v
			q[j] += v * v
		}
	}
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

func bnApplyGeneric(z, y []float32, c int, scale, shift []float32, relu bool, res []float32) {
	scale, shift = scale[:c:c], shift[:c:c]
	for r := 0; r+c <= len(z); r += c {
		zr := z[r : r+c : r+c]
		yr := y[r : r+c : r+c]
		switch {
		case res != nil:
			rr := res[r : r+c : r+c]
			for j := range zr {
				yr[j] = zr[j]*scale[j] + shift[j] + rr[j]
			}
		case relu:
			j := 0
			for ; j+4 <= c; j += 4 {
				v := zr[j : j+4 : j+4]
				o := yr[j : j+4 : j+4]
				sc := scale[j : j+4 : j+4]
				sh := shift[j : j+4 : j+4]
				o[0] = bnReLU6(v[0]*sc[0] + sh[0])
				o[1] = bnReLU6(v[1]*sc[1] + sh[1])
				o[2] = bnReLU6(v[2]*sc[2] + sh[2])
				o[3] = bnReLU6(v[3]*sc[3] + sh[3])
			}
			for ; j < c; j++ {
				yr[j] = bnReLU6(zr[j]*scale[j] + shift[j])
			}
		default:
			for j := range zr {
				yr[j] = zr[j]*scale[j] + shift[j]
			}
		}
	}
}

// bnReLU6 clamps v to [0, 6]; NaN stays NaN, as in the assembly (training
// has diverged then, and the loss shows it). The builtins compile to
// branch-free code: a branch on the sign of activations mispredicts half the
// time.
func bnReLU6(v float32) float32 { return max(0, min(v, 6)) }

// bnMask is all ones if 0 < p < 6 and zero otherwise (NaN included), without
// a branch: ANDed with the bits of dy it gives the ReLU6 gradient.
func bnMask(p float32) uint32 {
	var a, b uint32
	if p > 0 {
		a = 1
	}
	if p < 6 {
		b = 1
	}
	return -(a & b)
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

func bnBackReduceGeneric(dy, z []float32, c int, scale, shift []float32, relu bool, sg, sgz []float64) {
	scale, shift = scale[:c:c], shift[:c:c]
	sg, sgz = sg[:c:c], sgz[:c:c]
	for r := 0; r+c <= len(z); r += c {
		zr := z[r : r+c : r+c]
		gr := dy[r : r+c : r+c]
		if !relu {
			for j := range zr {
				g := float64(gr[j])
				sg[j] += g
				sgz[j] += g * float64(zr[j])
			}
			continue
		}
		for j := range zr {
			v := zr[j]
			g := float64(math.Float32frombits(math.Float32bits(gr[j]) & bnMask(v*scale[j]+shift[j])))
			sg[j] += g
			sgz[j] += g * float64(v)
		}
	}
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

func bnBackApplyGeneric(dy, z, dz []float32, c int, scale, shift []float32, relu bool, a, b, cc []float32) {
	scale, shift = scale[:c:c], shift[:c:c]
	a, b, cc = a[:c:c], b[:c:c], cc[:c:c]
	for r := 0; r+c <= len(z); r += c {
		zr := z[r : r+c : r+c]
		gr := dy[r : r+c : r+c]
		or := dz[r : r+c : r+c]
		if !relu {
			for j := range zr {
				or[j] = a[j]*gr[j] + (b[j]*zr[j] + cc[j])
			}
			continue
		}
		for j := range zr {
			v := zr[j]
			g := math.Float32frombits(math.Float32bits(gr[j]) & bnMask(v*scale[j]+shift[j]))
			or[j] = a[j]*g + (b[j]*v + cc[j])
		}
	}
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
