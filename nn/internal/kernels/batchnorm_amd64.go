//go:build amd64 && !purego

package kernels

import "unsafe"

// AVX-512 and AVX2 batch-norm kernels (batchnorm_amd64.s). Each takes rows
// rows of c channels (c >= 1, rows >= 1) at z (and dy, y, dz, res: the same
// layout), walked in blocks of blk rows, and per-channel slices of at least c
// elements; relu is 1 for ReLU6. The callers below have checked every
// length. Without either level (or with AVX2 and c not a multiple of 8) the
// pure-Go loops run.

//go:noescape
func bnStatsAVX512(blk int, z *float32, rows, c int, s, q *float64)

//go:noescape
func bnApplyAVX512(blk int, z, y *float32, rows, c int, scale, shift *float32, relu int, res *float32)

//go:noescape
func bnBackReduceAVX512(blk int, dy, z *float32, rows, c int, scale, shift *float32, relu int, sg, sgz *float64)

//go:noescape
func bnBackApplyAVX512(blk int, dy, z, dz *float32, rows, c int, scale, shift *float32, relu int, a, b, cc *float32)

// The AVX2 kernels take c a multiple of 8 (no masked tails).

//go:noescape
func bnStatsAVX2(blk int, z *float32, rows, c int, s, q *float64)

//go:noescape
func bnApplyAVX2(blk int, z, y *float32, rows, c int, scale, shift *float32, relu int, res *float32)

//go:noescape
func bnBackReduceAVX2(blk int, dy, z *float32, rows, c int, scale, shift *float32, relu int, sg, sgz *float64)

//go:noescape
func bnBackApplyAVX2(blk int, dy, z, dz *float32, rows, c int, scale, shift *float32, relu int, a, b, cc *float32)

// bnLevel is the kernel level for c channels: isaAVX512, isaAVX2 (c a
// multiple of 8) or isaGeneric.
func bnLevel(c int) ISA {
	switch {
	case activeISA == isaAVX512:
		return isaAVX512
	case activeISA == isaAVX2 && c%8 == 0:
		return isaAVX2
	}
	return isaGeneric
}

// bnBlock is the kernels' row block for c channels: about 4 KB of each
// input, at least 8 rows.
func bnBlock(c int) int { return max(8, 1024/c) }

// bnRows checks that z holds whole rows of c channels and that every
// per-channel slice has c elements, and returns the number of rows; it panics
// otherwise (the assembly does no bounds checks).
func bnRows(n, c int, perChannel ...int) int {
	if c < 1 || n%c != 0 {
		panic("kernels: batch-norm kernel: length not a multiple of the channels")
	}
	for _, l := range perChannel {
		if l < c {
			panic("kernels: batch-norm kernel: per-channel slice shorter than the channels")
		}
	}
	return n / c
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func bnStatsAsm(z []float32, c int, s, q []float64) bool {
	lv := bnLevel(c)
	if lv == isaGeneric {
		return false
	}
	rows := bnRows(len(z), c, len(s), len(q))
	if lv == isaAVX512 {
		bnStatsAVX512(bnBlock(c), &z[0], rows, c, &s[0], &q[0])
	} else {
		bnStatsAVX2(bnBlock(c), &z[0], rows, c, &s[0], &q[0])
	}
	return true
}

func bnApplyAsm(z, y []float32, c int, scale, shift []float32, relu bool, res []float32) bool {
	lv := bnLevel(c)
	if lv == isaGeneric {
		return false
	}
	rows := bnRows(len(z), c, len(scale), len(shift))
	var rp *float32
	if res != nil {
		rp = &res[:len(z)][0]
	}
	if lv == isaAVX512 {
		bnApplyAVX512(bnBlock(c), &z[0], &y[:len(z)][0], rows, c, &scale[0], &shift[0], b2i(relu), rp)
	} else {
		bnApplyAVX2(bnBlock(c), &z[0], &y[:len(z)][0], rows, c, &scale[0], &shift[0], b2i(relu), rp)
	}
	return true
}

func bnBackReduceAsm(dy, z []float32, c int, scale, shift []float32, relu bool, sg, sgz []float64) bool {
	lv := bnLevel(c)
	if lv == isaGeneric {
		return false
	}
	rows := bnRows(len(z), c, len(scale), len(shift), len(sg), len(sgz))
	if lv == isaAVX512 {
		bnBackReduceAVX512(bnBlock(c), &dy[:len(z)][0], &z[0], rows, c, &scale[0], &shift[0], b2i(relu), &sg[0], &sgz[0])
	} else {
		bnBackReduceAVX2(bnBlock(c), &dy[:len(z)][0], &z[0], rows, c, &scale[0], &shift[0], b2i(relu), &sg[0], &sgz[0])
	}
	return true
}

func bnBackApplyAsm(dy, z, dz []float32, c int, scale, shift []float32, relu bool, a, b, cc []float32) bool {
	lv := bnLevel(c)
	if lv == isaGeneric {
		return false
	}
	rows := bnRows(len(z), c, len(scale), len(shift), len(a), len(b), len(cc))
	if lv == isaAVX512 {
		bnBackApplyAVX512(bnBlock(c), &dy[:len(z)][0], &z[0], &dz[:len(z)][0], rows, c, &scale[0], &shift[0], b2i(relu), &a[0], &b[0], &cc[0])
	} else {
		bnBackApplyAVX2(bnBlock(c), &dy[:len(z)][0], &z[0], &dz[:len(z)][0], rows, c, &scale[0], &shift[0], b2i(relu), &a[0], &b[0], &cc[0])
	}
	return true
}

//go:noescape
func ntCopyAVX512(dst, src *float32, n int)

//go:noescape
func ntCopyAVX2(dst, src *float32, n int)

// ntCopyAsm copies the 64-byte-aligned middle of dst with non-temporal
// stores and returns how many floats it copied from where; the caller copies
// the rest.
func ntCopyAsm(dst, src []float32) (from, n int) {
	if activeISA != isaAVX512 && activeISA != isaAVX2 || len(dst) < 128 {
		return 0, 0
	}
	from = int((64 - uintptr(unsafe.Pointer(&dst[0]))%64) % 64 / 4)
	n = (len(dst) - from) &^ 63
	if n == 0 {
		return 0, 0
	}
	if activeISA == isaAVX512 {
		ntCopyAVX512(&dst[from], &src[from : from+n][0], n)
	} else {
		ntCopyAVX2(&dst[from], &src[from : from+n][0], n)
	}
	return from, n
}
