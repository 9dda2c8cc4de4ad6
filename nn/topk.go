package nn

import "math"

// Softmax writes softmax(logits) into probs (same length), computed stably.
func Softmax(logits, probs []float32) {
	if len(logits) == 0 {
		return
	}
	mx := logits[0]
	for _, v := range logits[1:] {
		if v > mx {
			mx = v
		}
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - mx))
		probs[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range probs[:len(logits)] {
		probs[i] *= inv
	}
}

// TopK writes the indices of the k largest scores, largest first, into idx
// and their scores into val (both of length k, k <= len(scores)). Ties go to the
// lower index, so the result is deterministic. It does not allocate.
func TopK(scores []float32, idx []int32, val []float32) {
	k := len(idx)
	if k > len(scores) || len(val) < k {
		panic("nn: TopK: k larger than the number of scores")
	}
	n := 0 // entries filled, kept sorted descending
	for i, v := range scores {
		if n == k && !(v > val[n-1]) {
			continue
		}
		j := n
		if n < k {
			n++
		} else {
			j = k - 1
		}
		// Shift smaller entries down; equal ones stay ahead (lower index wins).
		for j > 0 && v > val[j-1] {
			if j < k {
				val[j], idx[j] = val[j-1], idx[j-1]
			}
			j--
		}
		val[j], idx[j] = v, int32(i)
	}
}
