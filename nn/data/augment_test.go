package data

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBetaSample checks Beta(α, α) samples against the distribution's mean
// 1/2 and variance 1/(4(2α+1)), and that small α (mixup's usual 0.2, with
// most mass near 0 and 1) gives neither NaN nor values outside [0, 1].
func TestBetaSample(t *testing.T) {
	const n = 40000
	for _, alpha := range []float64{0.05, 0.2, 1, 4, 50} {
		src := rand.NewPCG(uint64(alpha*1000), 9)
		var sum, sum2 float64
		for i := 0; i < n; i++ {
			x := betaSample(src, alpha, alpha)
			if !(x >= 0 && x <= 1) {
				t.Fatalf("α %v: sample %v", alpha, x)
			}
			sum += x
			sum2 += x * x
		}
		mean := sum / n
		variance := sum2/n - mean*mean
		wantVar := 1 / (4 * (2*alpha + 1))
		// Standard errors are under 0.0025 for the mean; 3% relative
		// for the variance is about 4 of them.
		if math.Abs(mean-0.5) > 0.01 || math.Abs(variance-wantVar) > 0.04*wantVar {
			t.Errorf("α %v: mean %.4f (want 0.5), variance %.5f (want %.5f)", alpha, mean, variance, wantVar)
		}
	}
	// Asymmetric: Beta(2, 6) has mean 1/4.
	src := rand.NewPCG(1, 2)
	var sum float64
	for i := 0; i < n; i++ {
		sum += betaSample(src, 2, 6)
	}
	if m := sum / n; math.Abs(m-0.25) > 0.01 {
		t.Errorf("Beta(2, 6) mean %.4f, want 0.25", m)
	}
	// Huge parameters are clamped, not NaN.
	if x := betaSample(src, math.Inf(1), math.Inf(1)); math.Abs(x-0.5) > 0.01 {
		t.Errorf("Beta(∞, ∞) = %v", x)
	}
}

// TestUintN checks the bounded integers are in range and uniform (a
// chi-square test with a generous bound), including a bound that is not a
// power of two and one near 2^63 where naive modulo would be biased.
func TestUintN(t *testing.T) {
	src := rand.NewPCG(5, 6)
	for _, n := range []uint64{1, 2, 7, 49} {
		counts := make([]int, n)
		const draws = 49000
		for i := 0; i < draws; i++ {
			v := uintN(src, n)
			if v >= n {
				t.Fatalf("uintN(%d) = %d", n, v)
			}
			counts[v]++
		}
		expect := float64(draws) / float64(n)
		chi := 0.0
		for _, c := range counts {
			chi += (float64(c) - expect) * (float64(c) - expect) / expect
		}
		if df := float64(n - 1); n > 1 && chi > df+6*math.Sqrt(2*df)+10 {
			t.Errorf("uintN(%d): chi-square %.1f with %v degrees of freedom", n, chi, df)
		}
	}
	big := uint64(1)<<63 + 12345
	high := 0
	for i := 0; i < 10000; i++ {
		if uintN(src, big) >= big/2 {
			high++
		}
	}
	if high < 4700 || high > 5300 {
		t.Errorf("uintN(2^63+12345): %d of 10000 in the upper half", high)
	}
}

func TestSeedStreamsDiffer(t *testing.T) {
	var a, b rand.PCG
	seen := map[uint64]string{}
	for _, c := range []struct {
		seed     int64
		epoch, b int
		stream   uint64
	}{{1, 0, 0, streamBatch}, {1, 0, 0, streamPermutation}, {1, 1, 0, streamBatch}, {1, 0, 1, streamBatch}, {2, 0, 0, streamBatch}, {0, 1, 0, streamBatch}, {1, -1, 0, streamBatch}} {
		seedRNG(&a, c.seed, c.epoch, c.b, c.stream)
		seedRNG(&b, c.seed, c.epoch, c.b, c.stream)
		x := a.Uint64()
		if x != b.Uint64() {
			t.Fatal("same seed, different output")
		}
		if prev, ok := seen[x]; ok {
			t.Errorf("%+v gives the same first output as %s", c, prev)
		}
		seen[x] = "another"
	}
}
