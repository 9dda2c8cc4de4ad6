package consensus

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// withServing returns members whose Serving is what plan p gives them plus,
// with probability extra, each variant they served before (a peer keeps an
// old variant until its new holder announces it).
func withServing(rng *rand.Rand, ms []Member, p Plan, extra float64) []Member {
	out := slices.Clone(ms)
	for i := range out {
		old := out[i].Serving
		out[i].Serving = slices.Clone(p.Serving[out[i].Name])
		for _, id := range old {
			if rng.Float64() < extra && !slices.Contains(out[i].Serving, id) {
				out[i].Serving = append(out[i].Serving, id)
			}
		}
		rng.Shuffle(len(out[i].Serving), func(a, b int) {
			out[i].Serving[a], out[i].Serving[b] = out[i].Serving[b], out[i].Serving[a]
		})
	}
	return out
}

// TestAssignIsAFixedPoint: peers that serve what the plan says (and, during a
// hand-over, what they served before) must compute that same plan again, or
// the cluster would never settle. Random clusters with memory limits, pins
// and random current holdings.
func TestAssignIsAFixedPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for trial := range 3000 {
		ms, vs := randomCluster(rng, 1+rng.IntN(10), 1+rng.IntN(7), rng.IntN(2) == 0)
		for i := range ms { // what they happened to serve before
			for _, v := range vs {
				if rng.IntN(3) == 0 {
					ms[i].Serving = append(ms[i].Serving, v.ID)
				}
			}
		}
		p := Assign(ms, vs)
		checkPlan(t, ms, vs, p)
		for _, extra := range []float64{0, 0.5, 1} {
			again := withServing(rng, ms, p, extra)
			if q := Assign(again, vs); !reflect.DeepEqual(p, q) {
				t.Fatalf("trial %d (extra %v): serving the plan changes it:\nmembers %+v\nvariants %+v\nplan  %v\nagain %v",
					trial, extra, again, vs, p.Serving, q.Serving)
			}
		}
	}
}

// TestAssignChurnWithIncumbents measures the plan's moves when one member
// leaves and the survivors announce what they serve (as peers do), and the
// balance of the plan that results.
func TestAssignChurnWithIncumbents(t *testing.T) {
	for _, speeds := range []string{"random", "powers of two", "equal"} {
		rng := rand.New(rand.NewPCG(7, 8))
		type sums struct {
			added, stateless, needed, n int
			over, worst                 float64
			balanced                    int
		}
		bySize := map[int]*sums{}
		for range 3000 {
			size := 2 + rng.IntN(7)
			ms, vs := randomCluster(rng, size, 4, false)
			for i := range ms {
				ms[i].Pinned = nil
				switch speeds {
				case "powers of two":
					ms[i].Speed = math.Exp2(math.Round(math.Log2(ms[i].Speed)))
				case "equal":
					ms[i].Speed = 1
				}
			}
			before := Assign(ms, vs)
			ms = withServing(rng, ms, before, 0)
			gone := rng.IntN(size)
			left := slices.Delete(slices.Clone(ms), gone, gone+1)
			after := Assign(left, vs)
			checkPlan(t, left, vs, after)
			added, _ := churn(before, after)
			blind := slices.Clone(left) // the same, as if nobody said what it serves
			for i := range blind {
				blind[i].Serving = nil
			}
			without, _ := churn(before, Assign(blind, vs))
			needed, level := 0, max(1, (size-1)/len(vs))
			for _, hs := range before.Holders {
				h := len(hs)
				if slices.Contains(hs, ms[gone].Name) {
					h--
				}
				needed += max(0, level-h)
			}
			s := bySize[size]
			if s == nil {
				s = &sums{}
				bySize[size] = s
			}
			s.added, s.stateless, s.needed, s.n = s.added+added, s.stateless+without, s.needed+needed, s.n+1
			if len(left) < len(vs) {
				r := makespan(left, vs, after) / optimalMakespan(left, vs)
				s.over, s.worst, s.balanced = s.over+r, max(s.worst, r), s.balanced+1
			}
		}
		for size := 2; size <= 8; size++ {
			s := bySize[size]
			line := fmt.Sprintf("%s speeds, %d→%d members: leave adds %.2f (%.2f not knowing who serves what; needed %.2f)", speeds, size, size-1,
				float64(s.added)/float64(s.n), float64(s.stateless)/float64(s.n), float64(s.needed)/float64(s.n))
			if s.balanced > 0 {
				line += fmt.Sprintf("; makespan over the optimum %.3f on average, %.3f at worst", s.over/float64(s.balanced), s.worst)
			}
			t.Log(line)
			// Guards a little above what this measures (see the log).
			if size <= 4 && float64(s.added)/float64(s.n) > float64(s.needed)/float64(s.n)+guardExtra[speeds] {
				t.Errorf("%s: more than %.2f moves above the minimum", line, guardExtra[speeds])
			}
			if s.added > s.stateless {
				t.Errorf("%s: knowing who serves what moved more", line)
			}
			if s.balanced > 0 && (s.over/float64(s.balanced) > 1.1 || s.worst > 1+incumbentSlack+0.3) {
				t.Errorf("%s: balance lost", line)
			}
		}
	}
}

// guardExtra: measured (at most, over 2 to 4 members) 1.38, 1.21 and 0.50
// moves above the minimum.
var guardExtra = map[string]float64{"random": 1.5, "powers of two": 1.3, "equal": 0.6}

// makespan is when the last member finishes, each variant computed once on
// the holder that finishes it first, costliest first.
func makespan(ms []Member, vs []Variant, p Plan) float64 {
	speed := map[string]float64{}
	for _, m := range ms {
		speed[m.Name] = m.Speed
	}
	load := map[string]float64{}
	order := slices.Clone(vs)
	slices.SortFunc(order, func(x, y Variant) int { return cmp.Compare(y.Cost, x.Cost) })
	for _, v := range order {
		best, finish := "", 0.0
		for _, h := range p.Holders[v.ID] {
			if f := (load[h] + v.Cost) / speed[h]; best == "" || f < finish {
				best, finish = h, f
			}
		}
		load[best] += v.Cost
	}
	worst := 0.0
	for h, l := range load {
		worst = max(worst, l/speed[h])
	}
	return worst
}
