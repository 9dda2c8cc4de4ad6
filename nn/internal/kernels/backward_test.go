package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the backward kernels (backward.go): each against a float64
// reference straight from its definition, on every ISA; with small-integer
// inputs, where every float32 sum is exact in any order, the results must be
// bit-for-bit equal to the reference. A finite-difference check ties the
// gradients to the forward kernels.

// tkInts returns n floats, small integers in [-r, r] (exact products and sums).
func tkInts(rng *rand.Rand, n, r int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.IntN(2*r+1) - r)
	}
	return s
}

// tkData returns n test values: small integers if exact, else normal floats.
func tkData(rng *rand.Rand, n int, exact bool) []float32 {
	if exact {
		return tkInts(rng, n, 3)
	}
	return dwRandom(rng, n)
}

// tkCompare checks got[i] against want[i] within tol(i) (exactly if tol is
// nil), reporting the first few mismatches.
func tkCompare(t *testing.T, name string, got []float32, want []float64, tol func(i int) float64) {
	t.Helper()
	bad := 0
	for i, w := range want {
		g := float64(got[i])
		ok := g == w
		if tol != nil {
			ok = math.Abs(g-w) <= tol(i)
		}
		if !ok {
			if bad++; bad <= 3 {
				t.Errorf("%s: [%d] = %v, want %v", name, i, got[i], w)
			}
		}
	}
}

// tkUntouched checks that s still holds the sentinel everywhere.
func tkUntouched(t *testing.T, name string, s []float32) {
	t.Helper()
	for i, v := range s {
		if !dwIsSentinel(v) {
			t.Errorf("%s: [%d] = %v written past the end", name, i, v)
			return
		}
	}
}

// eps32 is the float32 unit roundoff.
const eps32 = 1.0 / (1 << 24)

// ---------------------------------------------------------------- GemmATB

// atbRef is GemmATB in float64: dw0 plus the sums, and the sum of the
// magnitudes of each output's terms.
func atbRef(m, k, n int, a []float32, lda int, d []float32, ldd int, dw0 []float32) (want, mag []float64) {
	want = make([]float64, k*n)
	mag = make([]float64, k*n)
	for kk := 0; kk < k; kk++ {
		for j := 0; j < n; j++ {
			s := float64(dw0[kk*n+j])
			g := math.Abs(s)
			for i := 0; i < m; i++ {
				p := float64(a[i*lda+kk]) * float64(d[i*ldd+j])
				s += p
				g += math.Abs(p)
			}
			want[kk*n+j], mag[kk*n+j] = s, g
		}
	}
	return want, mag
}

// atbCase runs GemmATB on one random shape, with the rows of a and d split
// into the given pieces (accumulated into the same dw in order), and checks
// it against the reference: exactly with integer data, else within the
// float32 error bound of a sum of m+1 terms.
func atbCase(t *testing.T, rng *rand.Rand, m, k, n, lda, ldd int, exact bool, splits []int) {
	t.Helper()
	a := tkData(rng, (m-1)*lda+k+1, exact)
	a = a[:max(0, (m-1)*lda+k)] // exact length: a kernel reading past it panics or faults
	d := tkData(rng, max(0, (m-1)*ldd+n), exact)
	dw0 := tkInts(rng, k*n, 8)
	dw := make([]float32, k*n+40)
	copy(dw, dw0)
	dwFill(dw[k*n:])
	a0 := append([]float32(nil), a...)
	d0 := append([]float32(nil), d...)
	prev := 0
	for _, s := range append(splits, m) {
		GemmATB(s-prev, k, n, a[prev*lda:], lda, d[prev*ldd:], ldd, dw)
		prev = s
	}
	name := fmt.Sprintf("GemmATB %dx%dx%d lda %d ldd %d exact %v split %v", m, k, n, lda, ldd, exact, splits)
	want, mag := atbRef(m, k, n, a, lda, d, ldd, dw0)
	var tol func(int) float64
	if !exact {
		tol = func(i int) float64 { return float64(m+2) * eps32 * mag[i] }
	}
	tkCompare(t, name, dw[:k*n], want, tol)
	tkUntouched(t, name+" dw slack", dw[k*n:])
	for i := range a {
		if a[i] != a0[i] {
			t.Fatalf("%s: a[%d] modified", name, i)
		}
	}
	for i := range d {
		if d[i] != d0[i] {
			t.Fatalf("%s: d[%d] modified", name, i)
		}
	}
}

func TestGemmATBMatchesReference(t *testing.T) {
	ms := []int{1, 2, 3, 7, 8, 9, 17, 64, 131, 300}
	ks := []int{1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 24, 27, 33, 40, 63}
	ns := []int{1, 3, 8, 10, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 49, 64, 80, 96, 100}
	if testing.Short() {
		ms = []int{1, 3, 9, 131}
		ks = []int{1, 3, 8, 9, 17, 27, 40}
		ns = []int{1, 8, 10, 16, 17, 33, 48, 100}
	}
	forEachISA(t, func(t *testing.T, i ISA) {
		t.Run(i.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(i)))
			for _, m := range ms {
				for _, k := range ks {
					for _, n := range ns {
						lda, ldd := k, n
						if (m+k+n)%3 == 0 {
							lda, ldd = k+rng.IntN(5), n+1+rng.IntN(20)
						}
						atbCase(t, rng, m, k, n, lda, ldd, (m*k*n)%2 == 0, nil)
					}
				}
			}
		})
	})
}

// TestGemmATBLarge covers the row blocking of the kernels (blocks of m,
// tiles past the first) on the shapes of training, exactly.
func TestGemmATBLarge(t *testing.T) {
	shapes := [][3]int{{5000, 32, 32}, {2100, 96, 24}, {1500, 144, 40}, {700, 192, 64}, {300, 576, 96}, {128, 1280, 10}, {1111, 8, 200}, {999, 301, 7}}
	if testing.Short() {
		shapes = shapes[:3]
	}
	forEachISA(t, func(t *testing.T, i ISA) {
		t.Run(i.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, uint64(i)))
			for _, s := range shapes {
				atbCase(t, rng, s[0], s[1], s[2], s[1], s[2], true, nil)
			}
			atbCase(t, rng, 3000, 40, 56, 40, 56, false, nil)
		})
	})
}

// TestGemmATBSplitRows: calls on consecutive row ranges accumulate into the
// same dw as one call would (exact data), also with strides.
func TestGemmATBSplitRows(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		t.Run(i.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, uint64(i)))
			atbCase(t, rng, 1000, 24, 40, 24, 40, true, []int{0, 1, 2, 333, 334, 700, 999})
			atbCase(t, rng, 257, 17, 33, 20, 48, true, []int{100, 100, 200})
		})
	})
}

// TestGemmATBDeterministic: the same inputs give bit-identical output.
func TestGemmATBDeterministic(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		rng := rand.New(rand.NewPCG(10, uint64(i)))
		m, k, n := 2000, 40, 72
		a, d := dwRandom(rng, m*k), dwRandom(rng, m*n)
		dw0 := dwRandom(rng, k*n)
		x := append([]float32(nil), dw0...)
		y := append([]float32(nil), dw0...)
		GemmATB(m, k, n, a, k, d, n, x)
		GemmATB(m, k, n, a, k, d, n, y)
		for j := range x {
			if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
				t.Fatalf("%v: dw[%d] differs between two runs: %v, %v", i, j, x[j], y[j])
			}
		}
	})
}

// TestGemmATBNonFinite: an Inf in a reaches exactly the dw row it should,
// as Inf or NaN (never skipped as a zero product).
func TestGemmATBNonFinite(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		m, k, n := 50, 20, 40
		a := make([]float32, m*k)
		d := make([]float32, m*n)
		a[7*k+5] = float32(math.Inf(1))
		dw := make([]float32, k*n)
		GemmATB(m, k, n, a, k, d, n, dw) // Inf * 0 = NaN in row 5 of dw only
		for kk := 0; kk < k; kk++ {
			for j := 0; j < n; j++ {
				if nan := math.IsNaN(float64(dw[kk*n+j])); nan != (kk == 5) {
					t.Fatalf("%v: dw[%d][%d] = %v", i, kk, j, dw[kk*n+j])
				}
			}
		}
	})
}

func TestGemmATBPanics(t *testing.T) {
	buf := make([]float32, 100)
	cases := []struct {
		name string
		f    func()
	}{
		{"negative m", func() { GemmATB(-1, 2, 2, buf, 2, buf, 2, buf) }},
		{"short dw", func() { GemmATB(2, 10, 11, buf, 10, buf, 11, buf) }},
		{"short a", func() { GemmATB(21, 5, 2, buf, 5, buf, 2, buf) }},
		{"short d", func() { GemmATB(21, 2, 5, buf, 2, buf, 5, buf) }},
		{"lda < k", func() { GemmATB(3, 4, 2, buf, 3, buf, 2, buf) }},
		{"ldd < n", func() { GemmATB(3, 2, 4, buf, 2, buf, 3, buf) }},
		{"k*n overflows", func() { GemmATB(1, math.MaxInt/2, 4, buf, math.MaxInt/2, buf, 4, buf) }},
	}
	for _, c := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			c.f()
		}()
	}
	GemmATB(0, 5, 5, nil, 0, nil, 0, buf) // m = 0: nothing to read
}

// ---------------------------------------------------------------- depthwise

// dwbInputRef is Depthwise3x3BackInput in float64, scattering each output
// gradient to the inputs its window covers; mag sums the magnitudes.
func dwbInputRef(dout []float32, h, w, c, stride int, wts []float32) (din, mag []float64) {
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	din = make([]float64, h*w*c)
	mag = make([]float64, h*w*c)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					iy, ix := oy*stride+ky-1, ox*stride+kx-1
					if iy < 0 || iy >= h || ix < 0 || ix >= w {
						continue
					}
					for ch := 0; ch < c; ch++ {
						p := float64(wts[ch*9+ky*3+kx]) * float64(dout[(oy*ow+ox)*c+ch])
						din[(iy*w+ix)*c+ch] += p
						mag[(iy*w+ix)*c+ch] += math.Abs(p)
					}
				}
			}
		}
	}
	return din, mag
}

// dwbWeightRef is Depthwise3x3BackWeight in float64 over output rows
// [oy0, oy1), added to dw0.
func dwbWeightRef(in []float32, h, w, c, stride int, dout []float32, dw0 []float32, oy0, oy1 int) (dw, mag []float64) {
	ow := (w-1)/stride + 1
	dw = make([]float64, 9*c)
	mag = make([]float64, 9*c)
	for i, v := range dw0[:9*c] {
		dw[i], mag[i] = float64(v), math.Abs(float64(v))
	}
	for oy := oy0; oy < oy1; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					iy, ix := oy*stride+ky-1, ox*stride+kx-1
					if iy < 0 || iy >= h || ix < 0 || ix >= w {
						continue
					}
					for ch := 0; ch < c; ch++ {
						p := float64(in[(iy*w+ix)*c+ch]) * float64(dout[(oy*ow+ox)*c+ch])
						dw[ch*9+ky*3+kx] += p
						mag[ch*9+ky*3+kx] += math.Abs(p)
					}
				}
			}
		}
	}
	return dw, mag
}

// tkSplits returns a random split of [0, n) into consecutive ranges.
func tkSplits(rng *rand.Rand, n int) [][2]int {
	var out [][2]int
	for r0 := 0; r0 < n; {
		r1 := min(n, r0+1+rng.IntN(n))
		if rng.IntN(4) == 0 {
			r1 = r0 // empty ranges are legal
		}
		out = append(out, [2]int{r0, r1})
		r0 = r1
	}
	return out
}

// dwbCase checks both depthwise backward kernels on one shape: the input
// gradient rows written range by range (each range in a fresh sentinel-filled
// buffer must write exactly its rows), and the weight gradient accumulated
// per row range into separate buffers.
func dwbCase(t *testing.T, rng *rand.Rand, h, w, c, stride int, exact bool) {
	t.Helper()
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	name := fmt.Sprintf("%dx%dx%d/s%d exact %v", h, w, c, stride, exact)
	in := tkData(rng, h*w*c, exact)
	dout := tkData(rng, oh*ow*c, exact)
	wts := tkData(rng, 9*c, exact)

	wantIn, magIn := dwbInputRef(dout, h, w, c, stride, wts)
	var tolIn func(int) float64
	if !exact {
		tolIn = func(i int) float64 { return 1e-6 * (magIn[i] + 1e-30) }
	}
	din := make([]float32, h*w*c)
	for _, r := range tkSplits(rng, h) {
		part := make([]float32, h*w*c+33)
		dwFill(part)
		Depthwise3x3BackInput(dout[:oh*ow*c:oh*ow*c], h, w, c, stride, wts[:9*c:9*c], part[:h*w*c:h*w*c], r[0], r[1])
		for i, v := range part[:h*w*c] {
			row := i / (w * c)
			inside := row >= r[0] && row < r[1]
			if inside == dwIsSentinel(v) {
				t.Fatalf("BackInput %s rows %v: din[%d] (row %d) written %v", name, r, i, row, !inside)
			}
			if inside {
				din[i] = v
			}
		}
		tkUntouched(t, "BackInput "+name+" slack", part[h*w*c:])
	}
	tkCompare(t, "BackInput "+name, din, wantIn, tolIn)

	dw0 := tkInts(rng, 9*c, 8)
	total := append([]float32(nil), dw0...)
	for _, r := range tkSplits(rng, oh) {
		part := make([]float32, 9*c+20)
		dwFill(part[9*c:])
		Depthwise3x3BackWeight(in[:h*w*c:h*w*c], h, w, c, stride, dout[:oh*ow*c:oh*ow*c], part[:9*c:9*c], r[0], r[1])
		tkUntouched(t, "BackWeight "+name+" slack", part[9*c:])
		want, mag := dwbWeightRef(in, h, w, c, stride, dout, make([]float32, 9*c), r[0], r[1])
		var tol func(int) float64
		if !exact {
			tol = func(i int) float64 { return float64(h*w+2) * eps32 * mag[i] }
		}
		tkCompare(t, fmt.Sprintf("BackWeight %s rows %v", name, r), part[:9*c], want, tol)
		for i := range total {
			total[i] += part[i]
		}
	}
	// One call over all rows, accumulating into dw0.
	dw := append([]float32(nil), dw0...)
	Depthwise3x3BackWeight(in, h, w, c, stride, dout, dw, 0, oh)
	want, mag := dwbWeightRef(in, h, w, c, stride, dout, dw0, 0, oh)
	var tol func(int) float64
	if !exact {
		tol = func(i int) float64 { return float64(h*w+2) * eps32 * mag[i] }
	}
	tkCompare(t, "BackWeight "+name+" all rows", dw, want, tol)
	if exact {
		tkCompare(t, "BackWeight "+name+" split sum", total, want, nil)
	}
}

func TestDepthwiseBackInputBackWeightReference(t *testing.T) {
	sizes := []int{1, 2, 3, 5, 6, 7, 8, 16}
	chans := []int{1, 3, 8, 15, 16, 17, 24, 33, 40, 96, 100}
	if testing.Short() {
		sizes = []int{1, 2, 3, 8}
		chans = []int{1, 8, 17, 33}
	}
	forEachISA(t, func(t *testing.T, i ISA) {
		t.Run(i.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(i)))
			n := 0
			for _, h := range sizes {
				for _, w := range sizes {
					for _, c := range chans {
						for stride := 1; stride <= 2; stride++ {
							n++
							dwbCase(t, rng, h, w, c, stride, n%2 == 0)
						}
					}
				}
			}
		})
	})
}

// TestDepthwiseBackInputBackWeightChunks covers channel counts past one chunk (dwbChunk).
func TestDepthwiseBackInputBackWeightChunks(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		t.Run(i.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(12, uint64(i)))
			for _, c := range []int{dwbChunk + 8, 2*dwbChunk + 17, 960} {
				for stride := 1; stride <= 2; stride++ {
					dwbCase(t, rng, 5, 4, c, stride, true)
					dwbCase(t, rng, 4, 3, c, stride, false)
				}
			}
		})
	})
}

// TestDepthwiseBackInputBackWeightNonFinite: a NaN in dout reaches exactly the inputs its
// window covers, and an Inf input exactly the taps that read it.
func TestDepthwiseBackInputBackWeightNonFinite(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		for stride := 1; stride <= 2; stride++ {
			h, w, c := 7, 6, 20
			oh, ow := (h-1)/stride+1, (w-1)/stride+1
			dout := make([]float32, oh*ow*c)
			wts := make([]float32, 9*c)
			oy, ox, ch := 1, 2, 17
			dout[(oy*ow+ox)*c+ch] = float32(math.NaN())
			din := make([]float32, h*w*c)
			Depthwise3x3BackInput(dout, h, w, c, stride, wts, din, 0, h)
			for iy := 0; iy < h; iy++ {
				for ix := 0; ix < w; ix++ {
					for k := 0; k < c; k++ {
						dy, dx := iy-(oy*stride-1), ix-(ox*stride-1)
						want := k == ch && dy >= 0 && dy < 3 && dx >= 0 && dx < 3
						if got := math.IsNaN(float64(din[(iy*w+ix)*c+k])); got != want {
							t.Fatalf("%v s%d: din[%d][%d][%d] NaN %v, want %v", i, stride, iy, ix, k, got, want)
						}
					}
				}
			}
			in := make([]float32, h*w*c)
			in[(2*w+3)*c+ch] = float32(math.Inf(1))
			dw := make([]float32, 9*c)
			Depthwise3x3BackWeight(in, h, w, c, stride, make([]float32, oh*ow*c), dw, 0, oh)
			for k := 0; k < c; k++ {
				for tap := 0; tap < 9; tap++ {
					ky, kx := tap/3, tap%3
					// Does any output pixel read input (2, 3) through this tap?
					want := false
					for y := 0; y < oh; y++ {
						for x := 0; x < ow; x++ {
							want = want || k == ch && y*stride+ky-1 == 2 && x*stride+kx-1 == 3
						}
					}
					if got := math.IsNaN(float64(dw[k*9+tap])); got != want {
						t.Fatalf("%v s%d: dw[%d][%d] NaN %v, want %v", i, stride, k, tap, got, want)
					}
				}
			}
		}
	})
}

func TestDepthwiseBackInputBackWeightPanics(t *testing.T) {
	buf := make([]float32, 1000)
	cases := []struct {
		name string
		f    func()
	}{
		{"input stride 3", func() { Depthwise3x3BackInput(buf, 4, 4, 2, 3, buf, buf, 0, 4) }},
		{"input c 0", func() { Depthwise3x3BackInput(buf, 4, 4, 0, 1, buf, buf, 0, 4) }},
		{"input rows", func() { Depthwise3x3BackInput(buf, 4, 4, 2, 1, buf, buf, 0, 5) }},
		{"input rows reversed", func() { Depthwise3x3BackInput(buf, 4, 4, 2, 1, buf, buf, 3, 2) }},
		{"short din", func() { Depthwise3x3BackInput(buf, 10, 10, 11, 1, buf, buf[:1099], 0, 1) }},
		{"short dout", func() { Depthwise3x3BackInput(buf[:99], 10, 10, 1, 1, buf, buf, 0, 1) }},
		{"short wts", func() { Depthwise3x3BackInput(buf, 4, 4, 20, 1, buf[:179], buf, 0, 1) }},
		{"weight stride 0", func() { Depthwise3x3BackWeight(buf, 4, 4, 2, 0, buf, buf, 0, 4) }},
		{"weight rows", func() { Depthwise3x3BackWeight(buf, 4, 4, 2, 2, buf, buf, 0, 3) }},
		{"short in", func() { Depthwise3x3BackWeight(buf[:99], 10, 10, 1, 1, buf, buf, 0, 1) }},
		{"short dw", func() { Depthwise3x3BackWeight(buf, 4, 4, 20, 1, buf, buf[:179], 0, 1) }},
		{"size overflows", func() { Depthwise3x3BackInput(buf, 2, math.MaxInt/2, 4, 1, buf, buf, 0, 1) }},
		{"rows overflow", func() { Depthwise3x3BackWeight(buf, math.MaxInt/2, 2, 2, 1, buf, buf, 0, 1) }},
	}
	for _, c := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			c.f()
		}()
	}
}

// ---------------------------------------------------------------- finite differences

// tkRelErr is |a-b| relative to the larger magnitude (at least 1e-3).
func tkRelErr(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Max(math.Abs(a), math.Abs(b)), 1e-3)
}

// dwForward64 is the depthwise 3x3 convolution in float64 (PyTorch-layout
// weights, zero padding 1, no bias): the forward reference of the
// finite-difference check.
func dwForward64(in []float64, h, w, c, stride int, wts []float64) []float64 {
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	out := make([]float64, oh*ow*c)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ch := 0; ch < c; ch++ {
				var s float64
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						iy, ix := oy*stride+ky-1, ox*stride+kx-1
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							s += wts[ch*9+ky*3+kx] * in[(iy*w+ix)*c+ch]
						}
					}
				}
				out[(oy*ow+ox)*c+ch] = s
			}
		}
	}
	return out
}

func tk64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

func tkDot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// tkCentral returns the central difference of f along each element of x.
func tkCentral(x []float64, f func() float64) []float64 {
	const step = 1e-3
	g := make([]float64, len(x))
	for i := range x {
		v := x[i]
		x[i] = v + step
		fp := f()
		x[i] = v - step
		fm := f()
		x[i] = v
		g[i] = (fp - fm) / (2 * step)
	}
	return g
}

// TestDepthwiseBackInputBackWeightFiniteDifference: for L = sum(out*G), out the depthwise
// layer's output, the gradients the backward kernels give with respect to
// the input and the weights match central differences of a float64 forward
// pass; and the float32 forward kernel (Depthwise3x3 with PackDepthwise
// weights) computes the function whose gradients they are.
func TestDepthwiseBackInputBackWeightFiniteDifference(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		for stride := 1; stride <= 2; stride++ {
			rng := rand.New(rand.NewPCG(13, uint64(stride)))
			h, w, c := 7, 6, 19
			oh, ow := (h-1)/stride+1, (w-1)/stride+1
			in := dwRandom(rng, h*w*c)
			wts := dwRandom(rng, 9*c)
			g := dwRandom(rng, oh*ow*c)

			din := make([]float32, h*w*c)
			Depthwise3x3BackInput(g, h, w, c, stride, wts, din, 0, h)
			dwt := make([]float32, 9*c)
			Depthwise3x3BackWeight(in, h, w, c, stride, g, dwt, 0, oh)

			x, wt, g64 := tk64(in), tk64(wts), tk64(g)
			loss := func() float64 { return tkDot(dwForward64(x, h, w, c, stride, wt), g64) }
			numIn := tkCentral(x, loss)
			numW := tkCentral(wt, loss)
			for j := range numIn {
				if e := tkRelErr(float64(din[j]), numIn[j]); !(e < 1e-3) {
					t.Fatalf("%v s%d: dL/din[%d] = %v, central difference %v", i, stride, j, din[j], numIn[j])
				}
			}
			for j := range numW {
				if e := tkRelErr(float64(dwt[j]), numW[j]); !(e < 1e-3) {
					t.Fatalf("%v s%d: dL/dw[%d] = %v, central difference %v", i, stride, j, dwt[j], numW[j])
				}
			}

			// The float32 forward kernel: L = <out, G> is linear in the input
			// and in the weights, so L = <in, dL/din> = <w, dL/dw>.
			out := make([]float32, oh*ow*c)
			Depthwise3x3(in, h, w, c, stride, PackDepthwise(c, wts), nil, ActNone, out, 0, oh)
			l := tkDot(tk64(out), g64)
			if e := tkRelErr(l, tkDot(x, tk64(din))); e > 1e-4 {
				t.Errorf("%v s%d: <Depthwise3x3(in), G> = %v, <in, dL/din> = %v", i, stride, l, tkDot(x, tk64(din)))
			}
			if e := tkRelErr(l, tkDot(wt, tk64(dwt))); e > 1e-4 {
				t.Errorf("%v s%d: <Depthwise3x3(in), G> = %v, <w, dL/dw> = %v", i, stride, l, tkDot(wt, tk64(dwt)))
			}
		}
	})
}

// TestGemmATBFiniteDifference: for a 1x1 layer out = in·W (Gemm, no bias, no
// activation) and L = sum(out*G), GemmATB's dL/dW and the input gradient
// G·Wᵀ (Gemm on Wᵀ packed) match central differences of a float64 forward
// pass, and Gemm computes that forward pass.
func TestGemmATBFiniteDifference(t *testing.T) {
	forEachISA(t, func(t *testing.T, i ISA) {
		rng := rand.New(rand.NewPCG(14, 1))
		m, k, n := 37, 21, 19
		in := dwRandom(rng, m*k)
		wt := dwRandom(rng, k*n) // k×n: Gemm's B
		g := dwRandom(rng, m*n)

		dW := make([]float32, k*n)
		GemmATB(m, k, n, in, k, g, n, dW)
		wT := make([]float32, n*k)
		for kk := 0; kk < k; kk++ {
			for j := 0; j < n; j++ {
				wT[j*k+kk] = wt[kk*n+j]
			}
		}
		dIn := make([]float32, m*k)
		Gemm(m, g, n, PackB(n, k, wT), nil, ActNone, nil, 0, dIn, k)

		x, w64, g64 := tk64(in), tk64(wt), tk64(g)
		loss := func() float64 {
			var l float64
			for r := 0; r < m; r++ {
				for j := 0; j < n; j++ {
					var s float64
					for kk := 0; kk < k; kk++ {
						s += x[r*k+kk] * w64[kk*n+j]
					}
					l += s * g64[r*n+j]
				}
			}
			return l
		}
		numW := tkCentral(w64, loss)
		numIn := tkCentral(x, loss)
		for j := range numW {
			if e := tkRelErr(float64(dW[j]), numW[j]); !(e < 1e-3) {
				t.Fatalf("%v: dL/dW[%d] = %v, central difference %v", i, j, dW[j], numW[j])
			}
		}
		for j := range numIn {
			if e := tkRelErr(float64(dIn[j]), numIn[j]); !(e < 1e-3) {
				t.Fatalf("%v: dL/din[%d] = %v, central difference %v", i, j, dIn[j], numIn[j])
			}
		}
		out := make([]float32, m*n)
		Gemm(m, in, k, PackB(k, n, wt), nil, ActNone, nil, 0, out, n)
		l := tkDot(tk64(out), g64)
		if e := tkRelErr(l, tkDot(w64, tk64(dW))); e > 1e-4 {
			t.Errorf("%v: <Gemm(in), G> = %v, <W, dL/dW> = %v", i, l, tkDot(w64, tk64(dW)))
		}
	})
}

// ---------------------------------------------------------------- Repack, allocations

func TestRepackMatchesPackB(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	for _, s := range [][2]int{{1, 1}, {3, 5}, {8, 16}, {17, 33}, {27, 32}, {96, 24}, {64, 100}, {0, 7}, {5, 0}} {
		k, n := s[0], s[1]
		p := PackB(k, n, gemmRandSlice(rng, k*n))
		b := gemmRandSlice(rng, k*n)
		p.Repack(b)
		q := PackB(k, n, b)
		if p.K != q.K || p.N != q.N || p.panels != q.panels || len(p.data) != len(q.data) {
			t.Fatalf("%dx%d: Repack changed the shape", k, n)
		}
		for i := range p.data {
			if p.data[i] != q.data[i] {
				t.Fatalf("%dx%d: Repack data[%d] = %v, PackB %v", k, n, i, p.data[i], q.data[i])
			}
		}
		if k > 0 && n > 0 {
			m := 5
			a := gemmRandSlice(rng, m*k)
			c1, c2 := make([]float32, m*n), make([]float32, m*n)
			Gemm(m, a, k, p, nil, ActNone, nil, 0, c1, n)
			Gemm(m, a, k, q, nil, ActNone, nil, 0, c2, n)
			for i := range c1 {
				if c1[i] != c2[i] {
					t.Fatalf("%dx%d: Gemm differs after Repack", k, n)
				}
			}
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Repack of a short slice: no panic")
			}
		}()
		PackB(4, 4, make([]float32, 16)).Repack(make([]float32, 15))
	}()
}

func TestATBBackInputBackWeightRepackNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	m, k, n := 300, 40, 56
	a, d, dw := dwRandom(rng, m*k), dwRandom(rng, m*n), make([]float32, k*n)
	p := PackB(k, n, dw)
	h, w, c := 9, 8, 2*dwbChunk+24
	in, wts := dwRandom(rng, h*w*c), dwRandom(rng, 9*c)
	dout, din, dwt := dwRandom(rng, h*w*c), make([]float32, h*w*c), make([]float32, 9*c)
	forEachISA(t, func(t *testing.T, i ISA) {
		for stride := 1; stride <= 2; stride++ {
			oh := (h-1)/stride + 1
			for name, f := range map[string]func(){
				"GemmATB":    func() { GemmATB(m, k, n, a, k, d, n, dw) },
				"Repack":     func() { p.Repack(dw) },
				"BackInput":  func() { Depthwise3x3BackInput(dout, h, w, c, stride, wts, din, 0, h) },
				"BackWeight": func() { Depthwise3x3BackWeight(in, h, w, c, stride, dout, dwt, 0, oh) },
			} {
				if allocs := testing.AllocsPerRun(5, f); allocs != 0 {
					t.Errorf("%v s%d: %s allocates %v times per call", i, stride, name, allocs)
				}
			}
		}
	})
}
