package kernels

import (
	"fmt"
	"math"
)

// Backward-pass kernels for training: the weight gradient of a 1x1
// convolution or linear layer (GemmATB) and the input and weight gradients of
// a depthwise 3x3 convolution. Like the inference kernels they are
// single-threaded and do not allocate; the caller splits rows across
// goroutines. Each dispatches on activeISA to AVX-512 or AVX2 assembly
// (backward_amd64.s) or to pure Go (backward_generic.go); a given
// ISA and the same inputs always give bit-identical results, but different
// ISAs sum in different orders.
//
// The depthwise kernels work on channel chunks of at most dwbChunk channels:
// for each chunk the weights (or the weight-gradient accumulators) are
// transposed into a tap-major [9][ccp] array on the stack (ccp = the chunk's
// channels rounded up to 16, padding lanes zero), the layout PackDepthwise
// gives the forward kernels, so that one tap of 16 consecutive channels is
// one vector. The row kernels then sweep rows of one image for the chunk;
// the assembly ones take a run of interior rows (those whose 3x3 window
// lies inside the image vertically) in one call, keeping each channel
// group's taps or sums in registers for the whole run.

// dwbChunk is the most channels one pass of the depthwise backward kernels
// covers; its [9][dwbChunk] float32 scratch array lives on the stack.
const dwbChunk = 512

// GemmATB accumulates the weight gradient of a 1x1 convolution / linear layer:
//
//	dw[kk*n+j] += sum over i in [0,m) of a[i*lda+kk] * d[i*ldd+j],  kk < k, j < n
//
// a is the layer input (m rows of k), d the output gradient (m rows of n), dw
// is k×n, row-major (the PyTorch [out][in] weight is its transpose). It is
// single-threaded and does not allocate; the caller splits m across
// goroutines into separate dw buffers and sums them in a fixed order. The
// same ISA and inputs give bit-identical output. dw must not overlap a or d.
// It panics on negative sizes, bad strides or short slices.
func GemmATB(m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) {
	if m < 0 || k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels.GemmATB: negative shape %dx%dx%d", m, k, n))
	}
	if n > 0 && k > len(dw)/n {
		panic(fmt.Sprintf("kernels.GemmATB: len(dw) = %d < %d*%d", len(dw), k, n))
	}
	if m == 0 || k == 0 || n == 0 {
		return
	}
	atbCheckMat("a", m, k, a, lda)
	atbCheckMat("d", m, n, d, ldd)
	if gemmATBAsm(activeISA, m, k, n, a, lda, d, ldd, dw) {
		return
	}
	gemmATBGeneric(m, k, n, a, lda, d, ldd, dw)
}

// atbCheckMat panics unless s holds rows rows of cols floats, ld apart.
func atbCheckMat(name string, rows, cols int, s []float32, ld int) {
	if ld < 0 || rows > 1 && ld < cols {
		panic(fmt.Sprintf("kernels.GemmATB: ld%s = %d for %d columns", name, ld, cols))
	}
	// len(s) >= (rows-1)*ld + cols, without overflow.
	if len(s) < cols || ld > 0 && rows-1 > (len(s)-cols)/ld {
		panic(fmt.Sprintf("kernels.GemmATB: len(%s) = %d, short of %d rows of ld %d and %d columns", name, len(s), rows, ld, cols))
	}
}

// dwbCheck panics unless the arguments describe a depthwise layer the
// backward kernels can run on: stride 1 or 2, positive sizes, and slices at
// least as long as the shapes need.
func dwbCheck(fn string, h, w, c, stride int, in []float32, dout []float32, wts []float32) {
	if stride != 1 && stride != 2 {
		panic(fmt.Sprintf("kernels.%s: stride %d, want 1 or 2", fn, stride))
	}
	if h < 1 || w < 1 || c < 1 || w > math.MaxInt/c || h > math.MaxInt/(w*c) {
		panic(fmt.Sprintf("kernels.%s: bad shape %dx%dx%d", fn, h, w, c))
	}
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	if len(in) < h*w*c {
		panic(fmt.Sprintf("kernels.%s: input of %d floats < %d×%d×%d", fn, len(in), h, w, c))
	}
	if len(dout) < oh*ow*c {
		panic(fmt.Sprintf("kernels.%s: len(dout) = %d < %d×%d×%d", fn, len(dout), oh, ow, c))
	}
	if len(wts) < 9*c {
		panic(fmt.Sprintf("kernels.%s: weights of %d floats < 9×%d", fn, len(wts), c))
	}
}

// Depthwise3x3BackInput computes the input gradient of an un-fused depthwise
// 3x3 convolution (zero padding 1, stride 1 or 2) for one NHWC image: din is
// h×w×c, dout is oh×ow×c (oh = (h-1)/stride+1, ow = (w-1)/stride+1), weights
// in PyTorch layout wts[ch*9+ky*3+kx]:
//
//	din[iy][ix][ch] = sum of wts[ch*9+ky*3+kx] * dout[oy][ox][ch]
//	                  over oy*stride+ky-1 = iy, ox*stride+kx-1 = ix
//
// It writes (overwrites) only input rows [y0, y1) of din, so the caller can
// split rows across goroutines. din must not overlap dout or wts. It does
// not allocate.
func Depthwise3x3BackInput(dout []float32, h, w, c, stride int, wts []float32, din []float32, y0, y1 int) {
	dwbCheck("Depthwise3x3BackInput", h, w, c, stride, din, dout, wts)
	if y0 < 0 || y1 < y0 || y1 > h {
		panic(fmt.Sprintf("kernels.Depthwise3x3BackInput: rows [%d, %d) outside [0, %d)", y0, y1, h))
	}
	if y0 == y1 {
		return
	}
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	var wb [9 * dwbChunk]float32 // this chunk's weights, tap-major [9][ccp]
	for c0 := 0; c0 < c; c0 += dwbChunk {
		cc := min(dwbChunk, c-c0)
		ccp := PadChannels(cc)
		dwbTranspose(wb[:9*ccp], ccp, wts[c0*9:(c0+cc)*9])
		r := dwbiRows{c0: c0, c: c, cc: cc, ccp: ccp, h: h, w: w, oh: oh, ow: ow, stride: stride}
		if !dwbiRowsAsm(activeISA, &r, dout, wb[:9*ccp], din, y0, y1) {
			dwbiRowsGeneric(&r, dout, wb[:9*ccp], din, y0, y1)
		}
	}
}

// dwbiRows describes one channel chunk of Depthwise3x3BackInput, and one
// input row in it: the row of din to write and the n (1 to 3) rows of dout
// that reach it, each with the first of its three taps (kx = 0, 1, 2) in the
// chunk's tap-major weights. Offsets are in floats, at the chunk's first
// channel.
type dwbiRows struct {
	din  int    // offset in din of (iy, 0, c0)
	dout [3]int // offsets in dout of (oy, 0, c0)
	tap  [3]int // offsets in the chunk's weights of tap (ky, 0)
	n    int    // rows of dout that reach this row

	c0, c, cc, ccp int // first channel, pixel stride, chunk channels, chunk channels padded to 16
	h, w, oh, ow   int // input and output sizes
	stride         int
}

// at sets r to input row iy: the rows oy of dout with oy*stride + ky - 1 = iy.
func (r *dwbiRows) at(iy int) {
	r.n = 0
	for ky := 0; ky < 3; ky++ {
		t := iy + 1 - ky
		if t < 0 || t%r.stride != 0 || t/r.stride >= r.oh {
			continue
		}
		r.dout[r.n] = t/r.stride*r.ow*r.c + r.c0
		r.tap[r.n] = ky * 3 * r.ccp
		r.n++
	}
	r.din = iy*r.w*r.c + r.c0
}

// dwbiRowsGeneric computes input rows [y0, y1) of one chunk (r), one at a
// time.
func dwbiRowsGeneric(r *dwbiRows, dout, wb, din []float32, y0, y1 int) {
	for iy := y0; iy < y1; iy++ {
		r.at(iy)
		dwbiRowGeneric(r, dout, wb, din)
	}
}

// Depthwise3x3BackWeight accumulates the weight gradient of a depthwise 3x3
// convolution (zero padding 1, stride 1 or 2) over output rows [oy0, oy1) of
// one NHWC image:
//
//	dw[ch*9+ky*3+kx] += sum over oy in [oy0, oy1), ox of in[iy][ix][ch]*dout[oy][ox][ch]
//
// with iy = oy*stride+ky-1, ix = ox*stride+kx-1 and zero outside the image;
// dw is in PyTorch layout. in is h×w×c, dout oh×ow×c. The caller splits rows
// into separate dw buffers and sums them. It does not allocate.
func Depthwise3x3BackWeight(in []float32, h, w, c, stride int, dout []float32, dw []float32, oy0, oy1 int) {
	dwbCheck("Depthwise3x3BackWeight", h, w, c, stride, in, dout, dw)
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	if oy0 < 0 || oy1 < oy0 || oy1 > oh {
		panic(fmt.Sprintf("kernels.Depthwise3x3BackWeight: rows [%d, %d) outside [0, %d)", oy0, oy1, oh))
	}
	if oy0 == oy1 {
		return
	}
	var acc [9 * dwbChunk]float32 // this chunk's sums, tap-major [9][ccp]
	for c0 := 0; c0 < c; c0 += dwbChunk {
		cc := min(dwbChunk, c-c0)
		ccp := PadChannels(cc)
		clear(acc[:9*ccp])
		r := dwbwRow{c0: c0, c: c, cc: cc, ccp: ccp, h: h, w: w, ow: ow, stride: stride}
		if !dwbwRowsAsm(activeISA, &r, in, dout, acc[:9*ccp], oy0, oy1) {
			dwbwRowsGeneric(&r, in, dout, acc[:9*ccp], oy0, oy1)
		}
		dwbAddTransposed(dw[c0*9:(c0+cc)*9], acc[:9*ccp], ccp)
	}
}

// dwbwRow describes one channel chunk of Depthwise3x3BackWeight, and one
// (input row, output row) pair in it: the input row iy reaches output row oy
// through the three taps (ky, 0..2), whose sums start at acc in the chunk's
// tap-major accumulators. Offsets are in floats, at the chunk's first
// channel.
type dwbwRow struct {
	in, dout, acc int

	c0, c, cc, ccp int // first channel, pixel stride, chunk channels, chunk channels padded to 16
	h, w, ow       int // input height and width, output width
	stride         int
}

// at sets r to the pair (input row oy*stride+ky-1, output row oy).
func (r *dwbwRow) at(oy, ky int) {
	r.in = (oy*r.stride+ky-1)*r.w*r.c + r.c0
	r.dout = oy*r.ow*r.c + r.c0
	r.acc = ky * 3 * r.ccp
}

// dwbwRowsGeneric accumulates output rows [oy0, oy1) of one chunk (r) into
// its sums acc, one (input row, output row) pair at a time.
func dwbwRowsGeneric(r *dwbwRow, in, dout, acc []float32, oy0, oy1 int) {
	for oy := oy0; oy < oy1; oy++ {
		for ky := 0; ky < 3; ky++ {
			if iy := oy*r.stride + ky - 1; iy < 0 || iy >= r.h {
				continue
			}
			r.at(oy, ky)
			dwbwRowGeneric(r, in, dout, acc)
		}
	}
}

// dwbTranspose sets the tap-major chunk weights wb ([9][ccp], the lanes
// past the chunk's channels zero) from PyTorch-layout weights w ([cc][9]).
func dwbTranspose(wb []float32, ccp int, w []float32) {
	cc := len(w) / 9
	w0, w1, w2 := wb[0*ccp:0*ccp+ccp], wb[1*ccp:1*ccp+ccp], wb[2*ccp:2*ccp+ccp]
	w3, w4, w5 := wb[3*ccp:3*ccp+ccp], wb[4*ccp:4*ccp+ccp], wb[5*ccp:5*ccp+ccp]
	w6, w7, w8 := wb[6*ccp:6*ccp+ccp], wb[7*ccp:7*ccp+ccp], wb[8*ccp:8*ccp+ccp]
	w1, w2, w3, w4, w5, w6, w7, w8 = w1[:len(w0)], w2[:len(w0)], w3[:len(w0)], w4[:len(w0)], w5[:len(w0)], w6[:len(w0)], w7[:len(w0)], w8[:len(w0)]
	for j := range w0[:cc] {
		s := w[j*9 : j*9+9 : j*9+9]
		w0[j], w1[j], w2[j], w3[j], w4[j], w5[j], w6[j], w7[j], w8[j] = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]
	}
	for t := 0; t < 9; t++ {
		clear(wb[t*ccp+cc : (t+1)*ccp])
	}
}

// dwbAddTransposed adds the tap-major chunk sums acc ([9][ccp]) to the
// PyTorch-layout weight gradient dw ([cc][9]).
func dwbAddTransposed(dw []float32, acc []float32, ccp int) {
	cc := len(dw) / 9
	a0, a1, a2 := acc[0*ccp:0*ccp+ccp], acc[1*ccp:1*ccp+ccp], acc[2*ccp:2*ccp+ccp]
	a3, a4, a5 := acc[3*ccp:3*ccp+ccp], acc[4*ccp:4*ccp+ccp], acc[5*ccp:5*ccp+ccp]
	a6, a7, a8 := acc[6*ccp:6*ccp+ccp], acc[7*ccp:7*ccp+ccp], acc[8*ccp:8*ccp+ccp]
	a1, a2, a3, a4, a5, a6, a7, a8 = a1[:len(a0)], a2[:len(a0)], a3[:len(a0)], a4[:len(a0)], a5[:len(a0)], a6[:len(a0)], a7[:len(a0)], a8[:len(a0)]
	for j := range a0[:cc] {
		d := dw[j*9 : j*9+9 : j*9+9]
		d[0] += a0[j]
		d[1] += a1[j]
		d[2] += a2[j]
		d[3] += a3[j]
		d[4] += a4[j]
		d[5] += a5[j]
		d[6] += a6[j]
		d[7] += a7[j]
		d[8] += a8[j]
	}
}
