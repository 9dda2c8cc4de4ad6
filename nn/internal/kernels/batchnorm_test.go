package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bnCase is random input for the batch-norm kernels: rows of c channels whose
// z*scale+shift spreads over (-3, 9), so that ReLU6 clamps at both ends,
// never within 1e-4 of a kink (where an FMA and a multiply-add may round to
// different sides), except for exact kinks: every 7th value sits exactly on 0
// or 6 (scale 1 and shift 0 on channel 0).
type bnCase struct {
	c                      int
	z, dy, res             []float32
	scale, shift, a, b, cc []float32
}

func newBNCase(rng *rand.Rand, rows, c int) *bnCase {
	k := &bnCase{c: c}
	n := rows * c
	k.z, k.dy, k.res = make([]float32, n), make([]float32, n), make([]float32, n)
	for _, s := range []*[]float32{&k.scale, &k.shift, &k.a, &k.b, &k.cc} {
		*s = make([]float32, c)
		for j := range *s {
			(*s)[j] = float32(rng.NormFloat64())
		}
	}
	for j := range k.scale {
		k.scale[j] = float32(0.5 + rng.Float64())
	}
	k.scale[0], k.shift[0] = 1, 0
	for i := range k.z {
		j := i % c
		var pre float32
		for {
			pre = float32(-3 + 12*rng.Float64())
			if math.Abs(float64(pre)) > 1e-3 && math.Abs(float64(pre-6)) > 1e-3 {
				break
			}
		}
		if j == 0 && i%7 == 0 {
			pre = float32(6 * (i / 7 % 2))
		}
		k.z[i] = (pre - k.shift[j]) / k.scale[j]
		k.dy[i] = float32(rng.NormFloat64())
		k.res[i] = float32(rng.NormFloat64())
	}
	return k
}

func bnClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) || math.IsNaN(a) && math.IsNaN(b)
}

// TestBNKernels compares the dispatched kernels of every instruction-set
// level (assembly where there is some) with the pure-Go loops on odd channel
// counts and row counts.
func TestBNKernels(t *testing.T) {
	for _, i := range Available() {
		t.Run(i.String(), func(t *testing.T) {
			defer Force(i)()
			testBNKernels(t)
		})
	}
}

func testBNKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, c := range []int{1, 7, 8, 15, 16, 17, 24, 40, 144, 150} {
		for _, rows := range []int{1, 2, 3, 17} {
			k := newBNCase(rng, rows, c)
			name := fmt.Sprintf("c=%d rows=%d", c, rows)
			// Sums start non-zero: the kernels add to them.
			s1, q1 := make([]float64, c+3), make([]float64, c+3)
			for j := range s1 {
				s1[j], q1[j] = float64(j), -float64(j)
			}
			s2, q2 := append([]float64(nil), s1...), append([]float64(nil), q1...)
			BNStats(k.z, c, s1[:c], q1[:c])
			bnStatsGeneric(k.z, c, s2[:c], q2[:c])
			for j := range s1 {
				if !bnClose(s1[j], s2[j], 1e-12) || !bnClose(q1[j], q2[j], 1e-12) {
					t.Fatalf("%s: BNStats channel %d: %v %v, want %v %v", name, j, s1[j], q1[j], s2[j], q2[j])
				}
			}
			for _, relu := range []bool{false, true} {
				for _, res := range [][]float32{nil, k.res} {
					if res != nil && relu {
						continue // a residual projection has no activation
					}
					y1, y2 := make([]float32, len(k.z)+5), make([]float32, len(k.z)+5)
					BNApply(k.z, y1[:len(k.z)], c, k.scale, k.shift, relu, res)
					bnApplyGeneric(k.z, y2, c, k.scale, k.shift, relu, res)
					for i := range y1 {
						if !bnClose(float64(y1[i]), float64(y2[i]), 1e-5) {
							t.Fatalf("%s relu=%v res=%v: BNApply[%d] = %v, want %v", name, relu, res != nil, i, y1[i], y2[i])
						}
					}
				}
				g1, g2 := append([]float64(nil), s1...), append([]float64(nil), s1...)
				h1, h2 := append([]float64(nil), q1...), append([]float64(nil), q1...)
				BNBackReduce(k.dy, k.z, c, k.scale, k.shift, relu, g1[:c], h1[:c])
				bnBackReduceGeneric(k.dy, k.z, c, k.scale, k.shift, relu, g2[:c], h2[:c])
				for j := range g1 {
					if !bnClose(g1[j], g2[j], 1e-9) || !bnClose(h1[j], h2[j], 1e-9) {
						t.Fatalf("%s relu=%v: BNBackReduce channel %d: %v %v, want %v %v", name, relu, j, g1[j], h1[j], g2[j], h2[j])
					}
				}
				d1, d2 := make([]float32, len(k.z)+5), make([]float32, len(k.z)+5)
				BNBackApply(k.dy, k.z, d1[:len(k.z)], c, k.scale, k.shift, relu, k.a, k.b, k.cc)
				bnBackApplyGeneric(k.dy, k.z, d2, c, k.scale, k.shift, relu, k.a, k.b, k.cc)
				for i := range d1 {
					if !bnClose(float64(d1[i]), float64(d2[i]), 1e-5) {
						t.Fatalf("%s relu=%v: BNBackApply[%d] = %v, want %v", name, relu, i, d1[i], d2[i])
					}
				}
				// In place.
				d3 := append([]float32(nil), k.dy...)
				BNBackApply(d3, k.z, d3, c, k.scale, k.shift, relu, k.a, k.b, k.cc)
				for i := range d3 {
					if d3[i] != d1[i] {
						t.Fatalf("%s relu=%v: BNBackApply in place [%d] = %v, want %v", name, relu, i, d3[i], d1[i])
					}
				}
			}
		}
	}
}

// TestBNKernelsReLU6Edges checks the ReLU6 mask and clamp at and around
// the kinks, and NaN, at every level (8 channels: the AVX2 kernels too).
func TestBNKernelsReLU6Edges(t *testing.T) {
	for _, i := range Available() {
		t.Run(i.String(), func(t *testing.T) {
			defer Force(i)()
			testBNKernelsReLU6Edges(t)
		})
	}
}

func testBNKernelsReLU6Edges(t *testing.T) {
	// One row, one value per channel, scale 1 and shift 0.
	nan := float32(math.NaN())
	z := []float32{-1, 0, 1e-30, 3, 6, 6.0000005, 7, nan}
	wantY := []float32{0, 0, 1e-30, 3, 6, 6, 6, nan}
	wantG := []float64{0, 0, 1, 1, 0, 0, 0, 0} // dy = 1: passes where 0 < z < 6
	c := len(z)
	one, zero := make([]float32, c), make([]float32, c)
	fillFloats(one, 1)
	y := make([]float32, c)
	BNApply(z, y, c, one, zero, true, nil)
	for i := range y {
		if y[i] != wantY[i] && !(math.IsNaN(float64(y[i])) && math.IsNaN(float64(wantY[i]))) {
			t.Errorf("ReLU6(%v) = %v, want %v", z[i], y[i], wantY[i])
		}
	}
	sg, sgz := make([]float64, c), make([]float64, c)
	BNBackReduce(one, z, c, one, zero, true, sg, sgz)
	dz := make([]float32, c)
	BNBackApply(one, z, dz, c, one, zero, true, one, zero, zero)
	for i := range z {
		if sg[i] != wantG[i] {
			t.Errorf("mask at %v: sum g = %v, want %v", z[i], sg[i], wantG[i])
		}
		if math.IsNaN(float64(z[i])) {
			if !math.IsNaN(float64(dz[i])) {
				t.Errorf("dz at NaN = %v, want NaN", dz[i])
			}
			continue
		}
		if float64(dz[i]) != wantG[i] {
			t.Errorf("mask at %v: dz = %v, want %v", z[i], dz[i], wantG[i])
		}
	}
}

// TestNTCopy checks NTCopy at every level over alignments and lengths around
// its 64-float blocks, and that it writes nothing outside dst.
func TestNTCopy(t *testing.T) {
	for _, i := range Available() {
		t.Run(i.String(), func(t *testing.T) {
			defer Force(i)()
			src := make([]float32, 700)
			for j := range src {
				src[j] = float32(j + 1)
			}
			buf := make([]float32, 800)
			for off := 0; off < 20; off++ {
				for _, n := range []int{0, 1, 63, 64, 127, 128, 129, 191, 256, 300, 640, 700} {
					fillFloats(buf, -1)
					NTCopy(buf[off:off+n], src[:n])
					for j, v := range buf {
						want := float32(-1)
						if j >= off && j < off+n {
							want = src[j-off]
						}
						if v != want {
							t.Fatalf("offset %d length %d: buf[%d] = %v, want %v", off, n, j, v, want)
						}
					}
				}
			}
		})
	}
}

func fillFloats(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}
