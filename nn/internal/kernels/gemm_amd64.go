//go:build amd64 && !purego

package kernels

import "unsafe"

// gemmArgs is what the assembly kernels read (offsets are fixed in
// gemm_amd64.s). One call computes one column tile of 1..3 panels (AVX-512)
// or one panel (AVX2) for m rows.
type gemmArgs struct {
	a    *float32                // 0: A[row 0][k 0]
	lda  uintptr                 // 8: bytes between rows of A
	b    *float32                // 16: first panel of the tile, k = 0
	bstr uintptr                 // 24: bytes between panels (K*16*4)
	k    int                     // 32: K >= 1
	m    int                     // 40: rows
	bias *[3 * gemmPanel]float32 // 48: bias of the tile's columns, zero-padded
	res  *float32                // 56: residual at (row 0, first column), or nil
	ldr  uintptr                 // 64: bytes between rows of res
	c    *float32                // 72: C at (row 0, first column)
	ldc  uintptr                 // 80: bytes between rows of C
	mask uint64                  // 88: AVX-512: 16-bit store mask of panel i at bits 16i; AVX2: valid columns (1..16)
	relu uint64                  // 96: 1 for ActReLU6
}

var _ [104]byte = [unsafe.Sizeof(gemmArgs{})]byte{}

// AVX-512 kernels, 8 rows × 16·P columns of accumulators (P panels).
//
//go:noescape
func gemmAVX512P1(args *gemmArgs)

//go:noescape
func gemmAVX512P2(args *gemmArgs)

//go:noescape
func gemmAVX512P3(args *gemmArgs)

// AVX2 kernel, 6 rows × 16 columns of accumulators.
//
//go:noescape
func gemmAVX2P1(args *gemmArgs)

// gemmRowChunk is how many rows one pass over the column tiles covers: the
// chunk's rows of A and of C (chunk*(K+N) floats, at most ~384 KB) stay in
// L2 while every tile of B is streamed past them.
func gemmRowChunk(m, k, n, panels, maxp int) int {
	if panels <= maxp {
		return m // one tile: each row of A and C is touched once anyway
	}
	mc := (96 << 10) / (k + n)
	return max(48, mc-mc%48)
}

func gemmAVX512(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	k, n := b.K, b.N
	if k == 0 {
		gemmGeneric(m, a, lda, b, bias, act, res, ldr, c, ldc)
		return
	}
	var bt [3 * gemmPanel]float32
	g := gemmArgs{
		lda:  uintptr(lda) * 4,
		bstr: uintptr(k) * gemmPanel * 4,
		k:    k,
		bias: &bt,
		ldr:  uintptr(ldr) * 4,
		ldc:  uintptr(ldc) * 4,
	}
	if act == ActReLU6 {
		g.relu = 1
	}
	mc := gemmRowChunk(m, k, n, b.panels, 3)
	for i0 := 0; i0 < m; i0 += mc {
		g.m = min(mc, m-i0)
		for p0 := 0; p0 < b.panels; {
			np := gemmTileWidth(b.panels, p0, 3)
			j0 := p0 * gemmPanel
			w := min(np*gemmPanel, n-j0)
			bt = [3 * gemmPanel]float32{}
			if bias != nil {
				copy(bt[:w], bias[j0:j0+w])
			}
			g.mask = 0
			for q := 0; q < np; q++ {
				v := min(gemmPanel, w-q*gemmPanel)
				g.mask |= (1<<v - 1) << (16 * q)
			}
			g.a = &a[i0*lda]
			g.b = &b.data[p0*k*gemmPanel]
			g.c = &c[i0*ldc+j0]
			g.res = nil
			if res != nil {
				g.res = &res[i0*ldr+j0]
			}
			switch np {
			case 1:
				gemmAVX512P1(&g)
			case 2:
				gemmAVX512P2(&g)
			default:
				gemmAVX512P3(&g)
			}
			p0 += np
		}
	}
}

func gemmAVX2(m int, a []float32, lda int, b *PackedB, bias []float32, act Activation, res []float32, ldr int, c []float32, ldc int) {
	k, n := b.K, b.N
	if k == 0 {
		gemmGeneric(m, a, lda, b, bias, act, res, ldr, c, ldc)
		return
	}
	var bt [3 * gemmPanel]float32
	g := gemmArgs{
		lda:  uintptr(lda) * 4,
		bstr: uintptr(k) * gemmPanel * 4,
		k:    k,
		bias: &bt,
		ldr:  uintptr(ldr) * 4,
		ldc:  uintptr(ldc) * 4,
	}
	if act == ActReLU6 {
		g.relu = 1
	}
	mc := gemmRowChunk(m, k, n, b.panels, 1)
	for i0 := 0; i0 < m; i0 += mc {
		g.m = min(mc, m-i0)
		for p := 0; p < b.panels; p++ {
			j0 := p * gemmPanel
			w := min(gemmPanel, n-j0)
			bt = [3 * gemmPanel]float32{}
			if bias != nil {
				copy(bt[:w], bias[j0:j0+w])
			}
			g.mask = uint64(w)
			g.a = &a[i0*lda]
			g.b = &b.data[p*k*gemmPanel]
			g.c = &c[i0*ldc+j0]
			g.res = nil
			if res != nil {
				g.res = &res[i0*ldr+j0]
			}
			gemmAVX2P1(&g)
		}
	}
}
