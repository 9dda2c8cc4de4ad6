package kernels

import (
	"fmt"
	"unsafe"
)

// Matrix product for 1x1 convolutions and linear layers.
//
// B (the weights) is packed once, at load time, into column panels of
// gemmPanel (16) columns. Panel p holds columns [16p, 16p+16) for every k,
// K-contiguous: element (k, 16p+j) is at data[p*16*K + k*16 + j]. Columns past
// N in the last panel are zero, so kernels may compute whole panels and only
// mask the stores. Every kernel (generic, AVX2, AVX-512) reads this one layout:
// a panel is one zmm or two ymm per k, and the AVX-512 micro-kernel streams up
// to three panels side by side (48 columns).

// gemmPanel is the width, in columns, of a packed panel of B.
const gemmPanel = 16

// PackedB is a K×N matrix (weights) packed once, at model load, into the
// layout the micro-kernels read.
type PackedB struct {
	K, N int

	panels int       // ceil(N / gemmPanel)
	data   []float32 // panels * K * gemmPanel floats, see the layout above
}

// PackB packs b, row-major K×N (b[k*n+j]). It copies; b is not retained.
func PackB(k, n int, b []float32) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels.PackB: negative shape %dx%d", k, n))
	}
	if len(b) < k*n {
		panic(fmt.Sprintf("kernels.PackB: len(b) = %d < %d*%d", len(b), k, n))
	}
	np := (n + gemmPanel - 1) / gemmPanel
	p := &PackedB{K: k, N: n, panels: np, data: gemmAlignedFloats(np * k * gemmPanel)}
	for pi := 0; pi < np; pi++ {
		j0 := pi * gemmPanel
		w := min(gemmPanel, n-j0)
		dst := p.data[pi*k*gemmPanel : (pi+1)*k*gemmPanel]
		for kk := 0; kk < k; kk++ {
			copy(dst[kk*gemmPanel:kk*gemmPanel+w], b[kk*n+j0:kk*n+j0+w])
		}
	}
	return p
}

// Repack overwrites p with the values of b (row-major p.K×p.N, b[k*N+j]), as
// PackB(p.K, p.N, b) would, without allocating: the trainer calls it after
// every weight update. The padding columns of the last panel stay zero.
func (p *PackedB) Repack(b []float32) {
	k, n := p.K, p.N
	if len(b) < k*n {
		panic(fmt.Sprintf("kernels.PackedB.Repack: len(b) = %d < %d*%d", len(b), k, n))
	}
	if len(p.data) != p.panels*k*gemmPanel || p.panels != (n+gemmPanel-1)/gemmPanel {
		panic("kernels.PackedB.Repack: PackedB not made by PackB")
	}
	for pi := 0; pi < p.panels; pi++ {
		j0 := pi * gemmPanel
		w := min(gemmPanel, n-j0)
		dst := p.data[pi*k*gemmPanel : (pi+1)*k*gemmPanel]
		for kk := 0; kk < k; kk++ {
			copy(dst[kk*gemmPanel:kk*gemmPanel+w], b[kk*n+j0:kk*n+j0+w])
		}
	}
}

// gemmAlignedFloats returns n zeroed floats starting on a 64-byte boundary,
// so that each k-row of a panel is one cache line (one aligned zmm load).
func gemmAlignedFloats(n int) []float32 {
	const align = 64 / 4
	buf := make([]float32, n+align)
	off := (align - int(uintptr(unsafe.Pointer(&buf[0]))%64/4)) % align
	return buf[off : off+n : off+n]
}

// Gemm computes, for every row i in [0,m) and column j in [0,b.N):
//
//	c[i*ldc+j] = act(sum_k a[i*lda+k]*B[k][j] + bias[j]) + res[i*ldr+j]
//
// res may be nil (no residual add); bias may be nil (zero). act is ActNone or
// ActReLU6. It is single-threaded: callers split rows across goroutines. It
// does not allocate. c may be the same memory as res (same offset and ldr ==
// ldc), but must not overlap a. It panics on short slices or bad strides.
func Gemm(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	gemmCheck(m, a, lda, b, bias, act, res, ldr, c, ldc)
	if m == 0 || b.N == 0 {
		return
	}
	switch activeISA {
	case isaAVX512:
		gemmAVX512(m, a, lda, b, bias, act, res, ldr, c, ldc)
	case isaAVX2:
		gemmAVX2(m, a, lda, b, bias, act, res, ldr, c, ldc)
	default:
		gemmGeneric(m, a, lda, b, bias, act, res, ldr, c, ldc)
	}
}

// gemmCheck panics unless every access Gemm makes is inside the slices. The
// assembly kernels rely on it: they do no bounds checks of their own.
func gemmCheck(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	if b == nil {
		panic("kernels.Gemm: nil PackedB")
	}
	if m < 0 {
		panic(fmt.Sprintf("kernels.Gemm: m = %d < 0", m))
	}
	if act != ActNone && act != ActReLU6 {
		panic(fmt.Sprintf("kernels.Gemm: unsupported activation %d", act))
	}
	k, n := b.K, b.N
	if len(b.data) != b.panels*k*gemmPanel || b.panels != (n+gemmPanel-1)/gemmPanel {
		panic("kernels.Gemm: PackedB not made by PackB")
	}
	if bias != nil && len(bias) < n {
		panic(fmt.Sprintf("kernels.Gemm: len(bias) = %d < N = %d", len(bias), n))
	}
	if m == 0 {
		return
	}
	gemmCheckMat("a", m, k, a, lda)
	gemmCheckMat("c", m, n, c, ldc)
	if res != nil {
		gemmCheckMat("res", m, n, res, ldr)
	}
}

func gemmCheckMat(name string, rows, cols int, s []float32, ld int) {
	if ld < 0 || rows > 1 && ld < cols {
		panic(fmt.Sprintf("kernels.Gemm: ld%s = %d for %d columns", name, ld, cols))
	}
	// len(s) >= (rows-1)*ld + cols, without overflow.
	if len(s) < cols || ld > 0 && rows-1 > (len(s)-cols)/ld {
		panic(fmt.Sprintf("kernels.Gemm: len(%s) = %d, short of %d rows of ld %d and %d columns", name, len(s), rows, ld, cols))
	}
}

// gemmTileWidth returns how many panels the tile starting at panel p0 covers, for
// a kernel whose widest tile is maxp panels: tiles are maxp wide, except that
// a remainder of one panel is merged with the tile before into two tiles
// nearly equal in width (3+1 -> 2+2), so no tile is much narrower than needed.
func gemmTileWidth(panels, p0, maxp int) int {
	left := panels - p0
	if left <= maxp {
		return left
	}
	if maxp == 3 && left == 4 {
		return 2
	}
	return maxp
}
