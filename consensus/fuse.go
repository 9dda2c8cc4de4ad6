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
// scores is left zeroed; a variant answering twice counts once (its first
// answer counts; the later one is still checked).
//
// Fuse takes time linear in the classes plus the answers' total length and
// does not allocate for families of up to 256 variants: training fuses full
// softmax vectors (k = classes), so a quadratic check would cost a million
// steps per answer at ImageNet's 1000 classes.
func Fuse(answers []Answer, weights []float64, scores []float64) error {
	// First pass: check every answer, using scores as scratch. Answer i
	// stamps each class it lists with i+1, so finding its own stamp on a
	// class means the class is listed twice. Stamps of earlier answers are
	// smaller and cannot be mistaken for it, so nothing is cleared between
	// answers; float64 holds every stamp exactly.
	clear(scores)
	for i, a := range answers {
		if err := check(a, len(weights), scores, float64(i+1)); err != nil {
			clear(scores)
			return fmt.Errorf("%w %d: %v", ErrBadAnswer, i, err)
		}
	}
	// Wipe the stamps (only where they are: k may be far below classes),
	// then sum.
	for _, a := range answers {
		for _, c := range a.Indices {
			scores[c] = 0
		}
	}
	var seen variantSet
	seen.reset(len(weights))
	for _, a := range answers {
		if !seen.add(a.Variant) {
			continue
		}
		w := weights[a.Variant]
		for j, c := range a.Indices {
			scores[c] += w * float64(a.Probs[j])
		}
	}
	return nil
}

// check validates a against a family of the given number of variants and
// len(scratch) classes, marking the classes it lists in scratch with stamp.
func check(a Answer, variants int, scratch []float64, stamp float64) error {
	if a.Variant < 0 || a.Variant >= variants {
		return fmt.Errorf("variant %d, family has %d", a.Variant, variants)
	}
	if len(a.Indices) != len(a.Probs) {
		return fmt.Errorf("%d indices but %d probabilities", len(a.Indices), len(a.Probs))
	}
	for j, c := range a.Indices {
		if c < 0 || int(c) >= len(scratch) {
			return fmt.Errorf("class %d, family has %d", c, len(scratch))
		}
		if p := a.Probs[j]; !(p >= 0 && p <= 1) {
			return fmt.Errorf("probability %v for class %d", p, c)
		}
		if scratch[c] == stamp {
			return fmt.Errorf("class %d listed twice", c)
		}
		scratch[c] = stamp
	}
	return nil
}

// Top returns the indices of the k largest scores (k clamped to the number of
// scores), largest first, the lower index on ties: the fused top-k that
// serving and `varpar predict` report.
func Top(scores []float64, k int) []int {
	k = max(0, min(k, len(scores)))
	out := make([]int, 0, k)
	if k == 0 {
		return out
	}
	// One pass, keeping out sorted: a later index enters only by a strictly
	// larger score, so ties keep the lower index. O(n·k), not O(n·k²).
	for i, v := range scores {
		if len(out) == k && !(v > scores[out[k-1]]) {
			continue
		}
		j := len(out)
		for j > 0 && v > scores[out[j-1]] {
			j--
		}
		if len(out) < k {
			out = append(out, 0)
		}
		copy(out[j+1:], out[j:len(out)-1])
		out[j] = i
	}
	return out
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

// variantSet is a set of variant indices in [0, n). It lives in its owner's
// stack frame for families of up to 256 variants (real families have a
// handful) and allocates only beyond that.
type variantSet struct {
	small [4]uint64
	big   []uint64
}

func (s *variantSet) reset(n int) {
	s.small = [4]uint64{}
	if n > 64*len(s.small) {
		s.big = make([]uint64, (n+63)/64)
	} else {
		s.big = nil
	}
}

// add inserts v, which must be in [0, n), and reports whether it was new.
func (s *variantSet) add(v int) bool {
	words := s.small[:]
	if s.big != nil {
		words = s.big
	}
	word, bit := uint(v)/64, uint64(1)<<(uint(v)%64)
	if words[word]&bit != 0 {
		return false
	}
	words[word] |= bit
	return true
}

// has reports whether v, which must be in [0, n), is in the set.
func (s *variantSet) has(v int) bool {
	words := s.small[:]
	if s.big != nil {
		words = s.big
	}
	return words[uint(v)/64]&(uint64(1)<<(uint(v)%64)) != 0
}
