package data

// growFloats and growInts reuse a buffer when it is large enough, so that a
// Batcher allocates only on its first batches.

func growFloats(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func growInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}
