package kernels

import "math"

// Pure-Go depthwise 3x3 kernel: the only one off amd64 (Raspberry Pi arm64 and
// armv7) and with -tags purego, and the fallback on amd64 CPUs without AVX2.
//
// An output row whose three input rows are inside the image (all rows but
// the first and possibly the last) goes through row1 or row2 (stride 1 or
// 2): one channel at a time, with the nine weights held in registers, sweeping
// the pixels of the row so that each input value is loaded once (three loads
// per output for stride 1, six for stride 2, instead of nine input and nine
// weight loads). Only the first and last pixel of such a row touch the
// padding, and they are peeled off the sweep; the inner loops carry no
// padding tests. Each output is summed as three independent row sums, which
// helps in-order cores such as the Pi 3's Cortex-A53; on arm64 the compiler
// fuses the multiply-adds. The first and last rows (with a padding row) go
// pixel by pixel through partial, adding the taps inside the image.
//
// The channel-at-a-time sweep reads with a stride of c floats, but the lines
// it touches (three rows of w pixels) are reused by the next 15 channels, and
// 3*w lines stay in L1 for any w a MobileNet has.

// dwClamp returns the bounds the activation clamps to; ±Inf for ActNone, where
// min(max(s, -Inf), +Inf) == s (and NaN stays NaN).
func dwClamp(act Activation) (lo, hi float32) {
	if act == ActReLU6 {
		return 0, 6
	}
	return float32(math.Inf(-1)), float32(math.Inf(1))
}

// dwTaps holds the per-call state of the generic kernel.
type dwTaps struct {
	w      [9][]float32 // w[t][ch], t = ky*3+kx, each of length c
	bias   []float32    // nil or length c
	lo, hi float32      // activation clamp
	relu   bool         // whether the clamp does anything
}

func depthwiseGeneric(in []float32, h, w, c, stride int, packed, bias []float32, act Activation, out []float32, oy0, oy1 int) {
	cp := PadChannels(c)
	ow := (w-1)/stride + 1
	var k dwTaps
	for t := range k.w {
		k.w[t] = packed[t*cp : t*cp+c : t*cp+c]
	}
	if bias != nil {
		k.bias = bias[:c:c]
	}
	k.lo, k.hi = dwClamp(act)
	k.relu = act == ActReLU6
	rs := w * c // input row stride
	for oy := oy0; oy < oy1; oy++ {
		iy := oy*stride - 1 // input row of ky = 0
		ky0, ky1 := 0, 3
		if iy < 0 {
			ky0 = 1
		}
		if iy+2 >= h {
			ky1 = 2
		}
		orow := out[oy*ow*c : (oy+1)*ow*c]
		if ky0 == 0 && ky1 == 3 {
			// All three input rows inside: the channel-at-a-time sweep.
			r0 := in[iy*rs:][:rs]
			r1 := in[(iy+1)*rs:][:rs]
			r2 := in[(iy+2)*rs:][:rs]
			if stride == 1 {
				k.row1(orow, r0, r1, r2, c)
			} else {
				k.row2(orow, r0, r1, r2, c, w)
			}
			continue
		}
		for ox := 0; ox < ow; ox++ {
			ix := ox*stride - 1 // input column of kx = 0
			kx0, kx1 := 0, 3
			if ix < 0 {
				kx0 = 1
			}
			if ix+2 >= w {
				kx1 = 2
			}
			base := iy*rs + ix*c // offset of tap (0, 0); negative on the top row or left column
			k.partial(orow[ox*c:][:c], in, base, rs, ky0, ky1, kx0, kx1)
		}
	}
}

// partial computes one output pixel o whose window sticks out of the image:
// only taps ky in [ky0, ky1), kx in [kx0, kx1) are inside. base is the offset
// in in of tap (0, 0) (it may be negative), rs the input row stride.
func (k *dwTaps) partial(o, in []float32, base, rs, ky0, ky1, kx0, kx1 int) {
	c := len(o)
	if k.bias != nil {
		copy(o, k.bias[:c])
	} else {
		clear(o)
	}
	for ky := ky0; ky < ky1; ky++ {
		for kx := kx0; kx < kx1; kx++ {
			x := in[base+ky*rs+kx*c:][:c]
			wt := k.w[ky*3+kx][:c]
			for j := range o {
				o[j] += wt[j] * x[j]
			}
		}
	}
	if k.relu {
		lo, hi := k.lo, k.hi
		for j := range o {
			o[j] = min(max(o[j], lo), hi)
		}
	}
}

// row1 computes an output row with stride 1 whose three input rows r0, r1,
// r2 (w*c floats each) are all inside the image, one channel at a time: the
// nine weights stay in registers and, sweeping the pixels, each input value
// is loaded once (three loads per output instead of nine). The sweep is
// unrolled by three so that the column registers rotate without moves.
func (k *dwTaps) row1(o, r0, r1, r2 []float32, c int) {
	n := len(o)
	r0, r1, r2 = r0[:n], r1[:n], r2[:n]
	lo, hi := k.lo, k.hi
	for j := 0; j < c; j++ {
		w0, w1, w2 := k.w[0][j], k.w[1][j], k.w[2][j]
		w3, w4, w5 := k.w[3][j], k.w[4][j], k.w[5][j]
		w6, w7, w8 := k.w[6][j], k.w[7][j], k.w[8][j]
		var b float32
		if k.bias != nil {
			b = k.bias[j]
		}
		// a: column x-1 (zero padding for x = 0), m: column x, of the
		// three rows; i indexes column x, channel j.
		var a0, a1, a2 float32
		m0, m1, m2 := r0[j], r1[j], r2[j]
		i := j
		for ; i+3*c < n; i += 3 * c {
			n0, n1, n2 := r0[i+c], r1[i+c], r2[i+c]
			s0 := b + w0*a0 + w1*m0 + w2*n0
			s1 := w3*a1 + w4*m1 + w5*n1
			s2 := w6*a2 + w7*m2 + w8*n2
			o[i] = min(max(s0+s1+s2, lo), hi)
			a0, a1, a2 = r0[i+2*c], r1[i+2*c], r2[i+2*c]
			s0 = b + w0*m0 + w1*n0 + w2*a0
			s1 = w3*m1 + w4*n1 + w5*a1
			s2 = w6*m2 + w7*n2 + w8*a2
			o[i+c] = min(max(s0+s1+s2, lo), hi)
			m0, m1, m2 = r0[i+3*c], r1[i+3*c], r2[i+3*c]
			s0 = b + w0*n0 + w1*a0 + w2*m0
			s1 = w3*n1 + w4*a1 + w5*m1
			s2 = w6*n2 + w7*a2 + w8*m2
			o[i+2*c] = min(max(s0+s1+s2, lo), hi)
		}
		for ; i+c < n; i += c {
			n0, n1, n2 := r0[i+c], r1[i+c], r2[i+c]
			s0 := b + w0*a0 + w1*m0 + w2*n0
			s1 := w3*a1 + w4*m1 + w5*n1
			s2 := w6*a2 + w7*m2 + w8*n2
			o[i] = min(max(s0+s1+s2, lo), hi)
			a0, a1, a2 = m0, m1, m2
			m0, m1, m2 = n0, n1, n2
		}
		// Last column: its right neighbour is padding.
		s0 := b + w0*a0 + w1*m0
		s1 := w3*a1 + w4*m1
		s2 := w6*a2 + w7*m2
		o[i] = min(max(s0+s1+s2, lo), hi)
	}
}

// row2 is row1 for stride 2: output x reads columns 2x-1, 2x, 2x+1 and
// column 2x+1 is carried over to output x+1 (six loads per output);
// unrolled by two for the same reason.
func (k *dwTaps) row2(o, r0, r1, r2 []float32, c, w int) {
	n := len(r0)
	r1, r2 = r1[:n], r2[:n]
	lo, hi := k.lo, k.hi
	for j := 0; j < c; j++ {
		w0, w1, w2 := k.w[0][j], k.w[1][j], k.w[2][j]
		w3, w4, w5 := k.w[3][j], k.w[4][j], k.w[5][j]
		w6, w7, w8 := k.w[6][j], k.w[7][j], k.w[8][j]
		var b float32
		if k.bias != nil {
			b = k.bias[j]
		}
		var a0, a1, a2 float32 // column 2x-1 (zero padding for x = 0)
		i := j                 // column 2x, channel j
		oi := j                // output x, channel j
		for ; i+3*c < n; i, oi = i+4*c, oi+2*c {
			m0, m1, m2 := r0[i], r1[i], r2[i]
			n0, n1, n2 := r0[i+c], r1[i+c], r2[i+c]
			s0 := b + w0*a0 + w1*m0 + w2*n0
			s1 := w3*a1 + w4*m1 + w5*n1
			s2 := w6*a2 + w7*m2 + w8*n2
			o[oi] = min(max(s0+s1+s2, lo), hi)
			m0, m1, m2 = r0[i+2*c], r1[i+2*c], r2[i+2*c]
			a0, a1, a2 = r0[i+3*c], r1[i+3*c], r2[i+3*c]
			s0 = b + w0*n0 + w1*m0 + w2*a0
			s1 = w3*n1 + w4*m1 + w5*a1
			s2 = w6*n2 + w7*m2 + w8*a2
			o[oi+c] = min(max(s0+s1+s2, lo), hi)
		}
		for ; i+c < n; i, oi = i+2*c, oi+c {
			m0, m1, m2 := r0[i], r1[i], r2[i]
			n0, n1, n2 := r0[i+c], r1[i+c], r2[i+c]
			s0 := b + w0*a0 + w1*m0 + w2*n0
			s1 := w3*a1 + w4*m1 + w5*n1
			s2 := w6*a2 + w7*m2 + w8*n2
			o[oi] = min(max(s0+s1+s2, lo), hi)
			a0, a1, a2 = n0, n1, n2
		}
		if w%2 == 1 {
			// Last output: column 2x = w-1 is the last, 2x+1 is padding.
			m0, m1, m2 := r0[i], r1[i], r2[i]
			s0 := b + w0*a0 + w1*m0
			s1 := w3*a1 + w4*m1
			s2 := w6*a2 + w7*m2
			o[oi] = min(max(s0+s1+s2, lo), hi)
		}
	}
}
