//go:build amd64 && !purego

package kernels

// AVX-512 and AVX2 depthwise 3x3 row kernels (depthwise_amd64.s).
//
// Each call computes one output row (two for dwRow2AVX512): for each channel
// group (16 channels for AVX-512, 8 for AVX2; the last group masked) it loads
// the group's nine tap weights and bias into registers, then sweeps the row:
// the first pixel (left column in the padding), the interior run of mid
// pixels, and the last pixel if its right column is in the padding
// (flags&dwRightPad), or only the centre column if flags&dwSingle. A padding
// row above or below the image (flags&dwTopZero, dwBottomZero) is given as
// row iy itself (r0 or r2 = r1) and contributes exactly zero.
// r0, r1, r2 point at column 0 of the three input rows, out at column 0 of the
// output row; c, cp (padded channels, the packed tap stride) and step (input
// floats between two output pixels, stride*c) are in floats; act is 1 for
// ReLU6, 0 for none. The caller has checked every bound.

// dwRowAVX512: one output row, any stride, nine taps per pixel.
//
//go:noescape
func dwRowAVX512(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)

// dwRow1AVX512 is dwRowAVX512 for stride 1 only (step == c, rows with
// w >= 2 have mid = w-2): it sweeps input columns, loading each input vector
// once instead of three times.
//
//go:noescape
func dwRow1AVX512(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)

// dwRow2AVX512 computes two adjacent output rows with stride 1 (see the
// assembly): input rows r0..r3 (r0 = r1 if flags&dwTopZero, r3 = r2 if
// flags&dwBottomZero), output rows out and out+w*c.
//
//go:noescape
func dwRow2AVX512(r0, r1, r2, r3, out, wts, bias *float32, c, cp, w, flags, act int)

// dwRowAVX2: dwRowAVX512 with 8-lane groups.
//
//go:noescape
func dwRowAVX2(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)

// depthwiseAsm runs Depthwise3x3 (arguments already checked) on the assembly
// kernels of level i and reports true, or reports false if there are none.
func depthwiseAsm(i ISA, in []float32, h, w, c, stride int, packed, bias []float32, act Activation, out []float32, oy0, oy1 int) bool {
	if i != isaAVX512 && i != isaAVX2 {
		return false
	}
	ow := (w-1)/stride + 1
	cp := PadChannels(c)
	var bp *float32
	if bias != nil {
		bp = &bias[0]
	}
	wp := &packed[0]
	a := 0
	if act == ActReLU6 {
		a = 1
	}
	oy := oy0
	if i == isaAVX512 && stride == 1 {
		// Pairs of rows; an odd last row goes through dwRow1AVX512.
		rs := w * c
		for ; oy+1 < oy1; oy += 2 {
			r0, r3, flags := (oy-1)*rs, (oy+2)*rs, 0
			if oy == 0 {
				r0, flags = oy*rs, flags|dwTopZero
			}
			if oy+2 >= h {
				r3, flags = (oy+1)*rs, flags|dwBottomZero
			}
			if w == 1 {
				flags |= dwSingle
			}
			dwRow2AVX512(&in[r0], &in[oy*rs], &in[(oy+1)*rs], &in[r3], &out[oy*rs], wp, bp, c, cp, w, flags, a)
		}
	}
	for ; oy < oy1; oy++ {
		r := dwRowPlan(h, w, c, stride, oy)
		op := &out[oy*ow*c]
		switch {
		case i == isaAVX512 && stride == 1:
			dwRow1AVX512(&in[r.r0], &in[r.r1], &in[r.r2], op, wp, bp, c, cp, stride*c, r.mid, r.flags, a)
		case i == isaAVX512:
			dwRowAVX512(&in[r.r0], &in[r.r1], &in[r.r2], op, wp, bp, c, cp, stride*c, r.mid, r.flags, a)
		default:
			dwRowAVX2(&in[r.r0], &in[r.r1], &in[r.r2], op, wp, bp, c, cp, stride*c, r.mid, r.flags, a)
		}
	}
	return true
}
