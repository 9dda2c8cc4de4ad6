package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/varpar/varpar/peer/api"
)

// startPeers starts n peers in this process on loopback (ports chosen by the
// kernel), the first one the others' seed, with the built-in family.
func startPeers(t *testing.T, n int, modify ...func(*Config)) []*Peer {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	if err := NewClusterKey(key); err != nil {
		t.Fatal(err)
	}
	var peers []*Peer
	for i := range n {
		cfg := DefaultConfig()
		cfg.NodeName = fmt.Sprintf("p%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.NodeName)
		cfg.GossipAddr, cfg.P2PAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.ClusterKey = key
		cfg.Threads = 1
		if i > 0 {
			cfg.Seeds = []string{peers[0].GossipAddr()}
		}
		for _, m := range modify {
			m(&cfg)
		}
		p, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	return peers
}

// converged waits until every peer is ready and sees every variant served by
// the members the plan gives it, the same in every peer's view.
func converged(t *testing.T, peers []*Peer, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok := true
		var first map[string][]string
		for _, p := range peers {
			ready, _ := p.Ready()
			cv := p.Cluster()
			ok = ok && ready && len(cv.Members) == len(peers)
			for _, v := range p.manifest.Variants {
				// Settled: served, and by exactly the members the plan says.
				ok = ok && len(cv.Serving[v.ID]) > 0 && slices.Equal(cv.Serving[v.ID], cv.Assignment[v.ID])
			}
			if first == nil {
				first = cv.Serving
			} else {
				for id, ms := range cv.Serving {
					ok = ok && slices.Equal(ms, first[id])
				}
			}
		}
		if ok {
			t.Logf("converged in %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			for _, p := range peers {
				ready, why := p.Ready()
				t.Logf("%s: ready %v (%s), serving %v", p.cfg.NodeName, ready, why, p.Cluster().Serving)
			}
			t.Fatalf("peers did not converge in %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func digitPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 4; y < 24; y++ { // a vertical stroke: a one
		img.Pix[y*28+13], img.Pix[y*28+14] = 255, 255
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPeersInProcess runs three peers in this process: they converge, every
// one answers a request with all variants and the same decision, a peer
// that stops (without leaving) costs variants but no request fails, and once
// all have shut down no goroutine is left behind.
func TestPeersInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three peers")
	}
	before := goleak.IgnoreCurrent()
	defer func() {
		// memberlist's Shutdown does not wait for a probe in flight; such a
		// probe ends by itself within a probe interval (1 s here).
		probesDone(5 * time.Second)
		goleak.VerifyNone(t, before)
	}()
	peers := startPeers(t, 3)
	defer func() {
		for _, p := range peers {
			p.Shutdown()
		}
	}()
	converged(t, peers, 30*time.Second)
	img := digitPNG(t)
	nv := len(peers[0].manifest.Variants)
	var first *api.Result
	for _, p := range peers {
		res, err := p.Classify(context.Background(), Request{Image: img, Quorum: nv})
		if err != nil {
			t.Fatalf("%s: %v", p.cfg.NodeName, err)
		}
		if len(res.Answered) != nv || !res.QuorumMet || len(res.Timings) != nv {
			t.Fatalf("%s: %d of %d variants answered (%v), timings %v", p.cfg.NodeName, len(res.Answered), nv, res.Missing, res.Timings)
		}
		if first == nil {
			first = res
		} else if res.Class != first.Class || res.Confidence != first.Confidence {
			t.Errorf("%s answered %s (%.6f), %s answered %s (%.6f)", p.cfg.NodeName, res.Class, res.Confidence,
				peers[0].cfg.NodeName, first.Class, first.Confidence)
		}
	}

	// The last peer stops without a word; the others keep answering while
	// the cluster notices and re-plans.
	peers[2].Shutdown()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		p := peers[i%2]
		res, err := p.Classify(context.Background(), Request{Image: img, Deadline: time.Second})
		if err != nil {
			t.Fatalf("request %d to %s after a peer stopped: %v", i, p.cfg.NodeName, err)
		}
		if res.Class != first.Class {
			t.Fatalf("request %d to %s, a peer down: class %s, want %s as before", i, p.cfg.NodeName, res.Class, first.Class)
		}
		replanned := true
		for _, q := range peers[:2] {
			cv := q.Cluster()
			replanned = replanned && len(cv.Members) == 2 && coveredBy(cv.Serving, "p0", "p1")
		}
		if replanned {
			break // all variants on the two left, in both views
		}
		if time.Now().After(deadline) {
			for _, q := range peers[:2] {
				cv := q.Cluster()
				ready, why := q.Ready()
				t.Logf("%s: ready %v (%s); plan %v; serving %v; answered %v", q.cfg.NodeName, ready, why, cv.Assignment, cv.Serving, res.Answered)
			}
			t.Fatalf("not re-planned 30 s after a peer stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range peers[:2] {
		res, err := p.Classify(context.Background(), Request{Image: img, Quorum: nv})
		if err != nil || res.Class != first.Class {
			t.Fatalf("%s after re-planning, all variants required: %v, %v (want class %s)", p.cfg.NodeName, res, err, first.Class)
		}
	}
	for _, p := range peers {
		p.Shutdown()
	}
}

// probesDone waits, at most timeout, until no memberlist probe is running.
func probesDone(timeout time.Duration) {
	buf := make([]byte, 1<<20)
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if n := runtime.Stack(buf, true); !bytes.Contains(buf[:n], []byte("memberlist.(*Memberlist).probeNode(")) {
			return
		}
	}
}

// coveredBy reports whether every variant in serving has a holder among names.
func coveredBy(serving map[string][]string, names ...string) bool {
	for _, ms := range serving {
		if !slices.ContainsFunc(ms, func(m string) bool { return slices.Contains(names, m) }) {
			return false
		}
	}
	return true
}

// TestSchedulerHedgesAndKeepsDeadlines: with five peers one variant has two
// replicas. While the replica asked first is stuck, the initiator asks the
// other after the hedge delay and decides with its answer; the stuck call is
// cancelled. With every replica of a variant stuck, a request returns at its
// deadline without that variant.
func TestSchedulerHedgesAndKeepsDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five peers")
	}
	before := goleak.IgnoreCurrent()
	defer func() {
		probesDone(5 * time.Second)
		goleak.VerifyNone(t, before)
	}()
	const hedge = 30 * time.Millisecond
	peers := startPeers(t, 5, func(c *Config) { c.HedgeDelay = hedge })
	defer func() {
		for _, p := range peers {
			p.Shutdown()
		}
	}()
	converged(t, peers, 30*time.Second)
	byName := map[string]*Peer{}
	for _, p := range peers {
		byName[p.cfg.NodeName] = p
	}
	// The doubled variant, and an initiator holding no replica of it.
	var variant string
	var holders []string
	for id, ms := range peers[0].Cluster().Serving {
		if len(ms) == 2 {
			variant, holders = id, ms
		}
	}
	if variant == "" {
		t.Fatalf("no variant with two replicas: %v", peers[0].Cluster().Serving)
	}
	var init *Peer
	for _, p := range peers {
		if !slices.Contains(holders, p.cfg.NodeName) {
			init = p
			break
		}
	}
	img := digitPNG(t)
	nv := len(init.manifest.Variants)
	// Which replica does the initiator ask first? The one replicasOf puts
	// first; make that one stuck.
	init.mu.Lock()
	view := init.view
	init.mu.Unlock()
	reps := init.replicasOf(view, variant, init.shas[init.index[variant]])
	first, second := byName[reps[0].Name], byName[reps[1].Name]
	first.mu.Lock()
	stuck := first.servers[variant]
	first.mu.Unlock()
	release := hold(stuck)

	start := time.Now()
	res, err := init.Classify(context.Background(), Request{Image: img, Quorum: nv, Deadline: 5 * time.Second})
	took := time.Since(start)
	if err != nil {
		release()
		t.Fatalf("with %s's %s stuck: %v", first.cfg.NodeName, variant, err)
	}
	if got := res.Timings[variant].Member; got != second.cfg.NodeName {
		t.Errorf("%s answered by %q, want the hedge to %s", variant, got, second.cfg.NodeName)
	}
	if took < hedge || took > 2*time.Second {
		t.Errorf("hedged request took %v, want at least the hedge delay %v and well under the deadline", took, hedge)
	}
	// The stuck call is cancelled once the decision is made: nothing waits
	// on the stuck server any more (its load counts waiting requests).
	for end := time.Now().Add(5 * time.Second); stuck.load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Errorf("the stuck replica still has %d requests waiting after the decision", stuck.load())
			break
		}
	}

	// Both replicas stuck and every variant required: the request ends at
	// its deadline, quorum not met, the variant missing.
	second.mu.Lock()
	stuck2 := second.servers[variant]
	second.mu.Unlock()
	release2 := hold(stuck2)
	const deadline = 300 * time.Millisecond
	start = time.Now()
	res, err = init.Classify(context.Background(), Request{Image: img, Quorum: nv, Deadline: deadline})
	took = time.Since(start)
	release()
	release2()
	if !errors.Is(err, ErrNoQuorum) || res == nil || !slices.Contains(res.Missing, variant) || len(res.Answered) != nv-1 {
		t.Fatalf("every variant required, %s stuck everywhere: got %+v, %v; want %s missing and ErrNoQuorum", variant, res, err, variant)
	}
	if took < deadline-50*time.Millisecond || took > deadline+150*time.Millisecond {
		t.Errorf("request with a %v deadline took %v", deadline, took)
	}
}
