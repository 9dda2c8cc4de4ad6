package consensus

import (
	"errors"
	"fmt"
	"math"
)

// ErrBadTally is wrapped by Decide when a tally does not fit its family: a
// weight that is negative or not finite, an outstanding variant the family
// does not have, or no classes to score.
var ErrBadTally = errors.New("consensus: bad tally")

// Outcome says where one request stands. The zero value is not an outcome, so
// that a Decision returned with an error is never mistaken for one.
type Outcome int

const (
	// Pending: wait for more answers, or for the deadline.
	Pending Outcome = 1 + iota
	// Decided: the class is final; cancel whatever is still outstanding.
	Decided
	// NoQuorum: too few variants are left to reach the quorum; the request
	// has failed (Decision.Class is at best a guess).
	NoQuorum
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "Pending"
	case Decided:
		return "Decided"
	case NoQuorum:
		return "NoQuorum"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Tally is what the initiator knows about one request. A deadline is the
// caller's business: when it passes, the caller decides once more with
// Outstanding = nil, and gets Decided or NoQuorum.
type Tally struct {
	Weights     []float64 // fusion weight per variant of the family, finite and >= 0
	Answers     []Answer  // answers received so far, in arrival order (Fuse validates them)
	Outstanding []int     // variants asked and not yet answered (not failed, not timed out)
	Quorum      int       // minimum variants that must answer; < 1 means 1
}

// Decision is Decide's verdict on a Tally.
type Decision struct {
	Outcome Outcome
	// Class is the arg-max of the fused scores (the lowest index on ties):
	// the answer when Decided, the current leader when Pending or NoQuorum,
	// and -1 while no variant has answered.
	Class int
	// Early is set when Decided while variants were still outstanding.
	Early bool
	// Scores is the caller's buffer, holding the fused scores.
	Scores []float64
	// Answered counts the distinct variants that answered.
	Answered int
}

// Decide fuses the answers of t into scores (one entry per class, overwritten)
// and says whether the request is decided. The rules, in order:
//
//   - Answered >= Quorum and nothing outstanding: Decided.
//   - Answered >= Quorum, variants outstanding, and the leader's lead over the
//     runner-up beats the bound below: Decided, Early.
//   - Answered + outstanding < Quorum: NoQuorum, since the quorum can no
//     longer be reached.
//   - Otherwise: Pending.
//
// The early bound: an outstanding variant v can add at most Weights[v] to any
// one class (a probability is at most 1) and at least 0 to the leader, so the
// most the outstanding variants can take off the lead is rest = the sum of
// their weights. The sum cannot be tightened without knowing their answers:
// each could put probability 1 on the runner-up. The decision is early when
//
//	lead > rest + slack
//
// strictly: at lead == rest the runner-up could end level with the leader and
// win the tie with a lower index. slack, (variants+1) * 2^-50 * sum(Weights),
// covers the rounding of the fused sums (each is a sum of at most one term
// per variant, no term larger than its weight), so that a lead beating the
// bound only by rounding noise waits. With a single class there is no
// runner-up, and the first answers that reach the quorum decide. If all
// outstanding variants have weight 0, rest is 0 and any lead beyond rounding
// decides; a tie waits.
//
// Conventions, written down as etcd's quorum package does:
//
//   - Each variant counts once. A second answer from the same variant (a
//     hedged request answered twice) is ignored, as Fuse ignores it, and a
//     variant that answered is not outstanding, even if Outstanding still
//     lists it (its hedge is still out). Outstanding may repeat a variant.
//   - A variant may answer without being listed in Outstanding (an answer
//     arriving after its variant was given up on): it counts.
//   - A family with no variants never decides: NoQuorum.
//   - A Quorum larger than the family can never be met: NoQuorum, however many
//     answers arrived, rather than quietly lowering it to the family's size;
//     the configuration should be checked against the family when it is loaded.
//   - All weights 0, or answers that list no class: the scores are all 0 and
//     the decision, once the quorum is met and nothing is outstanding, is
//     class 0, as Argmax breaks ties.
//
// Invalid answers (ErrBadAnswer, from Fuse) and an invalid tally
// (ErrBadTally) are errors; the Decision then has Outcome 0 and Class -1.
// Decide takes time linear in the classes, variants and answers' lengths, and
// does not allocate for families of up to 256 variants.
func Decide(t Tally, scores []float64) (Decision, error) {
	d := Decision{Class: -1, Scores: scores}
	n := len(t.Weights)
	if len(scores) == 0 {
		return d, fmt.Errorf("%w: no classes (empty scores buffer)", ErrBadTally)
	}
	mass := 0.0
	for v, w := range t.Weights {
		if !(w >= 0 && w <= math.MaxFloat64) {
			return d, fmt.Errorf("%w: variant %d has weight %v", ErrBadTally, v, w)
		}
		mass += w
	}
	if err := Fuse(t.Answers, t.Weights, scores); err != nil {
		return d, err
	}

	var answered variantSet
	answered.reset(n)
	for _, a := range t.Answers {
		if answered.add(a.Variant) {
			d.Answered++
		}
	}
	var asked variantSet
	asked.reset(n)
	outstanding, rest := 0, 0.0
	for _, v := range t.Outstanding {
		if v < 0 || v >= n {
			return d, fmt.Errorf("%w: outstanding variant %d, family has %d", ErrBadTally, v, n)
		}
		if answered.has(v) || !asked.add(v) {
			continue
		}
		outstanding++
		rest += t.Weights[v]
	}

	if d.Answered > 0 {
		d.Class = Argmax(scores)
	}
	quorum := max(t.Quorum, 1)
	switch {
	case d.Answered >= quorum && outstanding == 0:
		d.Outcome = Decided
	case d.Answered >= quorum && lead(scores, d.Class) > rest+float64(n+1)*0x1p-50*mass:
		d.Outcome, d.Early = Decided, true
	case d.Answered+outstanding < quorum:
		d.Outcome = NoQuorum
	default:
		d.Outcome = Pending
	}
	return d, nil
}

// lead returns how far scores[leader] is ahead of every other class: +Inf if
// there is no other class.
func lead(scores []float64, leader int) float64 {
	runnerUp := math.Inf(-1)
	for c, s := range scores {
		if c != leader && s > runnerUp {
			runnerUp = s
		}
	}
	return scores[leader] - runnerUp
}
