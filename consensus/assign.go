package consensus

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Member is one peer as the membership view shows it.
type Member struct {
	Name   string   // unique node name
	Speed  float64  // measured relative speed (> 0; 0, negative or not finite means 1)
	Memory int64    // bytes this peer may spend on model weights (0 or negative: unlimited)
	Pinned []string // variant IDs the peer's config pins (it serves these regardless)
	// Serving lists the variants the peer serves now (as it announces them).
	// With fewer members than variants, a variant stays with a member
	// serving it when that member finishes it nearly as early as the best
	// choice would (see Assign), so that churn moves few variants.
	Serving []string
	// Holding lists the variants whose weights the member holds and so can
	// serve at once, without fetching them first (a peer serving a variant
	// holds it too, and should list it here as well). It adds bridges to
	// the plan (see Assign) and changes nothing else.
	Holding []string
}

// Variant is one member of the family, as Assign needs to know it.
type Variant struct {
	ID     string
	Memory int64   // bytes its weights need in memory (negative counts as 0)
	Cost   float64 // relative compute cost (e.g. MACs), > 0 (0, negative or not finite means 1)
}

// Plan says which peer serves which variant.
type Plan struct {
	Serving  map[string][]string // member name → variant IDs it serves (sorted); every member has an entry
	Holders  map[string][]string // variant ID → member names serving it (sorted); every variant has an entry
	Unserved []string            // variants no member holds (no member has room), sorted; nil if none
}

// Assign computes which member serves which variant from the membership view
// alone, so that every peer holding the same view computes the same plan
// without a coordinator. The plan depends only on the set of members (with
// what they say they serve and hold) and variants, not on their order, and is the same on every architecture: it uses
// integer hashing and IEEE-754 arithmetic only, with no math library calls and
// no fused multiply-adds (see negLog).
//
// Every (member, variant) pair has a weighted rendezvous score,
// Speed * Cost / -ln(u), u uniform in (0, 1) from a hash of the pair (see
// rendezvous). For one variant the first-ranked member is a member chosen with
// probability proportional to its speed; across variants, costlier variants
// score higher and so choose first, which leads the fast members to the
// costly variants. A pair's score does not depend on the other members, and
// the passes below take pairs in score order, so a member joining or leaving
// moves few variants: it changes the choices that involved it and the few
// that cascade from those. The passes:
//
//  1. Pins. Each member serves the variants its configuration pins, whether
//     or not they fit its memory; they count toward its memory and load.
//     Pins naming no variant of the family are ignored.
//
//  2. Spread, when there are at least as many members serving nothing as
//     variants with no holder: each of those members serves exactly one
//     variant. The number of holders per variant is levelled: with L the
//     highest level the free members can bring every variant up to, a pair
//     is taken, in score order, if its member is free and its variant has
//     fewer than L holders, or exactly L while the members left over after
//     levelling last. With more members than variants and no pins, each
//     variant so gets ⌊members/variants⌋ or ⌈members/variants⌉ holders.
//
//     Otherwise, with fewer members than variants, least loaded first: the
//     variants without a holder go costliest first, each to the member with
//     room that would finish it first, least (load + Cost) / Speed, load
//     being the Cost of what the member already serves (pins included), ties
//     by score. This is the classic longest-processing-time rule; measured
//     against the best possible split it balances far better than taking
//     pairs in score order. To move few variants when a member leaves, the
//     members say what they serve (Member.Serving) and, when memory cannot
//     get in the way, the rule is refined: a member serving a variant keeps
//     it if it finishes it within 25% of the earliest finish; a variant
//     nobody serves goes, within the same 25%, to a member not about to
//     keep one of the variants still to place; and once there are only as
//     many variants left as members serving nothing, those members take
//     them. Members that plain LPT leaves with nothing (too slow to be worth
//     a variant, or memory) take no part in this and replicate as in the
//     spread. Members serving what this plan gives them (and, during a
//     hand-over, what they served before) get this same plan again
//     (TestAssignIsAFixedPoint); with nobody serving anything, the
//     refinement changes nothing.
//
//  3. Cover. Memory can make the passes above leave a variant without a
//     holder although some member had room for it. Then the plan is made
//     again from the pins: a depth-first search looks for members for all
//     the variants without a holder (fewest members with room first, then
//     costliest first), trying members free ones first by score, then least
//     loaded first; the free members left then spread. The search is bounded
//     to a fixed number of steps (so the plan stays deterministic); if it
//     finds no cover, the plan of step 2 stands.
//
//  4. Bridges. A variant whose holders in the plan all lack its weights
//     (Member.Holding) while some member with room holds them also goes to
//     one of the members holding them, the one that would finish it first,
//     (load + Cost) / Speed, ties by score; costliest variant first. The
//     new holder must fetch the weights, which takes seconds on a slow link,
//     and meanwhile the variant would have no server (a peer that had only
//     the manifest, given the variant of a peer that died); the bridge
//     serves it at once. Once the new holder has the weights, the bridge is
//     no longer in the plan and its member hands the variant over. Members
//     that say they hold nothing get no bridge: without Holding the plan is
//     that of steps 1-3.
//
// Every pair taken fits the member's memory (pins aside). Variants without a
// holder in the end are Unserved. Members with the same name are one member
// (the first by speed, memory and pins is kept), and so are variants with
// the same ID.
func Assign(members []Member, variants []Variant) Plan {
	return build(members, variants).plan()
}

func build(members []Member, variants []Variant) *assigner {
	a := newAssigner(members, variants)
	a.pin()
	pinned := a.mark()
	placeable := a.uncoveredPlaceable()
	a.distribute()
	if !a.covers(placeable) {
		a.rewind(pinned)
		if a.search(placeable) {
			a.spread()
		} else {
			a.rewind(pinned)
			a.distribute()
		}
	}
	a.bridge()
	return a
}

// maxSearchSteps bounds the search for a cover that the score order misses:
// milliseconds on a small device for a large cluster, and far more than real
// families (a handful of variants) need.
const maxSearchSteps = 1 << 14

type member struct {
	name   string
	speed  float64
	budget int64 // bytes; math.MaxInt64 when unlimited
	pinned []int // variant indices
	serves []int // variant indices it serves now
	holds  []int // variant indices whose weights it holds
}

type variant struct {
	id   string
	mem  int64
	cost float64
}

type pair struct{ m, v int }

type assigner struct {
	members  []member  // sorted by name
	variants []variant // sorted by ID
	score    []float64 // score[m*len(variants)+v], the weighted rendezvous score
	pairs    []pair    // every pair, best score first
	used     []int64   // memory per member
	load     []float64 // cost per member
	serving  [][]int   // variant indices per member, in placement order
	holders  []int     // holders per variant
	steps    int       // search steps taken
}

func newAssigner(ms []Member, vs []Variant) *assigner {
	a := &assigner{}
	// Canonical variants: by ID, one per ID.
	vs = slices.Clone(vs)
	slices.SortFunc(vs, func(x, y Variant) int {
		return cmp.Or(strings.Compare(x.ID, y.ID), cmp.Compare(x.Memory, y.Memory), cmp.Compare(x.Cost, y.Cost))
	})
	index := make(map[string]int, len(vs))
	for _, v := range vs {
		if _, dup := index[v.ID]; dup {
			continue
		}
		index[v.ID] = len(a.variants)
		a.variants = append(a.variants, variant{id: v.ID, mem: max(v.Memory, 0), cost: positive(v.Cost)})
	}
	// Canonical members: by name, one per name.
	sorted := make([]*Member, len(ms))
	for i := range ms {
		sorted[i] = &ms[i]
	}
	slices.SortFunc(sorted, func(x, y *Member) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), cmp.Compare(x.Speed, y.Speed),
			cmp.Compare(x.Memory, y.Memory), slices.Compare(x.Pinned, y.Pinned), slices.Compare(x.Serving, y.Serving),
			slices.Compare(x.Holding, y.Holding))
	})
	for i, m := range sorted {
		if i > 0 && m.Name == sorted[i-1].Name {
			continue
		}
		budget := m.Memory
		if budget <= 0 {
			budget = math.MaxInt64
		}
		var pinned []int
		for _, id := range m.Pinned {
			if v, ok := index[id]; ok && !slices.Contains(pinned, v) {
				pinned = append(pinned, v)
			}
		}
		slices.Sort(pinned)
		var serves []int
		for _, id := range m.Serving {
			if v, ok := index[id]; ok && !slices.Contains(serves, v) {
				serves = append(serves, v)
			}
		}
		var holds []int
		for _, id := range m.Holding {
			if v, ok := index[id]; ok && !slices.Contains(holds, v) {
				holds = append(holds, v)
			}
		}
		a.members = append(a.members, member{name: m.Name, speed: positive(m.Speed), budget: budget, pinned: pinned, serves: serves, holds: holds})
	}

	nm, nv := len(a.members), len(a.variants)
	a.score = make([]float64, nm*nv)
	a.pairs = make([]pair, 0, nm*nv)
	for i, m := range a.members {
		for j, v := range a.variants {
			a.score[i*nv+j] = float64(m.speed*v.cost) / negLog(rendezvous(m.name, v.id))
			a.pairs = append(a.pairs, pair{i, j})
		}
	}
	slices.SortFunc(a.pairs, func(x, y pair) int { return a.rank(x.m, x.v, y.m, y.v) })
	a.used = make([]int64, nm)
	a.load = make([]float64, nm)
	a.serving = make([][]int, nm)
	a.holders = make([]int, nv)
	return a
}

// positive returns x, or 1 when x is not a positive finite number.
func positive(x float64) float64 {
	if x > 0 && x <= math.MaxFloat64 {
		return x
	}
	return 1
}

// incumbentSlack is how much later than the earliest finish a member serving
// a variant may finish it and still keep it, when there are fewer members
// than variants: a trade of balance for fewer moves.
const incumbentSlack = 0.25

// finish is when member m would finish its load plus variant v.
func (a *assigner) finish(m, v int) float64 {
	return (a.load[m] + a.variants[v].cost) / a.members[m].speed
}

func (a *assigner) fits(m, v int) bool {
	return a.members[m].budget-a.used[m] >= a.variants[v].mem
}

func (a *assigner) free(m int) bool { return len(a.serving[m]) == 0 }

func (a *assigner) place(m, v int) {
	a.used[m] = satAdd(a.used[m], a.variants[v].mem)
	a.load[m] += a.variants[v].cost
	a.serving[m] = append(a.serving[m], v)
	a.holders[v]++
}

// unplace undoes the latest place(m, v).
func (a *assigner) unplace(m, v int) {
	s := a.serving[m]
	a.serving[m] = s[:len(s)-1]
	a.holders[v]--
	// Recompute rather than subtract, so that undoing leaves exactly the
	// bits a plan built without the detour would have.
	a.used[m], a.load[m] = 0, 0
	for _, w := range a.serving[m] {
		a.used[m] = satAdd(a.used[m], a.variants[w].mem)
		a.load[m] += a.variants[w].cost
	}
}

// mark records the state, for rewind.
func (a *assigner) mark() []int {
	n := make([]int, len(a.members))
	for m, s := range a.serving {
		n[m] = len(s)
	}
	return n
}

// rewind undoes every place since mark returned n.
func (a *assigner) rewind(n []int) {
	for m := range a.members {
		for len(a.serving[m]) > n[m] {
			a.unplace(m, a.serving[m][len(a.serving[m])-1])
		}
	}
}

func satAdd(x, y int64) int64 {
	if x > math.MaxInt64-y {
		return math.MaxInt64
	}
	return x + y
}

// rank orders pair (m1, v1) before (m2, v2) if it has the higher score, with
// names and IDs settling exact ties (scores are never NaN).
func (a *assigner) rank(m1, v1, m2, v2 int) int {
	nv := len(a.variants)
	return cmp.Or(cmp.Compare(a.score[m2*nv+v2], a.score[m1*nv+v1]), cmp.Compare(m1, m2), cmp.Compare(v1, v2))
}

func (a *assigner) better(m1, v1, m2, v2 int) bool { return a.rank(m1, v1, m2, v2) < 0 }

func (a *assigner) pin() {
	for m := range a.members {
		for _, v := range a.members[m].pinned {
			a.place(m, v)
		}
	}
}

// uncoveredPlaceable lists the variants with no holder that some member has
// room for.
func (a *assigner) uncoveredPlaceable() []int {
	var vs []int
	for v := range a.variants {
		if a.holders[v] == 0 && a.roomFor(v) {
			vs = append(vs, v)
		}
	}
	return vs
}

func (a *assigner) roomFor(v int) bool {
	for m := range a.members {
		if a.fits(m, v) {
			return true
		}
	}
	return false
}

func (a *assigner) roomIn(m int) bool {
	for v := range a.variants {
		if a.fits(m, v) {
			return true
		}
	}
	return false
}

// covers reports whether every variant of vs has a holder.
func (a *assigner) covers(vs []int) bool {
	for _, v := range vs {
		if a.holders[v] == 0 {
			return false
		}
	}
	return true
}

// distribute is step 2 of Assign.
func (a *assigner) distribute() {
	free := 0
	for m := range a.members {
		if a.free(m) && a.roomIn(m) {
			free++
		}
	}
	if free >= len(a.uncoveredPlaceable()) {
		a.spread()
		return
	}
	order := a.uncoveredPlaceable()
	slices.SortFunc(order, func(x, y int) int {
		return cmp.Or(cmp.Compare(a.variants[y].cost, a.variants[x].cost), cmp.Compare(x, y))
	})
	// Longest processing time first (LPT). Then, when memory cannot get in
	// the way, again, keeping variants with the members serving them where
	// that costs little (see lpt). The members LPT leaves with nothing
	// (too slow to be worth a variant) take no part in the second pass:
	// they replicate below, and their replicas must not count as serving
	// next time, or the plan would not reproduce itself.
	start := a.mark()
	roomy := a.roomForAll(order)
	a.lpt(order, nil, false)
	if roomy {
		idle := make([]bool, len(a.members))
		for m := range a.members {
			idle[m] = a.free(m)
		}
		a.rewind(start)
		a.lpt(order, idle, true)
	}
	a.spread()
}

// waits reports whether member m serves one of the variants in rest.
func (a *assigner) waits(m int, rest []int) bool {
	for _, v := range a.members[m].serves {
		if slices.Contains(rest, v) {
			return true
		}
	}
	return false
}

// roomForAll reports whether every member has room for all of vs at once, so
// that memory decides nothing.
func (a *assigner) roomForAll(vs []int) bool {
	var need int64
	for _, v := range vs {
		need = satAdd(need, a.variants[v].mem)
	}
	for m := range a.members {
		if a.members[m].budget-a.used[m] < need {
			return false
		}
	}
	return true
}

// lpt places the variants of order, costliest first, each on the member that
// finishes it first (ties by score), skipping the members marked in skip.
//
// With keep, a member already serving the variant keeps it if it finishes it
// within incumbentSlack of that earliest finish (the best-scoring such member
// if several do); and once only as many variants are left as members serving
// nothing (skip aside), only those members are candidates, so that none is
// left idle. Given the same pins and skip, keeping reproduces itself: if the
// members serve what it placed (and, during a hand-over, what they served
// before), each choice is made again. Without memory limits and with no
// member serving anything, both ways place alike.
func (a *assigner) lpt(order []int, skip []bool, keep bool) {
	idle := 0
	for m := range a.members {
		if a.free(m) && (skip == nil || !skip[m]) {
			idle++
		}
	}
	for i, v := range order {
		fill := keep && len(order)-i <= idle
		candidate := func(m int) bool {
			return a.fits(m, v) && (skip == nil || !skip[m]) && (!fill || a.free(m))
		}
		best, finish := -1, 0.0
		for m := range a.members {
			if !candidate(m) {
				continue
			}
			f := a.finish(m, v)
			if best < 0 || f < finish || f == finish && a.better(m, v, best, v) {
				best, finish = m, f
			}
		}
		if best < 0 {
			continue
		}
		if keep {
			limit := finish * (1 + incumbentSlack)
			inc := -1
			for m := range a.members {
				if candidate(m) && slices.Contains(a.members[m].serves, v) && a.finish(m, v) <= limit &&
					(inc < 0 || a.better(m, v, inc, v)) {
					inc = m
				}
			}
			if inc >= 0 {
				best = inc
			} else if a.waits(best, order[i+1:]) {
				// Nobody serves v: rather than take a member that serves
				// a variant still to come, take one within the slack
				// that serves none of them, earliest finish first.
				alt, altFinish := -1, 0.0
				for m := range a.members {
					if !candidate(m) || a.waits(m, order[i+1:]) {
						continue
					}
					if f := a.finish(m, v); f <= limit && (alt < 0 || f < altFinish || f == altFinish && a.better(m, v, alt, v)) {
						alt, altFinish = m, f
					}
				}
				if alt >= 0 {
					best = alt
				}
			}
		}
		if a.free(best) && (skip == nil || !skip[best]) {
			idle--
		}
		a.place(best, v)
	}
}

// spread gives each member serving nothing one variant, levelling the number
// of holders, pairs in score order (step 2 of Assign).
func (a *assigner) spread() {
	// Only what can be placed counts: free members with room for some
	// variant, variants some free member has room for.
	free := 0
	open := make([]bool, len(a.variants))
	for m := range a.members {
		if !a.free(m) {
			continue
		}
		any := false
		for v := range a.variants {
			if a.fits(m, v) {
				open[v], any = true, true
			}
		}
		if any {
			free++
		}
	}
	// The level L: the most holders every open variant can reach.
	level, below := 0, 0 // below: members needed to bring them all to level
	for free > 0 {
		need := 0
		for v, ok := range open {
			if ok && a.holders[v] <= level {
				need += level + 1 - a.holders[v]
			}
		}
		if need == 0 || need > free {
			break
		}
		level, below = level+1, need
	}
	extra := free - below
	for _, p := range a.pairs {
		if !a.free(p.m) || !a.fits(p.m, p.v) {
			continue
		}
		switch h := a.holders[p.v]; {
		case h < level:
			a.place(p.m, p.v)
		case h == level && extra > 0:
			a.place(p.m, p.v)
			extra--
		}
	}
	// Memory may have kept some members out of the levelled places: each
	// takes, in name order, the variant with the fewest holders it has room
	// for, ties by score.
	for m := range a.members {
		if !a.free(m) {
			continue
		}
		best := -1
		for v := range a.variants {
			if a.fits(m, v) && (best < 0 || a.holders[v] < a.holders[best] || a.holders[v] == a.holders[best] && a.better(m, v, m, best)) {
				best = v
			}
		}
		if best >= 0 {
			a.place(m, best)
		}
	}
}

// search looks for a holder for each variant of vs depth first (step 3 of
// Assign) and reports whether it found them all; if not, the state is as it
// was.
func (a *assigner) search(vs []int) bool {
	fit := make([]int, len(a.variants))
	for _, v := range vs {
		for m := range a.members {
			if a.fits(m, v) {
				fit[v]++
			}
		}
	}
	order := slices.Clone(vs)
	slices.SortFunc(order, func(x, y int) int {
		return cmp.Or(cmp.Compare(fit[x], fit[y]), cmp.Compare(a.variants[y].cost, a.variants[x].cost), cmp.Compare(x, y))
	})
	return a.searchFrom(order)
}

func (a *assigner) searchFrom(order []int) bool {
	if len(order) == 0 {
		return true
	}
	for _, v := range order {
		if !a.roomFor(v) {
			return false // prune: a variant left has lost its last member with room
		}
	}
	v := order[0]
	for _, m := range a.candidates(v) {
		if a.steps >= maxSearchSteps {
			return false
		}
		a.steps++
		a.place(m, v)
		if a.searchFrom(order[1:]) {
			return true
		}
		a.unplace(m, v)
	}
	return false
}

// candidates ranks the members with room for v: free members first, by
// score; then the rest by (load + Cost) / Speed, then by score.
func (a *assigner) candidates(v int) []int {
	var ms []int
	for m := range a.members {
		if a.fits(m, v) {
			ms = append(ms, m)
		}
	}
	cost := a.variants[v].cost
	slices.SortFunc(ms, func(x, y int) int {
		if fx, fy := a.free(x), a.free(y); fx != fy {
			if fx {
				return -1
			}
			return 1
		}
		if !a.free(x) {
			fx, fy := (a.load[x]+cost)/a.members[x].speed, (a.load[y]+cost)/a.members[y].speed
			if fx != fy {
				return cmp.Compare(fx, fy)
			}
		}
		return a.rank(x, v, y, v)
	})
	return ms
}

// bridge adds, for each variant placed only on members lacking its weights,
// the member holding them that finishes it first (step 4 of Assign).
func (a *assigner) bridge() {
	order := make([]int, 0, len(a.variants))
	for v := range a.variants {
		order = append(order, v)
	}
	slices.SortFunc(order, func(x, y int) int {
		return cmp.Or(cmp.Compare(a.variants[y].cost, a.variants[x].cost), cmp.Compare(x, y))
	})
	for _, v := range order {
		if a.holders[v] == 0 {
			continue // no member has room for it
		}
		held := false
		for m := range a.members {
			if slices.Contains(a.serving[m], v) && slices.Contains(a.members[m].holds, v) {
				held = true
				break
			}
		}
		if held {
			continue
		}
		best, finish := -1, 0.0
		for m := range a.members {
			if !slices.Contains(a.members[m].holds, v) || !a.fits(m, v) {
				continue
			}
			if f := a.finish(m, v); best < 0 || f < finish || f == finish && a.better(m, v, best, v) {
				best, finish = m, f
			}
		}
		if best >= 0 {
			a.place(best, v)
		}
	}
}

func (a *assigner) plan() Plan {
	p := Plan{
		Serving: make(map[string][]string, len(a.members)),
		Holders: make(map[string][]string, len(a.variants)),
	}
	for v := range a.variants {
		p.Holders[a.variants[v].id] = nil
	}
	// Members and variants are in canonical order, so walking members in
	// order appends names sorted, and sorting each member's indices sorts
	// its IDs.
	for m, mem := range a.members {
		vs := slices.Sorted(slices.Values(a.serving[m]))
		var ids []string
		for _, v := range vs {
			id := a.variants[v].id
			ids = append(ids, id)
			p.Holders[id] = append(p.Holders[id], mem.name)
		}
		p.Serving[mem.name] = ids
	}
	for v := range a.variants {
		if a.holders[v] == 0 {
			p.Unserved = append(p.Unserved, a.variants[v].id)
		}
	}
	return p
}
