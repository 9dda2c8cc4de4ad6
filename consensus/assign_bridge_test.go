package consensus

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestAssignBridges: a variant placed only on members lacking its weights
// also goes to a member holding them, which serves it at once.
func TestAssignBridges(t *testing.T) {
	five := []Variant{{ID: "a", Cost: 5}, {ID: "b", Cost: 4}, {ID: "c", Cost: 3}, {ID: "d", Cost: 2}, {ID: "e", Cost: 1}}
	all := []string{"a", "b", "c", "d", "e"}
	for _, tt := range []struct {
		name     string
		members  []Member
		variants []Variant
		// want: for each member, what it serves.
		want map[string][]string
	}{{
		// The case of the chaos trial: the only server of a variant died;
		// what is left is two members holding every file and one that
		// has only the manifest. LPT gives the bare member "a" (nobody
		// serves it any more); x, which holds it, serves it meanwhile.
		name: "bare member vs holder",
		members: []Member{
			{Name: "x", Speed: 1, Serving: []string{"b", "e"}, Holding: all},
			{Name: "y", Speed: 1, Serving: []string{"c", "d"}, Holding: all},
			{Name: "bare", Speed: 1},
		},
		variants: five,
		want:     map[string][]string{"bare": {"a"}, "x": {"a", "b", "e"}, "y": {"c", "d"}},
	}, {
		// Once the bare member holds "a", the bridge is gone.
		name: "bare member has fetched",
		members: []Member{
			{Name: "x", Speed: 1, Serving: []string{"b", "e"}, Holding: all},
			{Name: "y", Speed: 1, Serving: []string{"c", "d"}, Holding: all},
			{Name: "bare", Speed: 1, Holding: []string{"a"}},
		},
		variants: five,
		want:     map[string][]string{"bare": {"a"}, "x": {"b", "e"}, "y": {"c", "d"}},
	}, {
		// More members than variants: the spread gives each one variant;
		// the bare one's also goes to a holder, the one finishing first
		// (z, four times as fast).
		name: "spread",
		members: []Member{
			{Name: "x", Speed: 1, Holding: []string{"a", "b"}},
			{Name: "bare", Speed: 1},
			{Name: "z", Speed: 4, Holding: []string{"a", "b"}},
		},
		variants: []Variant{{ID: "a", Cost: 1}, {ID: "b", Cost: 1}},
		want:     map[string][]string{"bare": {"a"}, "x": {"b"}, "z": {"a", "b"}},
	}, {
		// Nobody holds the bare member's variant (x holds only a file of
		// another family): nothing to bridge with.
		name: "nobody holds",
		members: []Member{
			{Name: "x", Speed: 1, Holding: []string{"other"}},
			{Name: "bare", Speed: 1},
		},
		variants: []Variant{{ID: "a", Cost: 1}, {ID: "b", Cost: 1}},
		want:     map[string][]string{"bare": {"a"}, "x": {"b"}},
	}, {
		// The holder has no room for a second variant: no bridge.
		name: "holder without room",
		members: []Member{
			{Name: "x", Speed: 1, Memory: 10, Holding: []string{"a", "b"}},
			{Name: "bare", Speed: 1},
		},
		variants: []Variant{{ID: "a", Cost: 1, Memory: 8}, {ID: "b", Cost: 1, Memory: 8}},
		want:     map[string][]string{"bare": {"a"}, "x": {"b"}},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			p := Assign(tt.members, tt.variants)
			checkPlan(t, tt.members, tt.variants, p)
			for name, want := range tt.want {
				if got := p.Serving[name]; !slices.Equal(got, want) {
					t.Errorf("%s serves %v, want %v (plan %v)", name, got, want, p.Serving)
				}
			}
		})
	}
}

// TestAssignBridgeProperties: on random clusters with random holdings,
// bridges only add to the plan without them; every variant some member with
// room holds has a holder in the plan that holds it; and once the members
// hold what the plan gives them, no bridge is left.
func TestAssignBridgeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	bridged := 0
	for trial := range 3000 {
		ms, vs := randomCluster(rng, 1+rng.IntN(10), 1+rng.IntN(7), rng.IntN(2) == 0)
		blind := serveAndHold(rng, ms, vs, 3)
		base := Assign(blind, vs)
		p := Assign(ms, vs)
		checkPlan(t, ms, vs, p)
		for name, ids := range base.Serving {
			for _, id := range ids {
				if !slices.Contains(p.Serving[name], id) {
					t.Fatalf("trial %d: holdings took %s from %s:\nmembers %+v\nbase %v\nplan %v", trial, id, name, ms, base.Serving, p.Serving)
				}
			}
		}
		if !reflect.DeepEqual(base, p) {
			bridged++
		}
		mem := map[string]int64{}
		for _, v := range vs {
			mem[v.ID] = max(v.Memory, 0)
		}
		for _, v := range vs {
			if len(p.Holders[v.ID]) == 0 {
				continue
			}
			ok := false
			for _, h := range p.Holders[v.ID] {
				ok = ok || slices.Contains(memberNamed(ms, h).Holding, v.ID)
			}
			if ok {
				continue
			}
			for _, m := range ms {
				if !slices.Contains(m.Holding, v.ID) || m.Memory <= 0 {
					if slices.Contains(m.Holding, v.ID) {
						t.Fatalf("trial %d: %s holds %s, has room, and the plan gives it only to %v", trial, m.Name, v.ID, p.Holders[v.ID])
					}
					continue
				}
				var used int64
				for _, id := range p.Serving[m.Name] {
					used += mem[id]
				}
				if m.Memory-used >= mem[v.ID] {
					t.Fatalf("trial %d: %s holds %s, has room, and the plan gives it only to %v", trial, m.Name, v.ID, p.Holders[v.ID])
				}
			}
		}
		// The new holders fetch: now every planned holder holds its
		// variants, and the plan has no bridge left.
		fetched := slices.Clone(ms)
		for i := range fetched {
			fetched[i].Holding = append(slices.Clone(fetched[i].Holding), base.Serving[fetched[i].Name]...)
		}
		if q := Assign(fetched, vs); !reflect.DeepEqual(q, base) {
			t.Fatalf("trial %d: with the weights fetched the plan is\n%v\nwant the plan without bridges\n%v", trial, q.Serving, base.Serving)
		}
	}
	t.Logf("%d of 3000 random plans have bridges", bridged)
	if bridged < 300 {
		t.Errorf("only %d of 3000 plans have bridges: the generator does not exercise them", bridged)
	}
}

func memberNamed(ms []Member, name string) Member {
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	return Member{}
}

// TestAssignWhileBridged: while bridges serve and the new holders still
// fetch, the members serving what they hold of the plan, the plan mostly
// stays; it moves only when a bridging member, now serving the variant,
// keeps it as any member serving a variant does (step 2), and then no
// variant is left without a holder that holds it.
func TestAssignWhileBridged(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	moved, bridged := 0, 0
	for trial := range 3000 {
		ms, vs := randomCluster(rng, 1+rng.IntN(10), 1+rng.IntN(7), rng.IntN(2) == 0)
		blind := serveAndHold(rng, ms, vs, 2)
		base, p := Assign(blind, vs), Assign(ms, vs)
		if reflect.DeepEqual(base, p) {
			continue
		}
		bridged++
		// Serving what they hold of p (bridges included), or only of base.
		during, without := slices.Clone(ms), slices.Clone(ms)
		for i := range during {
			during[i].Serving, without[i].Serving = nil, nil
			for _, id := range p.Serving[ms[i].Name] {
				if slices.Contains(ms[i].Holding, id) {
					during[i].Serving = append(during[i].Serving, id)
					if slices.Contains(base.Serving[ms[i].Name], id) {
						without[i].Serving = append(without[i].Serving, id)
					}
				}
			}
		}
		q := Assign(during, vs)
		if !reflect.DeepEqual(p, q) && reflect.DeepEqual(p, Assign(without, vs)) {
			moved++
		}
		for _, v := range vs {
			had := slices.ContainsFunc(p.Holders[v.ID], func(h string) bool { return slices.Contains(memberNamed(ms, h).Holding, v.ID) })
			has := slices.ContainsFunc(q.Holders[v.ID], func(h string) bool { return slices.Contains(memberNamed(ms, h).Holding, v.ID) })
			if had && !has {
				t.Fatalf("trial %d: %s lost its last holder with the weights: %v, then %v", trial, v.ID, p.Serving, q.Serving)
			}
		}
	}
	t.Logf("%d of %d plans with bridges move while bridged, because of the bridge", moved, bridged)
	// Measured: 76 of 1517.
	if moved*10 > bridged {
		t.Errorf("%d of %d bridged plans move while bridged; want at most a tenth", moved, bridged)
	}
}

// serveAndHold has each member of ms serve each variant of vs with
// probability 1/3 and hold it with probability 1/holdOneIn, and returns ms
// as peers that do not say what they hold would announce it.
func serveAndHold(rng *rand.Rand, ms []Member, vs []Variant, holdOneIn int) (blind []Member) {
	for i := range ms {
		for _, v := range vs {
			if rng.IntN(3) == 0 {
				ms[i].Serving = append(ms[i].Serving, v.ID)
			}
			if rng.IntN(holdOneIn) == 0 {
				ms[i].Holding = append(ms[i].Holding, v.ID)
			}
		}
	}
	blind = slices.Clone(ms)
	for i := range blind {
		blind[i].Holding = nil
	}
	return blind
}
