package train

import (
	"math"

	"github.com/varpar/varpar/nn"
)

// bnForwardCoeffs turns the batch sums of one channel (n values) into the
// batch mean, the inverse standard deviation, and the unbiased variance that
// PyTorch puts into the running statistics.
func bnForwardCoeffs(s, q float64, n int) (mean, invstd, unbiased float64) {
	mean = s / float64(n)
	v := q/float64(n) - mean*mean
	if v < 0 {
		v = 0 // rounding; the variance is never negative
	}
	invstd = 1 / math.Sqrt(v+nn.BatchNormEps)
	unbiased = v
	if n > 1 {
		unbiased = v * float64(n) / float64(n-1)
	}
	return mean, invstd, unbiased
}

// bnBackCoeffs turns the backward sums of one channel into the parameter
// gradients and the coefficients of dz = a*g + b*z + c.
func bnBackCoeffs(sg, sgz, mean, invstd, gamma float64, n int) (dgamma, dbeta, a, b, c float64) {
	sgx := invstd * (sgz - mean*sg) // sum g*xhat
	a = gamma * invstd
	b = -a * invstd * sgx / float64(n)
	c = -a*sg/float64(n) - b*mean
	return sgx, sg, a, b, c
}
