package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// gemmRef is Gemm in float64, the plain triple loop; it returns c as an m×n
// row-major matrix.
func gemmRef(m, k, n int, a []float32, lda int, b []float32, bias []float32, act Activation, res []float32, ldr int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for kk := 0; kk < k; kk++ {
				s += float64(a[i*lda+kk]) * float64(b[kk*n+j])
			}
			if bias != nil {
				s += float64(bias[j])
			}
			if act == ActReLU6 {
				s = math.Min(math.Max(s, 0), 6)
			}
			if res != nil {
				s += float64(res[i*ldr+j])
			}
			out[i*n+j] = s
		}
	}
	return out
}

// gemmBound is the error allowed in c[i][j]: float32 rounding of a sum of k
// products, relative to the magnitudes summed.
func gemmBound(k int, a []float32, lda int, b []float32, n int, bias []float32, res []float32, ldr int, i, j int) float64 {
	s := 0.0
	for kk := 0; kk < k; kk++ {
		s += math.Abs(float64(a[i*lda+kk]) * float64(b[kk*n+j]))
	}
	if bias != nil {
		s += math.Abs(float64(bias[j]))
	}
	if res != nil {
		s += math.Abs(float64(res[i*ldr+j]))
	}
	return 2e-7*float64(k+4)*s + 1e-30
}

func gemmRandSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

// gemmForEachISA runs f with every ISA this CPU and build can run forced active.
// The generic kernel runs twice, with each of its register tiles.
func gemmForEachISA(t *testing.T, f func(t *testing.T)) {
	for _, i := range Available() {
		t.Run(i.String(), func(t *testing.T) {
			defer Force(i)()
			f(t)
		})
		if i == isaGeneric {
			t.Run("generic-othertile", func(t *testing.T) {
				defer Force(i)()
				gemmWideTile = !gemmWideTile
				defer func() { gemmWideTile = !gemmWideTile }()
				f(t)
			})
		}
	}
}

const gemmSentinel = float32(1234.5)

// gemmCase is one call of Gemm with padded, sentinel-guarded operands.
type gemmCase struct {
	m, k, n         int
	lda, ldr, ldc   int
	a, b, bias, res []float32
	act             Activation
	want            []float64
	cbuf            []float32 // c lives at cbuf[coff:]
	coff            int
	shareRes        bool
}

func newGemmCase(r *rand.Rand, m, k, n int, withBias, withRes bool, act Activation) *gemmCase {
	g := &gemmCase{m: m, k: k, n: n, act: act}
	g.lda = k + r.IntN(3)
	g.ldr = n + r.IntN(3)
	g.ldc = n + 1 + r.IntN(3)
	g.a = gemmRandSlice(r, max(0, (m-1)*g.lda+k))
	// Padding of A between rows is NaN: a kernel that reads it poisons C.
	for i := 0; i < m; i++ {
		for kk := k; kk < g.lda && i*g.lda+kk < len(g.a); kk++ {
			g.a[i*g.lda+kk] = float32(math.NaN())
		}
	}
	g.b = gemmRandSlice(r, k*n)
	if withBias {
		g.bias = gemmRandSlice(r, n)
	}
	if withRes {
		g.res = gemmRandSlice(r, max(0, (m-1)*g.ldr+n))
		for i := 0; i < m; i++ {
			for j := n; j < g.ldr && i*g.ldr+j < len(g.res); j++ {
				g.res[i*g.ldr+j] = float32(math.NaN())
			}
		}
	}
	g.want = gemmRef(m, k, n, g.a, g.lda, g.b, g.bias, act, g.res, g.ldr)
	return g
}

// run calls Gemm with the current ISA on fresh sentinel-filled C and checks
// the result and that nothing else in C's buffer changed.
func (g *gemmCase) run(t *testing.T, pb *PackedB) {
	t.Helper()
	clen := 0
	if g.m > 0 {
		clen = (g.m-1)*g.ldc + g.n
	}
	g.coff = 1 + g.ldc // a row and a bit of guard before C
	g.cbuf = make([]float32, g.coff+clen+g.ldc+17)
	for i := range g.cbuf {
		g.cbuf[i] = gemmSentinel
	}
	c := g.cbuf[g.coff : g.coff+clen : g.coff+clen]
	res := g.res
	ldr := g.ldr
	if g.shareRes && res != nil {
		// In place: res is C's memory.
		ldr = g.ldc
		for i := 0; i < g.m; i++ {
			copy(c[i*g.ldc:i*g.ldc+g.n], g.res[i*g.ldr:i*g.ldr+g.n])
		}
		res = c
	}
	var bias []float32
	if g.bias != nil {
		bias = g.bias[:g.n:g.n]
	}
	Gemm(g.m, g.a, g.lda, pb, bias, g.act, res, ldr, c, g.ldc)
	name := fmt.Sprintf("%s m=%d k=%d n=%d lda=%d ldr=%d ldc=%d bias=%v res=%v act=%d", activeISA, g.m, g.k, g.n, g.lda, g.ldr, g.ldc, g.bias != nil, g.res != nil, g.act)
	bad := 0
	for i := range g.cbuf {
		o := i - g.coff
		row, col := o/max(g.ldc, 1), o%max(g.ldc, 1)
		inside := o >= 0 && o < clen && col < g.n
		got := g.cbuf[i]
		if !inside {
			if got != gemmSentinel {
				t.Errorf("%s: wrote %v outside C at offset %d (row %d col %d)", name, got, o, row, col)
				bad++
			}
		} else {
			want := g.want[row*g.n+col]
			tol := gemmBound(g.k, g.a, g.lda, g.b, g.n, g.bias, g.res, g.ldr, row, col)
			if d := math.Abs(float64(got) - want); !(d <= tol) {
				t.Errorf("%s: c[%d][%d] = %v, want %v (diff %g > %g)", name, row, col, got, want, d, tol)
				bad++
			}
		}
		if bad > 5 {
			t.Fatalf("%s: too many errors", name)
		}
	}
}

func TestGemmShapes(t *testing.T) {
	ms := []int{0, 1, 2, 3, 5, 7, 13, 31, 64, 100}
	ks := []int{1, 3, 8, 16, 27, 33, 96, 160}
	ns := []int{1, 3, 8, 10, 15, 16, 17, 24, 31, 32, 33, 48, 96, 100, 1000}
	if testing.Short() {
		ms = []int{0, 1, 3, 13, 100}
		ns = []int{1, 15, 17, 33, 100}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var cases []*gemmCase
	var packs []*PackedB
	v := 0
	for _, m := range ms {
		for _, k := range ks {
			for _, n := range ns {
				// Two of the eight bias/res/act combinations per shape, in turn.
				for range 2 {
					act := ActNone
					if v&4 != 0 {
						act = ActReLU6
					}
					g := newGemmCase(r, m, k, n, v&1 != 0, v&2 != 0, act)
					v++
					cases = append(cases, g)
					packs = append(packs, PackB(k, n, g.b))
				}
			}
		}
	}
	gemmForEachISA(t, func(t *testing.T) {
		for i, g := range cases {
			g.run(t, packs[i])
		}
	})
}

// Shapes big enough for the row chunking and every tile width, and the
// network's real ones.
func TestGemmLarge(t *testing.T) {
	shapes := [][3]int{
		{300, 600, 100}, {1, 1280, 1000}, {3, 1280, 1000}, {49, 960, 160}, {130, 1280, 64},
		{200, 27, 32}, {97, 320, 1280}, {205, 144, 24}, {160, 64, 80}, {111, 400, 112},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for si, s := range shapes {
		g := newGemmCase(r, s[0], s[1], s[2], si%2 == 0, si%3 != 2, Activation(si%2))
		pb := PackB(s[1], s[2], g.b)
		gemmForEachISA(t, func(t *testing.T) { g.run(t, pb) })
	}
}

// C may be the residual's memory (in-place residual add).
func TestGemmInPlaceResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{13, 24, 24}, {9, 32, 33}, {70, 96, 160}} {
		for _, act := range []Activation{ActNone, ActReLU6} {
			g := newGemmCase(r, s[0], s[1], s[2], true, true, act)
			g.shareRes = true
			pb := PackB(s[1], s[2], g.b)
			gemmForEachISA(t, func(t *testing.T) { g.run(t, pb) })
		}
	}
}

// Splitting the rows across calls, at any offset, gives the same result as
// one call: what the callers' goroutines do.
func TestGemmRowSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	m, k, n := 53, 40, 72
	lda, ldc, ldr := k+3, n+5, n+1
	a := gemmRandSlice(r, m*lda)
	b := gemmRandSlice(r, k*n)
	bias := gemmRandSlice(r, n)
	res := gemmRandSlice(r, m*ldr)
	pb := PackB(k, n, b)
	gemmForEachISA(t, func(t *testing.T) {
		whole := make([]float32, m*ldc)
		Gemm(m, a, lda, pb, bias, ActReLU6, res, ldr, whole, ldc)
		for _, cut := range []int{1, 5, 9, 26, 52} {
			parts := make([]float32, m*ldc)
			Gemm(cut, a, lda, pb, bias, ActReLU6, res, ldr, parts, ldc)
			Gemm(m-cut, a[cut*lda:], lda, pb, bias, ActReLU6, res[cut*ldr:], ldr, parts[cut*ldc:], ldc)
			for i := range whole {
				if whole[i] != parts[i] {
					t.Fatalf("cut at row %d: c[%d] = %v, one call gave %v", cut, i, parts[i], whole[i])
				}
			}
		}
	})
}

// A zero-K product is act(bias) + res.
func TestGemmZeroK(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 17, 50} {
		g := newGemmCase(r, 5, 0, n, true, true, ActReLU6)
		pb := PackB(0, n, nil)
		gemmForEachISA(t, func(t *testing.T) { g.run(t, pb) })
	}
}

func TestGemmNoAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][3]int{{1, 1280, 1000}, {37, 96, 24}, {200, 600, 100}} {
		m, k, n := s[0], s[1], s[2]
		a := gemmRandSlice(r, m*k)
		pb := PackB(k, n, gemmRandSlice(r, k*n))
		bias := gemmRandSlice(r, n)
		res := gemmRandSlice(r, m*n)
		c := make([]float32, m*n)
		gemmForEachISA(t, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(10, func() {
				Gemm(m, a, k, pb, bias, ActReLU6, res, n, c, n)
			}); allocs != 0 {
				t.Errorf("%dx%dx%d: %v allocations per Gemm, want 0", m, k, n, allocs)
			}
		})
	}
}

func TestGemmPanics(t *testing.T) {
	pb := PackB(4, 5, make([]float32, 20))
	a := make([]float32, 3*4)
	c := make([]float32, 3*5)
	bad := map[string]func(){
		"short a":      func() { Gemm(3, a[:11], 4, pb, nil, ActNone, nil, 0, c, 5) },
		"short c":      func() { Gemm(3, a, 4, pb, nil, ActNone, nil, 0, c[:14], 5) },
		"short res":    func() { Gemm(3, a, 4, pb, nil, ActNone, c[:14], 5, make([]float32, 15), 5) },
		"short bias":   func() { Gemm(3, a, 4, pb, make([]float32, 4), ActNone, nil, 0, c, 5) },
		"small lda":    func() { Gemm(3, make([]float32, 100), 3, pb, nil, ActNone, nil, 0, c, 5) },
		"small ldc":    func() { Gemm(3, a, 4, pb, nil, ActNone, nil, 0, make([]float32, 100), 4) },
		"negative m":   func() { Gemm(-1, a, 4, pb, nil, ActNone, nil, 0, c, 5) },
		"nil B":        func() { Gemm(3, a, 4, nil, nil, ActNone, nil, 0, c, 5) },
		"bad act":      func() { Gemm(3, a, 4, pb, nil, Activation(9), nil, 0, c, 5) },
		"short pack b": func() { PackB(4, 5, make([]float32, 19)) },
	}
	for name, f := range bad {
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

// Every row count up to a few blocks, with odd and even K, for every tile
// width: the kernels pick their row blocks from m.
func TestGemmRows(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, kn := range [][2]int{{13, 40}, {12, 20}, {7, 9}, {2, 64}} {
		for m := 0; m <= 40; m++ {
			g := newGemmCase(r, m, kn[0], kn[1], m%2 == 0, m%3 == 0, Activation(m%2))
			pb := PackB(kn[0], kn[1], g.b)
			gemmForEachISA(t, func(t *testing.T) { g.run(t, pb) })
		}
	}
}

func TestPackBAligned(t *testing.T) {
	for _, kn := range [][2]int{{1, 1}, {3, 5}, {27, 32}, {7, 100}} {
		for range 20 {
			pb := PackB(kn[0], kn[1], make([]float32, kn[0]*kn[1]))
			if p := uintptr(unsafe.Pointer(&pb.data[0])); p%64 != 0 {
				t.Fatalf("PackB(%d, %d): data at %#x, not 64-byte aligned", kn[0], kn[1], p)
			}
		}
	}
}

func TestGemmCheckOverflow(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a stride whose rows overflow int")
		}
	}()
	pb := PackB(2, 2, make([]float32, 4))
	c := make([]float32, 4)
	huge := int(^uint(0)>>1)/2 + 1
	Gemm(3, make([]float32, 4), huge, pb, nil, ActNone, nil, 0, c, 2)
}
