package consensus

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// ans is a one-class answer: variant v gives class c probability p.
func ans(v int, c int32, p float32) Answer {
	return Answer{Variant: v, Indices: []int32{c}, Probs: []float32{p}}
}

func TestDecide(t *testing.T) {
	one := []float64{1, 1, 1}
	tests := []struct {
		name    string
		tally   Tally
		classes int
		want    Decision // Scores not compared
		wantErr error
	}{
		// Family sizes.
		{"no variants", Tally{Quorum: 1}, 3,
			Decision{Outcome: NoQuorum, Class: -1}, nil},
		{"no variants, quorum 0", Tally{}, 3,
			Decision{Outcome: NoQuorum, Class: -1}, nil},
		{"single variant answers", Tally{Weights: []float64{1}, Answers: []Answer{ans(0, 2, 0.6)}}, 3,
			Decision{Outcome: Decided, Class: 2, Answered: 1}, nil},
		{"single variant outstanding", Tally{Weights: []float64{1}, Outstanding: []int{0}}, 3,
			Decision{Outcome: Pending, Class: -1}, nil},
		{"single variant failed", Tally{Weights: []float64{1}}, 3,
			Decision{Outcome: NoQuorum, Class: -1}, nil},

		// Quorum 0, 1, N, N+1.
		{"quorum 0 means 1", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1)}}, 3,
			Decision{Outcome: Decided, Class: 1, Answered: 1}, nil},
		{"quorum -5 means 1", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1)}, Quorum: -5}, 3,
			Decision{Outcome: Decided, Class: 1, Answered: 1}, nil},
		{"quorum 1, lead too small to stop early", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1)}, Outstanding: []int{1, 2}, Quorum: 1}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 1}, nil},
		{"quorum N, all answered", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1), ans(2, 0, 0.5), ans(1, 1, 0.25)}, Quorum: 3}, 3,
			Decision{Outcome: Decided, Class: 1, Answered: 3}, nil},
		{"quorum N, one out: wait however large the lead", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1), ans(1, 1, 1)}, Outstanding: []int{2}, Quorum: 3}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 2}, nil},
		{"quorum N, one failed", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1), ans(1, 1, 1)}, Quorum: 3}, 3,
			Decision{Outcome: NoQuorum, Class: 1, Answered: 2}, nil},
		{"quorum N+1 never met, all answered", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1), ans(1, 1, 1), ans(2, 1, 1)}, Quorum: 4}, 3,
			Decision{Outcome: NoQuorum, Class: 1, Answered: 3}, nil},
		{"quorum N+1 never met, all outstanding", Tally{Weights: one, Outstanding: []int{0, 1, 2}, Quorum: 4}, 3,
			Decision{Outcome: NoQuorum, Class: -1}, nil},

		// Nothing answered yet.
		{"all outstanding", Tally{Weights: one, Outstanding: []int{0, 1, 2}, Quorum: 2}, 3,
			Decision{Outcome: Pending, Class: -1}, nil},
		{"all outstanding, quorum out of reach", Tally{Weights: one, Outstanding: []int{0}, Quorum: 2}, 3,
			Decision{Outcome: NoQuorum, Class: -1}, nil},
		{"quorum still reachable", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1)}, Outstanding: []int{2}, Quorum: 2}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 1}, nil},

		// Ties.
		{"tie goes to the lower class", Tally{Weights: one, Answers: []Answer{ans(0, 2, 0.5), ans(1, 1, 0.5)}}, 3,
			Decision{Outcome: Decided, Class: 1, Answered: 2}, nil},
		{"tie with a zero-weight variant out waits", Tally{Weights: []float64{1, 1, 0}, Answers: []Answer{ans(0, 2, 0.5), ans(1, 1, 0.5)}, Outstanding: []int{2}}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 2}, nil},
		{"lead with only zero-weight variants out decides", Tally{Weights: []float64{1, 1, 0}, Answers: []Answer{ans(0, 2, 0.5), ans(1, 1, 0.25)}, Outstanding: []int{2}}, 3,
			Decision{Outcome: Decided, Class: 2, Early: true, Answered: 2}, nil},
		{"all weights zero: class 0", Tally{Weights: []float64{0, 0}, Answers: []Answer{ans(0, 2, 1), ans(1, 1, 1)}}, 3,
			Decision{Outcome: Decided, Class: 0, Answered: 2}, nil},
		{"empty answer: class 0", Tally{Weights: one, Answers: []Answer{{Variant: 1}}}, 3,
			Decision{Outcome: Decided, Class: 0, Answered: 1}, nil},

		// The early bound: lead > sum of outstanding weights, strictly.
		{"lead above the bound", Tally{Weights: []float64{2, 1}, Answers: []Answer{ans(0, 1, 0.75)}, Outstanding: []int{1}}, 3,
			Decision{Outcome: Decided, Class: 1, Early: true, Answered: 1}, nil},
		{"lead equal to the bound is not early", Tally{Weights: []float64{2, 1}, Answers: []Answer{ans(0, 1, 0.5)}, Outstanding: []int{1}}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 1}, nil},
		{"lead below the bound", Tally{Weights: []float64{2, 1}, Answers: []Answer{ans(0, 1, 0.25)}, Outstanding: []int{1}}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 1}, nil},
		{"bound sums every outstanding weight", Tally{Weights: []float64{2.5, 1, 1}, Answers: []Answer{ans(0, 0, 0.75)}, Outstanding: []int{1, 2}}, 3,
			Decision{Outcome: Pending, Class: 0, Answered: 1}, nil},
		{"lead over the runner-up, not over zero", Tally{Weights: []float64{1, 1, 0.5}, Answers: []Answer{
			{Variant: 0, Indices: []int32{0, 1}, Probs: []float32{0.9, 0.1}},
			{Variant: 1, Indices: []int32{0, 1}, Probs: []float32{0.6, 0.4}}}, Outstanding: []int{2}}, 3,
			Decision{Outcome: Decided, Class: 0, Early: true, Answered: 2}, nil},
		{"runner-up lead not enough", Tally{Weights: []float64{1, 1, 1}, Answers: []Answer{
			{Variant: 0, Indices: []int32{0, 1}, Probs: []float32{0.9, 0.1}},
			{Variant: 1, Indices: []int32{0, 1}, Probs: []float32{0.6, 0.4}}}, Outstanding: []int{2}}, 3,
			Decision{Outcome: Pending, Class: 0, Answered: 2}, nil},
		{"one class: no runner-up, the quorum decides", Tally{Weights: one, Answers: []Answer{ans(0, 0, 0.1)}, Outstanding: []int{1, 2}}, 1,
			Decision{Outcome: Decided, Class: 0, Early: true, Answered: 1}, nil},
		{"a lead beating the bound only by rounding waits", Tally{Weights: []float64{0.1, 0.2, 0.3}, Answers: []Answer{ans(0, 0, 1), ans(1, 0, 1)}, Outstanding: []int{2}}, 3,
			Decision{Outcome: Pending, Class: 0, Answered: 2}, nil},

		// Each variant counts once.
		{"hedged duplicate counts once", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1), ans(0, 1, 1)}, Outstanding: []int{1, 2}, Quorum: 2}, 3,
			Decision{Outcome: Pending, Class: 1, Answered: 1}, nil},
		{"hedged duplicate: the first answer counts", Tally{Weights: one, Answers: []Answer{ans(0, 1, 1), ans(0, 2, 1)}}, 3,
			Decision{Outcome: Decided, Class: 1, Answered: 1}, nil},
		{"answered variant is not outstanding", Tally{Weights: one, Answers: []Answer{ans(0, 1, 0.1)}, Outstanding: []int{0}}, 3,
			Decision{Outcome: Decided, Class: 1, Answered: 1}, nil},
		{"outstanding listed twice counts once", Tally{Weights: []float64{1.5, 1}, Answers: []Answer{ans(0, 0, 1)}, Outstanding: []int{1, 1}}, 3,
			Decision{Outcome: Decided, Class: 0, Early: true, Answered: 1}, nil},
		{"outstanding listed twice does not reach the quorum", Tally{Weights: one, Answers: []Answer{ans(0, 0, 1)}, Outstanding: []int{1, 1}, Quorum: 3}, 3,
			Decision{Outcome: NoQuorum, Class: 0, Answered: 1}, nil},
		{"late answer of a variant given up on counts", Tally{Weights: one, Answers: []Answer{ans(0, 0, 1), ans(2, 0, 1)}, Outstanding: []int{1}, Quorum: 2}, 3,
			Decision{Outcome: Decided, Class: 0, Early: true, Answered: 2}, nil},

		// Errors.
		{"bad answer", Tally{Weights: one, Answers: []Answer{ans(0, 3, 1)}}, 3,
			Decision{Class: -1}, ErrBadAnswer},
		{"unknown variant answers", Tally{Weights: one, Answers: []Answer{ans(3, 0, 1)}}, 3,
			Decision{Class: -1}, ErrBadAnswer},
		{"unknown variant outstanding", Tally{Weights: one, Outstanding: []int{3}}, 3,
			Decision{Class: -1}, ErrBadTally},
		{"negative outstanding", Tally{Weights: one, Outstanding: []int{-1}}, 3,
			Decision{Class: -1}, ErrBadTally},
		{"negative weight", Tally{Weights: []float64{1, -1}}, 3,
			Decision{Class: -1}, ErrBadTally},
		{"NaN weight", Tally{Weights: []float64{math.NaN()}}, 3,
			Decision{Class: -1}, ErrBadTally},
		{"infinite weight", Tally{Weights: []float64{math.Inf(1)}}, 3,
			Decision{Class: -1}, ErrBadTally},
		{"no classes", Tally{Weights: one}, 0,
			Decision{Class: -1}, ErrBadTally},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scores := make([]float64, tt.classes)
			for i := range scores {
				scores[i] = 7 // stale contents must not matter
			}
			got, err := Decide(tt.tally, scores)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if len(got.Scores) != tt.classes || (tt.classes > 0 && &got.Scores[0] != &scores[0]) {
				t.Errorf("got Scores %v, want the caller's buffer", got.Scores)
			}
			got.Scores = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecideScores(t *testing.T) {
	scores := make([]float64, 4)
	d, err := Decide(Tally{Weights: []float64{1, 2}, Answers: []Answer{
		{Variant: 1, Indices: []int32{3, 0}, Probs: []float32{0.5, 0.25}},
		{Variant: 0, Indices: []int32{0}, Probs: []float32{0.75}},
	}}, scores)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1.25, 0, 0, 1}; !slices.Equal(d.Scores, want) {
		t.Errorf("got scores %v, want %v", d.Scores, want)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Pending: "Pending", Decided: "Decided", NoQuorum: "NoQuorum", 0: "Outcome(0)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	tally := Tally{
		Weights:     []float64{1, 0.8, 0.6, 0.4},
		Answers:     []Answer{ans(0, 3, 0.9), ans(2, 3, 0.5), ans(0, 3, 0.9)},
		Outstanding: []int{1, 3},
		Quorum:      2,
	}
	scores := make([]float64, 1000)
	if n := testing.AllocsPerRun(100, func() { _, _ = Decide(tally, scores) }); n != 0 {
		t.Errorf("Decide allocated %v times per run, want 0", n)
	}
}

// decider is Decide's signature, so that the property below can be checked
// against deliberately broken deciders too.
type decider func(Tally, []float64) (Decision, error)

// scenario is one request: the family, the quorum, and what happens to each
// variant, in the order it happens.
type scenario struct {
	weights []float64
	classes int
	quorum  int
	events  []event
}

type event struct {
	variant int
	fails   bool   // the variant fails or times out: it is no longer outstanding
	answer  Answer // otherwise its answer (maybe a hedge's second one)
}

func randomScenario(rng *rand.Rand) scenario {
	s := scenario{classes: 1 + rng.IntN(12)}
	n := 1 + rng.IntN(8)
	s.quorum = rng.IntN(n + 2)
	integral := rng.IntN(3) == 0 // small integers make exact ties and exact bounds
	for range n {
		switch w := rng.Float64() * 3; {
		case rng.IntN(8) == 0:
			s.weights = append(s.weights, 0)
		case integral:
			s.weights = append(s.weights, math.Floor(w+1))
		default:
			s.weights = append(s.weights, w)
		}
	}
	// A dark horse: a class that some answers push hard, so that the order
	// of arrival matters.
	horse := int32(rng.IntN(s.classes))
	answer := func(v int) Answer {
		k := 1 + rng.IntN(s.classes)
		idx := make([]int32, 0, k)
		for _, c := range rng.Perm(s.classes)[:k] {
			idx = append(idx, int32(c))
		}
		probs := make([]float32, k)
		switch rng.IntN(4) {
		case 0: // all on the dark horse
			idx, probs = []int32{horse}, []float32{1}
		case 1: // quarters: exact sums, exact ties
			left := 4
			for j := range probs {
				q := rng.IntN(left + 1)
				probs[j] = float32(q) / 4
				left -= q
			}
		default: // a softmax-like spread
			sum := float32(0)
			for j := range probs {
				probs[j] = rng.Float32() * rng.Float32()
				sum += probs[j]
			}
			for j := range probs {
				probs[j] /= sum + rng.Float32()*0.2
			}
		}
		return Answer{Variant: v, Indices: idx, Probs: probs}
	}
	for v := range n {
		if rng.IntN(5) == 0 {
			s.events = append(s.events, event{variant: v, fails: true})
			continue
		}
		s.events = append(s.events, event{variant: v, answer: answer(v)})
		if rng.IntN(8) == 0 { // a hedge answers too, maybe differently
			s.events = append(s.events, event{variant: v, answer: answer(v)})
		}
	}
	rng.Shuffle(len(s.events), func(i, j int) { s.events[i], s.events[j] = s.events[j], s.events[i] })
	return s
}

// replay feeds s to decide one event at a time and returns an error if any
// early decision differs from the decision once every answer is in, or if the
// outcomes contradict each other along the way; early says whether any
// decision was early.
func replay(s scenario, decide decider) (early bool, err error) {
	scores := make([]float64, s.classes)
	outstanding := make([]int, len(s.weights))
	for v := range outstanding {
		outstanding[v] = v // everything is asked at once
	}
	var answers []Answer
	type decision struct{ step, class int }
	var earlies []decision
	noQuorum := -1
	for step, e := range s.events {
		if e.fails {
			outstanding = slices.DeleteFunc(outstanding, func(v int) bool { return v == e.variant })
		} else {
			answers = append(answers, e.answer)
			// The caller may or may not still list it; Decide must not care.
			if step%2 == 0 {
				outstanding = slices.DeleteFunc(outstanding, func(v int) bool { return v == e.variant })
			}
		}
		d, err := decide(Tally{Weights: s.weights, Answers: answers, Outstanding: outstanding, Quorum: s.quorum}, scores)
		if err != nil {
			return false, fmt.Errorf("step %d: %v", step, err)
		}
		if d.Outcome == Decided && d.Early {
			earlies = append(earlies, decision{step, d.Class})
		}
		if d.Outcome == NoQuorum && noQuorum < 0 {
			noQuorum = step
		}
		if d.Outcome != NoQuorum && noQuorum >= 0 {
			return false, fmt.Errorf("step %d: %v after NoQuorum at step %d", step, d.Outcome, noQuorum)
		}
	}
	final, err := decide(Tally{Weights: s.weights, Answers: answers, Quorum: s.quorum}, scores)
	if err != nil {
		return false, fmt.Errorf("final: %v", err)
	}
	for _, e := range earlies {
		if final.Outcome != Decided || final.Class != e.class {
			return true, fmt.Errorf("step %d decided class %d early, but with every answer in: %v class %d (scores %v)",
				e.step, e.class, final.Outcome, final.Class, final.Scores)
		}
	}
	return len(earlies) > 0, nil
}

// checkEarlyIsFinal runs replay over random scenarios and returns how many
// broke the property, how many decided early at all, and the first failure.
func checkEarlyIsFinal(decide decider, seed uint64, trials int) (broken, earlies int, first error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for range trials {
		s := randomScenario(rng)
		early, err := replay(s, decide)
		if early {
			earlies++
		}
		if err != nil {
			broken++
			if first == nil {
				first = fmt.Errorf("%v\nscenario: weights %v, %d classes, quorum %d, events %+v", err, s.weights, s.classes, s.quorum, s.events)
			}
		}
	}
	return broken, earlies, first
}

// TestDecideEarlyIsFinal is the property behind early decisions: whatever the
// weights, the answers and their order of arrival, a class decided early is
// the class decided once every answer is in.
func TestDecideEarlyIsFinal(t *testing.T) {
	trials := 20000
	if testing.Short() {
		trials = 2000
	}
	broken, earlies, first := checkEarlyIsFinal(Decide, 1, trials)
	if broken > 0 {
		t.Fatalf("%d of %d scenarios broke the property; first: %v", broken, trials, first)
	}
	// A property that never fires proves nothing.
	if earlies < trials/10 {
		t.Errorf("only %d of %d scenarios decided early", earlies, trials)
	}
	t.Logf("%d scenarios, %d decided early", trials, earlies)
}

// TestDecideEarlyIsFinalCanFail checks that the property test has teeth: the
// same scenarios catch deciders whose bound is slightly too loose.
func TestDecideEarlyIsFinalCanFail(t *testing.T) {
	broken := map[string]decider{
		// Believes the outstanding variants weigh less than they do.
		"bound 0.9x": func(tally Tally, scores []float64) (Decision, error) {
			w := slices.Clone(tally.Weights)
			for _, v := range tally.Outstanding {
				w[v] *= 0.9
			}
			tally.Weights = w
			return Decide(tally, scores)
		},
		// Forgets one outstanding variant.
		"one forgotten": func(tally Tally, scores []float64) (Decision, error) {
			if len(tally.Outstanding) > 0 {
				tally.Outstanding = tally.Outstanding[1:]
			}
			return Decide(tally, scores)
		},
		// Decides early at equality with the bound.
		"equality is early": func(tally Tally, scores []float64) (Decision, error) {
			d, err := Decide(tally, scores)
			if err != nil || d.Outcome != Pending || d.Answered < max(tally.Quorum, 1) || len(scores) < 2 {
				return d, err
			}
			rest := 0.0
			for _, v := range tally.Outstanding {
				if !slices.ContainsFunc(tally.Answers, func(a Answer) bool { return a.Variant == v }) {
					rest += tally.Weights[v]
				}
			}
			if lead(scores, d.Class) >= rest {
				d.Outcome, d.Early = Decided, true
			}
			return d, nil
		},
	}
	for name, decide := range broken {
		n, _, _ := checkEarlyIsFinal(decide, 1, 20000)
		if n == 0 {
			t.Errorf("%s: the property test found nothing wrong", name)
		}
		t.Logf("%s: caught in %d scenarios", name, n)
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, classes := range []int{10, 1000} {
		b.Run(fmt.Sprintf("classes=%d", classes), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			tally := Tally{Weights: []float64{1, 0.9, 0.8, 0.7, 0.6}, Outstanding: []int{4}, Quorum: 3}
			for v := range 4 {
				k := classes / 2
				a := Answer{Variant: v, Indices: make([]int32, k), Probs: make([]float32, k)}
				for j, c := range rng.Perm(classes)[:k] {
					a.Indices[j], a.Probs[j] = int32(c), rng.Float32()/float32(k)
				}
				tally.Answers = append(tally.Answers, a)
			}
			scores := make([]float64, classes)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decide(tally, scores); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
