// Package stats holds the one percentile rule every varpar command prints
// with (bench, loadgen, demo), so that a p90 in one report means what it
// means in another.
//
// The rule is the nearest rank: the q-quantile of n values is the smallest
// value that at least q of them do not exceed, the value of rank ceil(q*n)
// (1-based) in sorted order. It is always one of the values (no
// interpolation), the 0.5-quantile of an even count is the lower middle,
// and the 1-quantile is the maximum.
package stats
