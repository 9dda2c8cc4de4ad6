package consensus

import (
	"errors"
	"fmt"
)

// ErrBadAnswer is wrapped by Fuse when an answer does not fit the family.
var ErrBadAnswer = errors.New("consensus: bad answer")

// Answer is one variant's reply, as the paper has it: only its top-k class
// indices and their probabilities (2k numbers), never a full vector.
type Answer struct {
	Variant int       // index of the variant in the family
	Indices []int32   // class indices, len k
	Probs   []float32 // their probabilities, len k
}

// Fuse scatters each answer back into a class vector, scales it by its
// variant's weight and sums over the answers: scores[c] = sum over answers a of
// weights[a.Variant] * (a's probability for c, or 0 if c is not in a's top-k).
// scores (one entry per class) is overwritten. Any non-empty set of answers
// gives a full-class result; that is what makes losing variants cost accuracy
// and not availability.
//
// An answer naming an unknown variant or class, with mismatched lengths, or
// with a probability outside [0, 1] is rejected as a whole (ErrBadAnswer) and
// scores is left zeroed; a variant answering twice counts once.
func Fuse(answers []Answer, weights []float64, scores []float64) error {
	for i := range scores {
		scores[i] = 0
	}
	for i, a := range answers {
		if err := check(a, len(weights), len(scores)); err != nil {
			for j := range scores {
				scores[j] = 0
			}
			return fmt.Errorf("%w %d: %v", ErrBadAnswer, i, err)
		}
		dup := false
		for _, b := range answers[:i] {
			if b.Variant == a.Variant {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		w := weights[a.Variant]
		for j, c := range a.Indices {
			scores[c] += w * float64(a.Probs[j])
		}
	}
	return nil
}

func check(a Answer, variants, classes int) error {
	if a.Variant < 0 || a.Variant >= variants {
		return fmt.Errorf("variant %d, family has %d", a.Variant, variants)
	}
	if len(a.Indices) != len(a.Probs) {
		return fmt.Errorf("%d indices but %d probabilities", len(a.Indices), len(a.Probs))
	}
	for j, c := range a.Indices {
		if c < 0 || int(c) >= classes {
			return fmt.Errorf("class %d, family has %d", c, classes)
		}
		if p := a.Probs[j]; !(p >= 0 && p <= 1) {
			return fmt.Errorf("probability %v for class %d", p, c)
		}
		for _, d := range a.Indices[:j] {
			if d == c {
				return fmt.Errorf("class %d listed twice", c)
			}
		}
	}
	return nil
}

// Argmax returns the index of the largest score, the lowest index on ties, or
// -1 for an empty slice.
func Argmax(scores []float64) int {
	best := -1
	for i, v := range scores {
		if best < 0 || v > scores[best] {
			best = i
		}
	}
	return best
}
