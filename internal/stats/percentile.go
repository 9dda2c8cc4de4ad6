package stats

import (
	"cmp"
	"math"
	"slices"
)

// Rank is the 0-based index in n sorted values of their q-quantile by the
// nearest rank: ceil(q*n)-1, clamped to [0, n-1] (so q <= 0 is the
// minimum). It panics for n < 1, since an empty set has no quantile.
func Rank(n int, q float64) int {
	if n < 1 {
		panic("stats: quantile of no values")
	}
	i := int(math.Ceil(q*float64(n))) - 1
	return min(max(i, 0), n-1)
}

// Percentile returns the q-quantile (0 <= q <= 1) of sorted, which must be in
// ascending order and not empty.
func Percentile[T cmp.Ordered](sorted []T, q float64) T {
	return sorted[Rank(len(sorted), q)]
}

// Percentiles returns the qs-quantiles of xs, in any order, and the zero
// value of each for no xs. xs is not changed.
func Percentiles[T cmp.Ordered](xs []T, qs ...float64) []T {
	out := make([]T, len(qs))
	if len(xs) == 0 {
		return out
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	for i, q := range qs {
		out[i] = Percentile(sorted, q)
	}
	return out
}
