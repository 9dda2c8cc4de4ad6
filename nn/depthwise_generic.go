package nn

import "math"

// Pure-Go depthwise 3x3 kernel: the only one off amd64 (Raspberry Pi arm64 and
// armv7) and with -tags purego, and the fallback on amd64 CPUs without AVX2.
//
// Pixels whose 3x3 window lies inside the image (nearly all of them) go
// through dwTaps.pixel9: one pass over the channels with the nine taps fused,
// written so that the compiler removes every bounds check from the loop (each
// slice is cut to len(o) first) and with three independent sums per channel,
// which matters on in-order cores such as the Pi 3's Cortex-A53. Pixels on the
// border go through dwTaps.partial, which adds the taps inside the image one at
// a time.

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
	cp := dwPad(c)
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
		for ox := 0; ox < ow; ox++ {
			ix := ox*stride - 1 // input column of kx = 0
			kx0, kx1 := 0, 3
			if ix < 0 {
				kx0 = 1
			}
			if ix+2 >= w {
				kx1 = 2
			}
			o := orow[ox*c : ox*c+c]
			base := iy*rs + ix*c // offset of tap (0, 0); negative on the top row or left column
			if ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3 {
				k.pixel9(o, in[base:base+2*rs+3*c], rs)
			} else {
				k.partial(o, in, base, rs, ky0, ky1, kx0, kx1)
			}
		}
	}
}

// pixel9 computes one output pixel o (c channels) whose window is inside the
// image; a starts at the window's top-left input pixel, rs is the row stride.
func (k *dwTaps) pixel9(o, a []float32, rs int) {
	c := len(o)
	x0, x1, x2 := a[:c], a[c:2*c], a[2*c:3*c]
	y0, y1, y2 := a[rs:rs+c], a[rs+c:rs+2*c], a[rs+2*c:rs+3*c]
	z0, z1, z2 := a[2*rs:2*rs+c], a[2*rs+c:2*rs+2*c], a[2*rs+2*c:2*rs+3*c]
	w0, w1, w2 := k.w[0][:c], k.w[1][:c], k.w[2][:c]
	w3, w4, w5 := k.w[3][:c], k.w[4][:c], k.w[5][:c]
	w6, w7, w8 := k.w[6][:c], k.w[7][:c], k.w[8][:c]
	lo, hi := k.lo, k.hi
	if b := k.bias; b != nil {
		b = b[:c]
		for j := range o {
			s0 := b[j] + w0[j]*x0[j] + w1[j]*x1[j] + w2[j]*x2[j]
			s1 := w3[j]*y0[j] + w4[j]*y1[j] + w5[j]*y2[j]
			s2 := w6[j]*z0[j] + w7[j]*z1[j] + w8[j]*z2[j]
			o[j] = min(max(s0+s1+s2, lo), hi)
		}
		return
	}
	for j := range o {
		s0 := w0[j]*x0[j] + w1[j]*x1[j] + w2[j]*x2[j]
		s1 := w3[j]*y0[j] + w4[j]*y1[j] + w5[j]*y2[j]
		s2 := w6[j]*z0[j] + w7[j]*z1[j] + w8[j]*z2[j]
		o[j] = min(max(s0+s1+s2, lo), hi)
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
			off := base + ky*rs + kx*c
			x := in[off : off+c]
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
