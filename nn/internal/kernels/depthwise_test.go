package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// dwRef is the depthwise 3x3 convolution straight from the definition, in
// float64, on PyTorch-layout weights wt[ch*9+ky*3+kx], zero padding 1. It
// returns the outputs and, per output, the sum of the magnitudes of the
// terms (the scale the rounding error of a float32 kernel is relative to).
func dwRef(in []float32, h, w, c, stride int, wt, bias []float32, act Activation) (out, mag []float64) {
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	out = make([]float64, oh*ow*c)
	mag = make([]float64, oh*ow*c)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ch := 0; ch < c; ch++ {
				var s, m float64
				if bias != nil {
					s, m = float64(bias[ch]), math.Abs(float64(bias[ch]))
				}
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						iy, ix := oy*stride-1+ky, ox*stride-1+kx
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						p := float64(wt[ch*9+ky*3+kx]) * float64(in[(iy*w+ix)*c+ch])
						s += p
						m += math.Abs(p)
					}
				}
				if act == ActReLU6 {
					s = math.Min(math.Max(s, 0), 6)
				}
				i := (oy*ow+ox)*c + ch
				out[i], mag[i] = s, m
			}
		}
	}
	return out, mag
}

func dwRandom(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// dwSentinel is what output buffers are filled with before a kernel runs,
// to see which elements it wrote.
var dwSentinel = math.Float32frombits(0x7fc0dead) // a NaN with a recognisable payload

func dwFill(s []float32) {
	for i := range s {
		s[i] = dwSentinel
	}
}

func dwIsSentinel(v float32) bool { return math.Float32bits(v) == 0x7fc0dead }

// dwCheck compares got (len(want) outputs plus slack) with the reference:
// rows [oy0, oy1) must match, every other element must still be the sentinel.
func dwCheck(t *testing.T, name string, got []float32, want, mag []float64, rowLen, oy0, oy1 int) bool {
	t.Helper()
	bad := 0
	for i, g := range got {
		row := i / rowLen
		if i >= len(want) || row < oy0 || row >= oy1 {
			if !dwIsSentinel(g) {
				if bad++; bad <= 3 {
					t.Errorf("%s: out[%d] (row %d) written, outside rows [%d, %d): %v", name, i, row, oy0, oy1, g)
				}
			}
			continue
		}
		if d := math.Abs(float64(g) - want[i]); !(d <= 1e-5*(mag[i]+1)) {
			if bad++; bad <= 3 {
				t.Errorf("%s: out[%d] = %v, want %v (|diff| %.3g)", name, i, g, want[i], d)
			}
		}
	}
	return bad == 0
}

// forEachISA runs f with every instruction set this CPU and build can run
// forced active, generic included.
func forEachISA(t *testing.T, f func(t *testing.T, i ISA)) {
	for _, i := range Available() {
		restore := Force(i)
		f(t, i)
		restore()
	}
}

func TestDepthwiseMatchesReference(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 5, 7, 8, 14, 15, 28}
	chans := []int{1, 3, 8, 15, 16, 17, 24, 31, 32, 33, 96, 144}
	if testing.Short() {
		sizes = []int{1, 2, 3, 5, 8, 15}
		chans = []int{1, 8, 17, 33, 96}
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	for _, h := range sizes {
		for _, w := range sizes {
			for _, c := range chans {
				for stride := 1; stride <= 2; stride++ {
					// Cycle through bias/activation combinations instead of
					// multiplying the case count by four.
					n++
					withBias, act := n%2 == 0, Activation(n/2%2)
					dwCase(t, r, h, w, c, stride, withBias, act)
				}
			}
		}
	}
	// And every combination on a few shapes.
	for _, shape := range [][3]int{{1, 1, 5}, {2, 3, 17}, {7, 5, 33}, {14, 15, 24}} {
		for stride := 1; stride <= 2; stride++ {
			for _, withBias := range []bool{false, true} {
				for _, act := range []Activation{ActNone, ActReLU6} {
					dwCase(t, r, shape[0], shape[1], shape[2], stride, withBias, act)
				}
			}
		}
	}
}

// dwCase checks one shape on every ISA: all rows at once, then split in two
// calls at a random row.
func dwCase(t *testing.T, r *rand.Rand, h, w, c, stride int, withBias bool, act Activation) {
	t.Helper()
	in := dwRandom(r, h*w*c)
	in = in[:len(in):len(in)]
	wt := dwRandom(r, c*9)
	var bias []float32
	if withBias {
		bias = dwRandom(r, c)
	}
	packed := PackDepthwise(c, wt)
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	want, mag := dwRef(in, h, w, c, stride, wt, bias, act)
	const slack = 37
	out := make([]float32, oh*ow*c+slack)
	k := r.IntN(oh + 1)
	forEachISA(t, func(t *testing.T, i ISA) {
		name := fmt.Sprintf("%v %dx%dx%d s%d bias=%v act=%d", i, h, w, c, stride, withBias, act)
		dwFill(out)
		Depthwise3x3(in, h, w, c, stride, packed, bias, act, out[:oh*ow*c], 0, oh)
		if !dwCheck(t, name+" rows [0,oh)", out, want, mag, ow*c, 0, oh) {
			return
		}
		dwFill(out)
		Depthwise3x3(in, h, w, c, stride, packed, bias, act, out, 0, k)
		if !dwCheck(t, fmt.Sprintf("%s rows [0,%d)", name, k), out, want, mag, ow*c, 0, k) {
			return
		}
		Depthwise3x3(in, h, w, c, stride, packed, bias, act, out, k, oh)
		dwCheck(t, fmt.Sprintf("%s rows [0,%d)+[%d,%d)", name, k, k, oh), out, want, mag, ow*c, 0, oh)
	})
}

// TestDepthwiseRowRange computes every row range [a, b) of a few images and
// checks that exactly those rows are written.
func TestDepthwiseRowRange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][4]int{{7, 6, 19, 1}, {9, 9, 16, 2}, {4, 12, 8, 1}} {
		h, w, c, stride := s[0], s[1], s[2], s[3]
		in, wt, bias := dwRandom(r, h*w*c), dwRandom(r, c*9), dwRandom(r, c)
		packed := PackDepthwise(c, wt)
		oh, ow := (h-1)/stride+1, (w-1)/stride+1
		want, mag := dwRef(in, h, w, c, stride, wt, bias, ActReLU6)
		out := make([]float32, oh*ow*c+5)
		forEachISA(t, func(t *testing.T, i ISA) {
			for a := 0; a <= oh; a++ {
				for b := a; b <= oh; b++ {
					dwFill(out)
					Depthwise3x3(in, h, w, c, stride, packed, bias, ActReLU6, out, a, b)
					if !dwCheck(t, fmt.Sprintf("%v %dx%dx%d s%d rows [%d,%d)", i, h, w, c, stride, a, b), out, want, mag, ow*c, a, b) {
						return
					}
				}
			}
		})
	}
}

// TestDepthwiseGuardPages puts the input and the output right after and
// right before inaccessible pages: a kernel that reads or writes one float
// outside its slices, as an unmasked vector load of the last channels would,
// crashes the test.
func TestDepthwiseGuardPages(t *testing.T) {
	page := os.Getpagesize()
	// guarded returns n floats that end at an inaccessible page (atEnd) or
	// start right after one.
	guarded := func(n int, atEnd bool) []float32 {
		size := (n*4+page-1)/page*page + 2*page
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			t.Skipf("mmap: %v", err)
		}
		t.Cleanup(func() { syscall.Munmap(mem) })
		if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
			t.Skipf("mprotect: %v", err)
		}
		if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
			t.Skipf("mprotect: %v", err)
		}
		off := page
		if atEnd {
			off = size - page - n*4
		}
		return unsafe.Slice((*float32)(unsafe.Pointer(&mem[off])), n)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][4]int{{1, 1, 1, 1}, {3, 3, 3, 1}, {5, 4, 7, 2}, {4, 5, 17, 2}, {6, 5, 33, 1}, {2, 2, 13, 2}, {8, 8, 24, 1}} {
		h, w, c, stride := s[0], s[1], s[2], s[3]
		oh, ow := (h-1)/stride+1, (w-1)/stride+1
		wt, bias := dwRandom(r, c*9), dwRandom(r, c)
		for _, atEnd := range []bool{false, true} {
			in := guarded(h*w*c, atEnd)
			copy(in, dwRandom(r, h*w*c))
			out := guarded(oh*ow*c, !atEnd)
			pk := PackDepthwise(c, wt)
			packed := guarded(len(pk), atEnd)
			copy(packed, pk)
			b := guarded(c, atEnd)
			copy(b, bias)
			want, mag := dwRef(in, h, w, c, stride, wt, bias, ActNone)
			forEachISA(t, func(t *testing.T, i ISA) {
				dwFill(out)
				Depthwise3x3(in, h, w, c, stride, packed, b, ActNone, out, 0, oh)
				dwCheck(t, fmt.Sprintf("%v %dx%dx%d s%d atEnd=%v", i, h, w, c, stride, atEnd), out, want, mag, ow*c, 0, oh)
			})
		}
	}
}

// TestDepthwiseNonFinite: Inf and NaN inputs give what the definition
// gives, also on the border rows where the SIMD kernels read a row they do
// not use (which must not turn Inf into NaN).
func TestDepthwiseNonFinite(t *testing.T) {
	const h, w, c = 3, 4, 19
	r := rand.New(rand.NewPCG(7, 8))
	wt := dwRandom(r, c*9)
	packed := PackDepthwise(c, wt)
	for _, bad := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())} {
		in := dwRandom(r, h*w*c)
		for ch := 0; ch < c; ch++ {
			in[(1*w+2)*c+ch] = bad // centre row
			in[(0*w+0)*c+ch] = bad // top-left corner
		}
		for stride := 1; stride <= 2; stride++ {
			oh, ow := (h-1)/stride+1, (w-1)/stride+1
			for _, act := range []Activation{ActNone, ActReLU6} {
				want, _ := dwRef(in, h, w, c, stride, wt, nil, act)
				out := make([]float32, oh*ow*c)
				forEachISA(t, func(t *testing.T, i ISA) {
					Depthwise3x3(in, h, w, c, stride, packed, nil, act, out, 0, oh)
					for j, g := range out {
						wv := want[j]
						switch {
						case math.IsNaN(wv):
							if !math.IsNaN(float64(g)) {
								t.Errorf("%v %v s%d act=%d: out[%d] = %v, want NaN", i, bad, stride, act, j, g)
							}
						case math.IsInf(wv, 0):
							if float64(g) != wv {
								t.Errorf("%v %v s%d act=%d: out[%d] = %v, want %v", i, bad, stride, act, j, g, wv)
							}
						default:
							if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
								t.Errorf("%v %v s%d act=%d: out[%d] = %v, want %v", i, bad, stride, act, j, g, wv)
							}
						}
					}
				})
			}
		}
	}
}

func TestDepthwiseNoAllocs(t *testing.T) {
	const h, w, c = 14, 14, 40
	r := rand.New(rand.NewPCG(9, 10))
	in, bias := dwRandom(r, h*w*c), dwRandom(r, c)
	packed := PackDepthwise(c, dwRandom(r, c*9))
	out := make([]float32, h*w*c)
	forEachISA(t, func(t *testing.T, i ISA) {
		for _, b := range [][]float32{nil, bias} {
			n := testing.AllocsPerRun(20, func() {
				Depthwise3x3(in, h, w, c, 1, packed, b, ActReLU6, out, 0, h)
				Depthwise3x3(in, h, w, c, 2, packed, b, ActNone, out, 0, (h-1)/2+1)
			})
			if n != 0 {
				t.Errorf("%v: %v allocations per call, want 0", i, n)
			}
		}
	})
}

func TestPackDepthwise(t *testing.T) {
	const c = 19
	wt := make([]float32, c*9)
	for i := range wt {
		wt[i] = float32(i + 1)
	}
	p := PackDepthwise(c, wt)
	cp := PadChannels(c)
	if len(p) != 9*cp || cp%dwLanes != 0 || cp < c {
		t.Fatalf("len = %d, cp = %d", len(p), cp)
	}
	for tap := 0; tap < 9; tap++ {
		for ch := 0; ch < cp; ch++ {
			want := float32(0)
			if ch < c {
				want = wt[ch*9+tap]
			}
			if p[tap*cp+ch] != want {
				t.Errorf("packed[%d][%d] = %v, want %v", tap, ch, p[tap*cp+ch], want)
			}
		}
	}
}

func TestDepthwisePanics(t *testing.T) {
	const h, w, c = 5, 5, 8
	in, out := make([]float32, h*w*c), make([]float32, h*w*c)
	packed, bias := PackDepthwise(c, make([]float32, c*9)), make([]float32, c)
	cases := map[string]func(){
		"stride 3":      func() { Depthwise3x3(in, h, w, c, 3, packed, bias, ActNone, out, 0, 1) },
		"stride 0":      func() { Depthwise3x3(in, h, w, c, 0, packed, bias, ActNone, out, 0, 1) },
		"zero c":        func() { Depthwise3x3(in, h, w, 0, 1, packed, bias, ActNone, out, 0, 1) },
		"short in":      func() { Depthwise3x3(in[:h*w*c-1], h, w, c, 1, packed, bias, ActNone, out, 0, 1) },
		"short out":     func() { Depthwise3x3(in, h, w, c, 1, packed, bias, ActNone, out[:h*w*c-1], 0, 1) },
		"short packed":  func() { Depthwise3x3(in, h, w, c, 1, packed[:9*c], bias, ActNone, out, 0, 1) },
		"short bias":    func() { Depthwise3x3(in, h, w, c, 1, packed, bias[:c-1], ActNone, out, 0, 1) },
		"rows past oh":  func() { Depthwise3x3(in, h, w, c, 1, packed, bias, ActNone, out, 0, h+1) },
		"rows reversed": func() { Depthwise3x3(in, h, w, c, 1, packed, bias, ActNone, out, 3, 2) },
		"negative row":  func() { Depthwise3x3(in, h, w, c, 1, packed, bias, ActNone, out, -1, 2) },
		"bad act":       func() { Depthwise3x3(in, h, w, c, 1, packed, bias, Activation(7), out, 0, 1) },
		"pack short w":  func() { PackDepthwise(c, make([]float32, c*9-1)) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
