package kernels

import "fmt"

// Depthwise 3x3 convolution (MobileNetV2's middle layer of every block).
//
// Packed weight layout: tap-major, [9][cp] with cp = c rounded up to a
// multiple of dwLanes (16) and the padding lanes zero:
//
//	packed[t*cp+ch] = w[ch*9+t], t = ky*3+kx
//
// so that for one tap the weights of 16 consecutive channels (a group of 16
// starting at a multiple of 16) are one full 64-byte vector, zero past c;
// every kernel (pure Go, AVX2, AVX-512) reads this layout as is.
//
// The kernels (depthwise_generic.go, depthwise_amd64.s) keep the nine tap
// weights of a channel group (one channel in pure Go, 8 or 16 with AVX2 or
// AVX-512) in registers and sweep the output pixels of a row (two rows at a
// time for AVX-512 with stride 1), then move to the next group. Zero padding
// is handled without copying the input: the first and last pixel of a row
// leave out the taps in the padding columns, and a padding row above or below
// the image contributes exactly nothing (skipped, loaded under a zero mask,
// or its partial sum ANDed with zero), so Inf and NaN inputs give what the
// definition gives.

// dwLanes is the channel padding of the packed weights: one AVX-512 vector.
const dwLanes = 16

// PadChannels returns c rounded up to a multiple of dwLanes.
func PadChannels(c int) int { return (c + dwLanes - 1) &^ (dwLanes - 1) }

// PackDepthwise repacks PyTorch depthwise weights w ([c][1][3][3] flattened,
// w[ch*9+ky*3+kx]) into the layout Depthwise3x3 reads. It allocates; call it
// once at model load.
func PackDepthwise(c int, w []float32) []float32 {
	if c < 1 {
		panic(fmt.Sprintf("kernels.PackDepthwise: c = %d", c))
	}
	if len(w) != c*9 {
		panic(fmt.Sprintf("kernels.PackDepthwise: len(w) = %d, want c*9 = %d", len(w), c*9))
	}
	cp := PadChannels(c)
	p := make([]float32, 9*cp)
	for ch := 0; ch < c; ch++ {
		for t := 0; t < 9; t++ {
			p[t*cp+ch] = w[ch*9+t]
		}
	}
	return p
}

// Depthwise3x3 computes a depthwise 3x3 convolution with zero padding 1 and
// the given stride (1 or 2) on one NHWC image: in is h×w×c
// (in[(y*w+x)*c+ch]), out is oh×ow×c with oh = (h-1)/stride+1,
// ow = (w-1)/stride+1, and
//
//	out = act(conv(in, packed) + bias[ch])
//
// packed comes from PackDepthwise(c, ...); bias may be nil. Only output rows
// [oy0, oy1) are computed and written, so goroutines may split the rows of one
// image between them. It does not allocate and is single-threaded. It panics on
// a bad stride, sizes or row range, or slices shorter than the shapes need.
func Depthwise3x3(in []float32, h, w, c, stride int, packed []float32, bias []float32, act Activation, out []float32, oy0, oy1 int) {
	if stride != 1 && stride != 2 {
		panic(fmt.Sprintf("kernels.Depthwise3x3: stride %d, want 1 or 2", stride))
	}
	if h < 1 || w < 1 || c < 1 {
		panic(fmt.Sprintf("kernels.Depthwise3x3: bad shape %dx%dx%d", h, w, c))
	}
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	if len(in) < h*w*c {
		panic(fmt.Sprintf("kernels.Depthwise3x3: len(in) = %d < %d×%d×%d", len(in), h, w, c))
	}
	if len(out) < oh*ow*c {
		panic(fmt.Sprintf("kernels.Depthwise3x3: len(out) = %d < %d×%d×%d", len(out), oh, ow, c))
	}
	if len(packed) < 9*PadChannels(c) {
		panic(fmt.Sprintf("kernels.Depthwise3x3: len(packed) = %d < %d: not packed for c = %d", len(packed), 9*PadChannels(c), c))
	}
	if bias != nil && len(bias) < c {
		panic(fmt.Sprintf("kernels.Depthwise3x3: len(bias) = %d < c = %d", len(bias), c))
	}
	if act != ActNone && act != ActReLU6 {
		panic(fmt.Sprintf("kernels.Depthwise3x3: unknown activation %d", act))
	}
	if oy0 < 0 || oy1 < oy0 || oy1 > oh {
		panic(fmt.Sprintf("kernels.Depthwise3x3: rows [%d, %d) outside [0, %d)", oy0, oy1, oh))
	}
	if oy0 == oy1 {
		return
	}
	if depthwiseAsm(activeISA, in, h, w, c, stride, packed, bias, act, out, oy0, oy1) {
		return
	}
	depthwiseGeneric(in, h, w, c, stride, packed, bias, act, out, oy0, oy1)
}

// dwRow describes one output row for the SIMD row kernels: which input rows
// its three kernel rows read, and how its pixels split into a first pixel, a
// run of interior pixels and possibly a last pixel that touch the padding.
type dwRow struct {
	r0, r1, r2 int // offsets in in of input rows iy-1, iy, iy+1 (a missing row repeats r1)
	flags      int // dwTopZero | dwBottomZero | dwRightPad | dwSingle
	mid        int // interior pixels (all 9 taps inside the image)
}

const (
	dwTopZero    = 1 << 0 // input row iy-1 is padding: its tap weights are zeroed
	dwBottomZero = 1 << 1 // input row iy+1 is padding
	dwRightPad   = 1 << 2 // the last pixel (ox = ow-1 > 0) has its right column in the padding
	dwSingle     = 1 << 3 // ow == 1 and both side columns are padding: only the centre column
)

// dwRowPlan fills the description of output row oy. Pixel 0 always has its
// left column in the padding.
func dwRowPlan(h, w, c, stride, oy int) dwRow {
	ow := (w-1)/stride + 1
	iy := oy * stride // centre input row
	var r dwRow
	r.r1 = iy * w * c
	r.r0, r.r2 = r.r1, r.r1
	if iy > 0 {
		r.r0 = (iy - 1) * w * c
	} else {
		r.flags |= dwTopZero
	}
	if iy+1 < h {
		r.r2 = (iy + 1) * w * c
	} else {
		r.flags |= dwBottomZero
	}
	rightPad := (ow-1)*stride+1 >= w
	switch {
	case ow == 1 && rightPad:
		r.flags |= dwSingle
	case ow == 1:
		// The only pixel is the left one; its right column is inside.
	case rightPad:
		r.flags |= dwRightPad
		r.mid = ow - 2
	default:
		r.mid = ow - 1
	}
	return r
}
