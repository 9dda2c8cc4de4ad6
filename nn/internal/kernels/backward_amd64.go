//go:build amd64 && !purego

package kernels

import "unsafe"

// ---------------------------------------------------------------- GemmATB

// atbArgs is what the GemmATB kernels read (offsets fixed in
// backward_amd64.s). One call adds to one column tile of dw, all k
// rows, the products of m rows of a and d.
type atbArgs struct {
	a    *float32 // 0: a at (row 0, column 0)
	lda  uintptr  // 8: bytes between rows of a
	d    *float32 // 16: d at (row 0, first column of the tile)
	ldd  uintptr  // 24: bytes between rows of d
	dw   *float32 // 32: dw at (row 0, first column of the tile)
	ldw  uintptr  // 40: bytes between rows of dw (n*4)
	k    int      // 48: rows of dw, >= 1
	m    int      // 56: rows of a and d, >= 1
	mask uint64   // 64: AVX-512: 16-bit column mask of panel p at bits 16p; AVX2: valid lanes (1-8) of the last ymm
}

var _ [72]byte = [unsafe.Sizeof(atbArgs{})]byte{}

// AVX-512 kernels for tiles of 1, 2 or 3 panels of 16 columns.
//
//go:noescape
func atbAVX512P1(args *atbArgs)

//go:noescape
func atbAVX512P2(args *atbArgs)

//go:noescape
func atbAVX512P3(args *atbArgs)

// AVX2 kernels for tiles of 1 or 2 ymm (8 or 16 columns).
//
//go:noescape
func atbAVX2P1(args *atbArgs)

//go:noescape
func atbAVX2P2(args *atbArgs)

// atbRowBlock is how many rows of a and d one pass over the column tiles
// covers. Within a call, the tile's columns of d (rows × tile width) are
// read once per tile of dw rows, so they should stay in L1 (about 32 KB of
// the 48); across the calls of one block, its rows of a (rows × k) are read
// once per column tile, so they should stay in L2.
func atbRowBlock(k, n, tileBytes int) int {
	rows := (32 << 10) / tileBytes
	if l2 := (640 << 10) / (4 * (k + n)); l2 < rows {
		rows = max(l2, 64)
	}
	return rows
}

// gemmATBAsm runs GemmATB (arguments checked, m, k, n > 0) on the assembly
// kernels of level i and reports true, or reports false if there are none.
func gemmATBAsm(i ISA, m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) bool {
	switch i {
	case isaAVX512:
		atbAVX512(m, k, n, a, lda, d, ldd, dw)
	case isaAVX2:
		atbAVX2(m, k, n, a, lda, d, ldd, dw)
	default:
		return false
	}
	return true
}

// atbLaneUse is the fraction of vector lanes doing useful work when the
// vectors run along a dimension of size x, in vectors of the given lanes.
func atbLaneUse(x, lanes int) float64 {
	return float64(x) / float64(lanes*((x+lanes-1)/lanes))
}

// atbTransposedMaxN is the widest dw the transposed kernels take (their
// scratch, n × 48 floats, is on the stack).
const atbTransposedMaxN = 64

// atbTransposed reports whether dw (k×n) is better computed transposed: as
// dwᵀ = dᵀa, with the vectors running along k instead of n. It is, for a
// narrow n that fills the vectors worse than k does (n = 24 fills 3/4 of two
// 16-lane vectors; k = 96 fills six).
func atbTransposed(k, n, lanes int) bool {
	return n <= atbTransposedMaxN && atbLaneUse(k, lanes) > atbLaneUse(n, lanes)
}

func atbAVX512(m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) {
	if atbTransposed(k, n, gemmPanel) {
		atbAVX512T(m, k, n, a, lda, d, ldd, dw)
		return
	}
	panels := (n + gemmPanel - 1) / gemmPanel
	g := atbArgs{
		lda: uintptr(lda) * 4,
		ldd: uintptr(ldd) * 4,
		ldw: uintptr(n) * 4,
		k:   k,
	}
	mb := atbRowBlock(k, n, 4*gemmPanel*min(panels, 3))
	for i0 := 0; i0 < m; i0 += mb {
		g.m = min(mb, m-i0)
		g.a = &a[i0*lda]
		for p0 := 0; p0 < panels; {
			np := gemmTileWidth(panels, p0, 3)
			j0 := p0 * gemmPanel
			w := min(np*gemmPanel, n-j0)
			g.mask = 0
			for q := 0; q < np; q++ {
				v := min(gemmPanel, w-q*gemmPanel)
				g.mask |= (1<<v - 1) << (16 * q)
			}
			g.d = &d[i0*ldd+j0]
			g.dw = &dw[j0]
			switch np {
			case 1:
				atbAVX512P1(&g)
			case 2:
				atbAVX512P2(&g)
			default:
				atbAVX512P3(&g)
			}
			p0 += np
		}
	}
}

// atbAVX512T computes dw transposed: for each column tile of dwᵀ (1-3
// panels of 16 values of kk) it runs the kernels with the roles of a and d
// swapped, over all m rows in blocks, into a scratch tile of dwᵀ (n rows),
// then adds the tile, transposed, to dw.
func atbAVX512T(m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) {
	var tile [atbTransposedMaxN * 3 * gemmPanel]float32
	panels := (k + gemmPanel - 1) / gemmPanel
	g := atbArgs{
		lda: uintptr(ldd) * 4,
		ldd: uintptr(lda) * 4,
		k:   n,
	}
	mb := atbRowBlock(n, k, 4*gemmPanel*min(panels, 3))
	for p0 := 0; p0 < panels; {
		np := gemmTileWidth(panels, p0, 3)
		j0 := p0 * gemmPanel
		w := min(np*gemmPanel, k-j0)
		g.mask = 0
		for q := 0; q < np; q++ {
			v := min(gemmPanel, w-q*gemmPanel)
			g.mask |= (1<<v - 1) << (16 * q)
		}
		ld := np * gemmPanel
		g.ldw = uintptr(ld) * 4
		clear(tile[:n*ld])
		g.dw = &tile[0]
		for i0 := 0; i0 < m; i0 += mb {
			g.m = min(mb, m-i0)
			g.a = &d[i0*ldd]
			g.d = &a[i0*lda+j0]
			switch np {
			case 1:
				atbAVX512P1(&g)
			case 2:
				atbAVX512P2(&g)
			default:
				atbAVX512P3(&g)
			}
		}
		atbAddTransposed(dw[j0*n:], n, tile[:n*ld], ld, w)
		p0 += np
	}
}

// atbAddTransposed adds the transpose of t (n rows of w values, ld apart)
// to the first w rows of dw (rows of n).
func atbAddTransposed(dw []float32, n int, t []float32, ld, w int) {
	for c := 0; c < w; c++ {
		row := dw[c*n : c*n+n]
		for r := range row {
			row[r] += t[r*ld+c]
		}
	}
}

func atbAVX2(m, k, n int, a []float32, lda int, d []float32, ldd int, dw []float32) {
	g := atbArgs{
		lda: uintptr(lda) * 4,
		ldd: uintptr(ldd) * 4,
		ldw: uintptr(n) * 4,
		k:   k,
	}
	mb := atbRowBlock(k, n, 4*16)
	for i0 := 0; i0 < m; i0 += mb {
		g.m = min(mb, m-i0)
		g.a = &a[i0*lda]
		for j0 := 0; j0 < n; j0 += 16 {
			w := min(16, n-j0)
			g.d = &d[i0*ldd+j0]
			g.dw = &dw[j0]
			if w <= 8 {
				g.mask = uint64(w)
				atbAVX2P1(&g)
			} else {
				g.mask = uint64(w - 8)
				atbAVX2P2(&g)
			}
		}
	}
}

// ---------------------------------------------------------------- depthwise

// dwbiArgs is what the input-gradient row kernels read (offsets fixed in
// backward_amd64.s): one input row of one channel chunk and the rows
// of dout that feed it (see dwbiRows).
type dwbiArgs struct {
	din   *float32    // 0: din at (iy, 0, c0)
	d     [3]*float32 // 8: the rows of dout feeding it, at (oy, 0, c0)
	t     [3]*float32 // 32: tap (ky, 0) of each, in the chunk's weights
	cs    uintptr     // 56: bytes between pixels (c*4)
	ts    uintptr     // 64: bytes between taps (ccp*4)
	cc    int         // 72: channels
	w     int         // 80: input width
	ow    int         // 88: output width
	wEven int         // 96: stride 2: 1 if w is even (the last input pixel is odd)
	rStep uintptr     // 104: stride 1: bytes between rows (w*c*4), din and dout alike; pairs: between pairs of din rows
	rEnd  uintptr     // 112: stride 1: rows to compute × rStep; pairs: pairs × dStep

	// dwbi2PairsAVX512 only.
	dStep  uintptr // 120: bytes between dout rows (ow*c*4)
	dinRow uintptr // 128: bytes between din rows (w*c*4)
}

var _ [136]byte = [unsafe.Sizeof(dwbiArgs{})]byte{}

// dwbwArgs is what the weight-gradient row kernels read: one input row
// against one row of dout through the three taps of one kernel row.
type dwbwArgs struct {
	in    *float32 // 0: input row at (iy, 0, c0)
	g     *float32 // 8: dout row at (oy, 0, c0)
	acc   *float32 // 16: accumulator of tap (ky, 0) in the chunk's sums
	cs    uintptr  // 24: bytes between pixels (c*4)
	step  uintptr  // 32: bytes between the windows of adjacent output pixels (stride*c*4)
	ts    uintptr  // 40: bytes between the accumulators of the taps (ccp*4)
	cc    int      // 48: channels
	mid   int      // 56: output pixels between the first and the last with all three columns inside
	flags int      // 64: 1 the first pixel's right column is inside (w > 1); 2 a last pixel (ow > 1) whose right column is padding; 4 stride 1

	// dwbw3 only: in is input row oy*stride-1 of the first row oy, g its dout row.
	rs     uintptr // 72: bytes between input rows (w*c*4)
	inStep uintptr // 80: bytes between the input rows of adjacent output rows (stride*rs)
	gStep  uintptr // 88: bytes between dout rows (ow*c*4)
	gEnd   uintptr // 96: rows × gStep
}

var _ [104]byte = [unsafe.Sizeof(dwbwArgs{})]byte{}

// Input-gradient row kernels, by stride and number of dout rows.
//
//go:noescape
func dwbi1AVX512N1(args *dwbiArgs)

//go:noescape
func dwbi1AVX512N2(args *dwbiArgs)

//go:noescape
func dwbi1AVX512N3(args *dwbiArgs)

//go:noescape
func dwbi2AVX512N1(args *dwbiArgs)

//go:noescape
func dwbi2AVX512N2(args *dwbiArgs)

// dwbi2PairsAVX512: stride 2, a run of pairs of input rows (2p, 2p+1)
// with p+1 < oh (see the assembly).
//
//go:noescape
func dwbi2PairsAVX512(args *dwbiArgs)

//go:noescape
func dwbi1AVX2N1(args *dwbiArgs)

//go:noescape
func dwbi1AVX2N2(args *dwbiArgs)

//go:noescape
func dwbi1AVX2N3(args *dwbiArgs)

//go:noescape
func dwbi2AVX2N1(args *dwbiArgs)

//go:noescape
func dwbi2AVX2N2(args *dwbiArgs)

// Weight-gradient row kernels, any stride.
//
//go:noescape
func dwbwAVX512(args *dwbwArgs)

//go:noescape
func dwbwAVX2(args *dwbwArgs)

// Weight-gradient kernels for a run of interior output rows (all three
// input rows inside the image), any stride.
//
//go:noescape
func dwbw3AVX512(args *dwbwArgs)

//go:noescape
func dwbw3AVX2(args *dwbwArgs)

// dwbiRowsAsm runs dwbiRowsGeneric on the assembly kernels of level i and
// reports true, or reports false if there are none. With stride 1, a run of
// rows that all three rows of dout reach goes to dwbi1*N3 in one call (each
// group's taps loaded once for the run). AVX2 takes whole groups of 8
// channels; a partial last group goes through dwbiRowsGeneric.
func dwbiRowsAsm(i ISA, r *dwbiRows, dout, wb, din []float32, y0, y1 int) bool {
	if i != isaAVX512 && i != isaAVX2 {
		return false
	}
	cc := r.cc
	if i == isaAVX2 {
		cc &^= 7
	}
	if cc > 0 {
		a := dwbiArgs{
			cs:    uintptr(r.c) * 4,
			ts:    uintptr(r.ccp) * 4,
			cc:    cc,
			w:     r.w,
			ow:    r.ow,
			rStep: uintptr(r.w*r.c) * 4,
		}
		if r.w%2 == 0 {
			a.wEven = 1
		}
		for iy := y0; iy < y1; {
			if i == isaAVX512 && r.stride == 2 && iy%2 == 0 && iy+1 < y1 && iy/2+1 < r.oh {
				// A run of row pairs (iy, iy+1), iy even.
				n := 1
				for iy+2*n+1 < y1 && iy/2+n+1 < r.oh {
					n++
				}
				r.at(iy)
				a.din = &din[r.din]
				a.d[0] = &dout[r.dout[0]]
				a.t[0] = &wb[0]
				a.rStep = 2 * uintptr(r.w*r.c) * 4
				a.dStep = uintptr(r.ow*r.c) * 4
				a.dinRow = uintptr(r.w*r.c) * 4
				a.rEnd = uintptr(n) * a.dStep
				dwbi2PairsAVX512(&a)
				iy += 2 * n
				continue
			}
			n := 1
			if r.stride == 1 && iy >= 1 && iy+1 < r.h {
				for n < y1-iy && iy+n+1 < r.h {
					n++
				}
			}
			r.at(iy)
			a.din = &din[r.din]
			for q := 0; q < r.n; q++ {
				a.d[q] = &dout[r.dout[q]]
				a.t[q] = &wb[r.tap[q]]
			}
			a.rEnd = uintptr(n) * a.rStep
			dwbiCall(i, r.stride, r.n, &a)
			iy += n
		}
	}
	if cc < r.cc {
		t := *r
		t.c0 += cc
		t.cc -= cc
		dwbiRowsGeneric(&t, dout, wb[cc:], din, y0, y1)
	}
	return true
}

// dwbiCall runs the input-gradient kernel of level i for the stride and
// number of dout rows.
func dwbiCall(i ISA, stride, n int, a *dwbiArgs) {
	switch {
	case i == isaAVX512 && stride == 1 && n == 1:
		dwbi1AVX512N1(a)
	case i == isaAVX512 && stride == 1 && n == 2:
		dwbi1AVX512N2(a)
	case i == isaAVX512 && stride == 1:
		dwbi1AVX512N3(a)
	case i == isaAVX512 && n == 1:
		dwbi2AVX512N1(a)
	case i == isaAVX512:
		dwbi2AVX512N2(a)
	case stride == 1 && n == 1:
		dwbi1AVX2N1(a)
	case stride == 1 && n == 2:
		dwbi1AVX2N2(a)
	case stride == 1:
		dwbi1AVX2N3(a)
	case n == 1:
		dwbi2AVX2N1(a)
	default:
		dwbi2AVX2N2(a)
	}
}

// dwbwRowsAsm runs dwbwRowsGeneric on the assembly kernels of level i and
// reports true, or reports false if there are none: runs of interior output
// rows (all three input rows inside the image) through dwbw3, the others
// one (input row, output row) pair at a time. AVX2 takes whole groups of 8
// channels; a partial last group goes through dwbwRowsGeneric.
func dwbwRowsAsm(i ISA, r *dwbwRow, in, dout, acc []float32, oy0, oy1 int) bool {
	if i != isaAVX512 && i != isaAVX2 {
		return false
	}
	cc := r.cc
	if i == isaAVX2 {
		cc &^= 7
	}
	if cc > 0 {
		c, s, w, ow := r.c, r.stride, r.w, r.ow
		a := dwbwArgs{
			cs:     uintptr(c) * 4,
			step:   uintptr(c*s) * 4,
			ts:     uintptr(r.ccp) * 4,
			cc:     cc,
			rs:     uintptr(w*c) * 4,
			inStep: uintptr(s*w*c) * 4,
			gStep:  uintptr(ow*c) * 4,
		}
		if w > 1 {
			a.flags |= 1
		}
		if s == 1 {
			a.flags |= 4
		}
		if ow > 1 {
			if (ow-1)*s+1 >= w {
				a.flags |= 2
				a.mid = ow - 2
			} else {
				a.mid = ow - 1
			}
		}
		for oy := oy0; oy < oy1; {
			if oy >= 1 && oy*s+1 < r.h {
				// A run of interior rows.
				end := oy + 1
				for end < oy1 && end*s+1 < r.h {
					end++
				}
				r.at(oy, 0)
				a.in, a.g, a.acc = &in[r.in], &dout[r.dout], &acc[0]
				a.gEnd = uintptr(end-oy) * a.gStep
				if i == isaAVX512 {
					dwbw3AVX512(&a)
				} else {
					dwbw3AVX2(&a)
				}
				oy = end
				continue
			}
			for ky := 0; ky < 3; ky++ {
				if iy := oy*s + ky - 1; iy < 0 || iy >= r.h {
					continue
				}
				r.at(oy, ky)
				a.in, a.g, a.acc = &in[r.in], &dout[r.dout], &acc[r.acc]
				if i == isaAVX512 {
					dwbwAVX512(&a)
				} else {
					dwbwAVX2(&a)
				}
			}
			oy++
		}
	}
	if cc < r.cc {
		t := *r
		t.c0 += cc
		t.cc -= cc
		dwbwRowsGeneric(&t, in, dout, acc[cc:], oy0, oy1)
	}
	return true
}
