package peer

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/models"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/peer/api"
)

// bareFamily writes a family folder holding only the built-in family's
// manifest: a peer started with it has no weights of its own.
func bareFamily(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "family.json"), mustRead(t, models.Default+"/family.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// familyVariants is the built-in family as Assign takes it.
func familyVariants(t testing.TB) []consensus.Variant {
	t.Helper()
	man, err := format.DecodeManifest("family.json", mustRead(t, models.Default+"/family.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []consensus.Variant
	for _, v := range man.Variants {
		vs = append(vs, consensus.Variant{ID: v.ID, Memory: v.Spec.Params() * 4, Cost: float64(v.Spec.MACs())})
	}
	return vs
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(models.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trialNames finds names for three peers with weights and a bare one (the
// last) for which the chaos trial's case happens with equal speeds: the
// four settle with every variant on one member, and once the only server
// of a variant (returned) stops, the plan of the survivors that do not say
// what their stores hold gives that variant to the bare peer alone.
func trialNames(t testing.TB) (names []string, victim int, orphan string) {
	t.Helper()
	vs := familyVariants(t)
	for try := range 1000 {
		names = nil
		var ms []consensus.Member
		for i := range 4 {
			names = append(names, fmt.Sprintf("n%d-%d", try, i))
			ms = append(ms, consensus.Member{Name: names[i], Speed: 1})
		}
		before := consensus.Assign(ms, vs)
		for i := range ms {
			ms[i].Serving = before.Serving[ms[i].Name]
		}
		for k := range 3 {
			after := consensus.Assign(slices.Delete(slices.Clone(ms), k, k+1), vs)
			for _, v := range vs {
				if slices.Equal(before.Holders[v.ID], []string{names[k]}) && slices.Equal(after.Holders[v.ID], []string{names[3]}) {
					return names, k, v.ID
				}
			}
		}
	}
	t.Fatal("no names give the trial's case")
	return nil, 0, ""
}

// TestVariantServedAgainAfterItsServerDies is the chaos trial's "a variant
// goes dark and stays dark": three peers with the family's weights and one
// with only its manifest; the only server of a variant stops without a
// word. Once the survivors see it gone, every variant is served again within
// 3 s (the bar), although the plan may give the orphaned variant to
// the peer that has no weights: a peer holding them serves it meanwhile, and
// the bare peer fetches it from any peer whose store holds it.
func TestVariantServedAgainAfterItsServerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four peers")
	}
	before := goleak.IgnoreCurrent()
	defer func() {
		probesDone(5 * time.Second)
		goleak.VerifyNone(t, before)
	}()
	// Equal speeds, so that the plan is the one trialNames worked out.
	defer func(f func(*Peer) float64) { probeSpeed = f }(probeSpeed)
	probeSpeed = func(*Peer) float64 { return 1 }
	names, victim, orphan := trialNames(t)
	bare := bareFamily(t)
	n := 0
	peers := startPeers(t, 4, func(c *Config) {
		c.NodeName = names[n]
		if n == 3 {
			c.Family = bare
		}
		n++
	})
	defer func() {
		for _, p := range peers {
			p.Shutdown()
		}
	}()
	converged(t, peers, 30*time.Second)
	// While the four joined, plans made from partial views may have given
	// the bare peer the orphan for a while; make it bare of that file
	// again, and wait until the others know.
	bp, oi := peers[3], peers[3].index[orphan]
	if bp.store.Has(bp.manifest.Variants[oi].SHA256) {
		if err := os.Remove(bp.store.Path(bp.manifest.Variants[oi].SHA256)); err != nil {
			t.Fatal(err)
		}
		bp.announce()
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		held := false
		for _, p := range peers {
			p.mu.Lock()
			for _, m := range p.view {
				held = held || m.Name == names[3] && p.holds(m.Meta, oi)
			}
			p.mu.Unlock()
		}
		if !held {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the peers still see %s holding %s", names[3], orphan)
		}
	}
	serving := peers[0].Cluster().Serving
	name := names[victim]
	if !slices.Equal(serving[orphan], []string{name}) {
		t.Fatalf("serving %v; want %s served by %s alone, as worked out", serving, orphan, name)
	}
	t.Logf("stopping %s, the only server of %s (serving %v); the plan of survivors blind to what stores hold gives %s to the bare %s alone",
		name, orphan, serving, orphan, names[3])
	var survivors []*Peer
	for _, p := range peers {
		if p != peers[victim] {
			survivors = append(survivors, p)
		}
	}

	kill := time.Now()
	peers[victim].Shutdown() // no Leave: as a kill -9 looks to the others
	var detected time.Time   // the first survivor's view without the victim
	dark := map[string]time.Time{}
	darkest := map[string]time.Duration{} // longest dark spell after detection
	settled := false
	for deadline := kill.Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		now := time.Now()
		gone := true
		for _, p := range survivors {
			cv := p.Cluster()
			out := !slices.ContainsFunc(cv.Members, func(m api.MemberInfo) bool { return m.Name == name })
			if out && detected.IsZero() {
				detected = now
				t.Logf("%s sees %s gone %v after the stop", p.cfg.NodeName, name, now.Sub(kill).Round(time.Millisecond))
			}
			gone = gone && out
		}
		// Served: by a live member, in the view of a survivor that no
		// longer counts the victim (before that, the victim still
		// appears to serve).
		cv := survivors[0].Cluster()
		for id, ms := range cv.Serving {
			live := slices.DeleteFunc(slices.Clone(ms), func(m string) bool { return m == name })
			switch {
			case len(live) == 0 && dark[id].IsZero():
				dark[id] = now
			case len(live) > 0 && !dark[id].IsZero():
				t.Logf("%s served by %v again %v after the stop", id, live, now.Sub(kill).Round(time.Millisecond))
				if !detected.IsZero() {
					darkest[id] = max(darkest[id], now.Sub(later(dark[id], detected)))
				}
				dark[id] = time.Time{}
			}
		}
		if gone && len(dark) > 0 && allZero(dark) {
			settled = true
			break
		}
	}
	for id, since := range dark {
		if !since.IsZero() && !detected.IsZero() {
			darkest[id] = max(darkest[id], time.Since(later(since, detected)))
		}
	}
	if detected.IsZero() {
		t.Fatalf("no survivor noticed %s stop within 40 s", name)
	}
	for id, d := range darkest {
		t.Logf("%s had no live server for %v after the survivors noticed", id, d.Round(time.Millisecond))
		if d > 3*time.Second {
			t.Errorf("%s had no server for %v after the survivors noticed %s gone, with its weights in live peers' stores; want at most 3 s",
				id, d.Round(time.Millisecond), name)
		}
	}
	if !settled {
		for _, p := range survivors {
			cv := p.Cluster()
			t.Logf("%s: plan %v, serving %v", p.cfg.NodeName, cv.Assignment, cv.Serving)
		}
		t.Fatalf("variants still without a server 40 s after %s stopped", name)
	}

	// The cluster settles: every variant served by the members the plan
	// gives it, bridges handed back once the bare peer has its weights.
	converged(t, survivors, 30*time.Second)
	for id, hs := range survivors[0].Cluster().Assignment {
		if slices.Contains(hs, names[3]) && !peers[3].store.Has(peers[3].manifest.Variants[peers[3].index[id]].SHA256) {
			t.Errorf("the bare peer serves %s without its weights in its store", id)
		}
	}
	img := digitPNG(t)
	nv := len(survivors[0].manifest.Variants)
	for _, p := range survivors {
		if res, err := p.Classify(context.Background(), Request{Image: img, Quorum: nv}); err != nil {
			t.Errorf("%s, every variant required after the hand-over: %v (%+v)", p.cfg.NodeName, err, res)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func allZero(m map[string]time.Time) bool {
	for _, t := range m {
		if !t.IsZero() {
			return false
		}
	}
	return true
}
