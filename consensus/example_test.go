package consensus_test

import (
	"fmt"

	"github.com/varpar/varpar/consensus"
)

// A family of three variants; two have answered, and the third cannot catch
// up: the request is decided without waiting for it.
func ExampleDecide() {
	t := consensus.Tally{
		Weights: []float64{1.0, 0.8, 0.5},
		Answers: []consensus.Answer{
			{Variant: 0, Indices: []int32{7, 2}, Probs: []float32{0.9, 0.05}},
			{Variant: 1, Indices: []int32{7, 1}, Probs: []float32{0.7, 0.2}},
		},
		Outstanding: []int{2},
		Quorum:      2,
	}
	scores := make([]float64, 10)
	d, err := consensus.Decide(t, scores)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Outcome, d.Class, d.Early, d.Answered)
	// Output: Decided 7 true 2
}

// Three peers, four variants: every peer computes this same plan. The
// desktop takes the costliest variant and a cheap one, least loaded first by
// cost over speed (78, 80 and 60 per unit of speed).
func ExampleAssign() {
	plan := consensus.Assign(
		[]consensus.Member{
			{Name: "desktop", Speed: 4},
			{Name: "pi4", Speed: 1},
			{Name: "pi3", Speed: 0.5, Memory: 12 << 20},
		},
		[]consensus.Variant{
			{ID: "r96-w0.35", Memory: 7 << 20, Cost: 12},
			{ID: "r128-w0.5", Memory: 8 << 20, Cost: 30},
			{ID: "r160-w0.75", Memory: 11 << 20, Cost: 80},
			{ID: "r224-w1.0", Memory: 14 << 20, Cost: 300},
		},
	)
	for _, name := range []string{"desktop", "pi4", "pi3"} {
		fmt.Println(name, plan.Serving[name])
	}
	fmt.Println("unserved:", plan.Unserved)
	// Output:
	// desktop [r224-w1.0 r96-w0.35]
	// pi4 [r160-w0.75]
	// pi3 [r128-w0.5]
	// unserved: []
}
