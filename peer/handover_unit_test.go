package peer

import (
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/p2pnet/pb"
)

// newIdlePeer is a peer of the built-in family, constructed and not started.
func newIdlePeer(t *testing.T) *Peer {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.NodeName = "a"
	cfg.DataDir = dir
	cfg.ClusterKey = filepath.Join(dir, "cluster.key")
	cfg.GossipAddr, cfg.P2PAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if err := NewClusterKey(cfg.ClusterKey); err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHandOverWaitsForThePlannedHolder: a peer stops serving a variant the
// plan took from it only once a member the plan gives it to serves it. Two
// peers handing the same variant over at once, or swapping variants, never
// leave it without a server in between.
func TestHandOverWaitsForThePlannedHolder(t *testing.T) {
	p := newIdlePeer(t)
	x, y := p.manifest.Variants[0].ID, p.manifest.Variants[1].ID
	meta := func(ids ...string) *pb.NodeMeta {
		m := &pb.NodeMeta{Version: pb.MetaVersion}
		for _, id := range ids {
			m.Variants = append(m.Variants, &pb.ServedVariant{VariantId: id, ModelSha256: p.shas[p.index[id]]})
		}
		return m
	}
	plan := func(holders map[string][]string) consensus.Plan { return consensus.Plan{Holders: holders} }
	for _, tt := range []struct {
		name   string
		view   map[string]*pb.NodeMeta
		plan   consensus.Plan
		self   string
		id     string
		handOk bool
	}{
		// a and b both serve x; the plan moves x to c, which is still
		// fetching. Each of a and b sees the other serve x: neither may
		// stop before c serves it.
		{"both holders hand over, a", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(x), "c": meta()},
			plan(map[string][]string{x: {"c"}}), "a", x, false},
		{"both holders hand over, b", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(x), "c": meta()},
			plan(map[string][]string{x: {"c"}}), "b", x, false},
		{"c serves it now", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(x), "c": meta(x)},
			plan(map[string][]string{x: {"c"}}), "a", x, true},
		// a and b swap x and y: both keep serving until the other serves.
		{"swap, nobody loaded yet", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(y)},
			plan(map[string][]string{x: {"b"}, y: {"a"}}), "a", x, false},
		{"swap, b loaded x: a hands x over", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(x, y)},
			plan(map[string][]string{x: {"b"}, y: {"a"}}), "a", x, true},
		{"swap, b loaded x: b keeps y", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(x, y)},
			plan(map[string][]string{x: {"b"}, y: {"a"}}), "b", y, false},
		// A replica the plan keeps elsewhere is enough.
		{"replica kept", map[string]*pb.NodeMeta{"a": meta(x), "b": meta(x)},
			plan(map[string][]string{x: {"b"}}), "a", x, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var view []memberView
			for _, name := range []string{"a", "b", "c"} {
				if m := tt.view[name]; m != nil {
					view = append(view, memberView{Name: name, Meta: m, Self: name == tt.self})
				}
			}
			p.cfg.NodeName = tt.self
			if got := p.servedByPlanned(view, tt.plan, tt.id); got != tt.handOk {
				t.Errorf("%s may hand %s over: got %v, want %v", tt.self, tt.id, got, tt.handOk)
			}
		})
	}
}

// TestHolds: a member holds a variant it serves, or one its held bitmap
// names in this family; a bitmap of another family counts for nothing.
func TestHolds(t *testing.T) {
	p := newIdlePeer(t)
	held := pb.SetHeld(nil, 1)
	for _, tt := range []struct {
		name string
		meta *pb.NodeMeta
		i    int
		want bool
	}{
		{"held", &pb.NodeMeta{Held: held, FamilyDigest: p.familyDigest}, 1, true},
		{"not held", &pb.NodeMeta{Held: held, FamilyDigest: p.familyDigest}, 0, false},
		{"other family", &pb.NodeMeta{Held: held, FamilyDigest: make([]byte, pb.FamilyDigestLen)}, 1, false},
		{"no digest", &pb.NodeMeta{Held: held}, 1, false},
		{"served", &pb.NodeMeta{Variants: []*pb.ServedVariant{{VariantId: p.manifest.Variants[0].ID, ModelSha256: p.shas[0]}}}, 0, true},
		{"served, other weights", &pb.NodeMeta{Variants: []*pb.ServedVariant{{VariantId: p.manifest.Variants[0].ID, ModelSha256: p.shas[1]}}}, 0, false},
	} {
		if got := p.holds(tt.meta, tt.i); got != tt.want {
			t.Errorf("%s: holds(variant %d) = %v, want %v", tt.name, tt.i, got, tt.want)
		}
	}
}
