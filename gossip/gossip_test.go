package gossip

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// metaBox is a node's metadata that a test can change.
type metaBox struct {
	mu sync.Mutex
	b  []byte
}

func (m *metaBox) get() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b
}

func (m *metaBox) set(b []byte) {
	m.mu.Lock()
	m.b = b
	m.mu.Unlock()
}

func TestJoinThroughOneSeedAndMetadata(t *testing.T) {
	const n = 4
	metas := make([]*metaBox, n)
	changes := make([]atomic.Int64, n)
	gs := startCluster(t, n, func(i int, cfg *Config) {
		metas[i] = &metaBox{b: fmt.Appendf(nil, "meta-%d", i)}
		cfg.Meta = metas[i].get
		cfg.OnChange = func() { changes[i].Add(1) }
	})
	for _, g := range gs {
		if err := waitJoined(t, g, time.Second); err != nil {
			t.Errorf("%s: WaitJoined: %v", g.cfg.Name, err)
		}
	}
	for _, o := range gs {
		for i, g := range gs {
			m, ok := member(o.Members(), g.cfg.Name)
			if !ok || string(m.Meta) != fmt.Sprintf("meta-%d", i) || m.State != StateAlive {
				t.Errorf("%s sees %s as %+v, want meta-%d, alive", o.cfg.Name, g.cfg.Name, m, i)
			}
		}
	}
	waitFor(t, time.Second, "OnChange called on every node", func() error {
		for i := range changes {
			if changes[i].Load() == 0 {
				return fmt.Errorf("n%d: no call", i)
			}
		}
		return nil
	})

	// The caller owns what Members returns.
	ms := gs[0].Members()
	ms[0].Meta[0] = 'X'
	if again := gs[0].Members(); again[0].Meta[0] == 'X' {
		t.Errorf("Members shares its metadata with the caller")
	}

	before := changes[0].Load()
	metas[2].set([]byte("meta-2, second version"))
	if err := gs[2].UpdateMeta(2 * time.Second); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	waitFor(t, 3*time.Second, "the new metadata everywhere", func() error {
		for _, o := range gs {
			if m, _ := member(o.Members(), "n2"); string(m.Meta) != "meta-2, second version" {
				return fmt.Errorf("%s sees n2's meta %q", o.cfg.Name, m.Meta)
			}
		}
		return nil
	})
	waitFor(t, time.Second, "OnChange after the update", func() error {
		if changes[0].Load() == before {
			return fmt.Errorf("no call on n0")
		}
		return nil
	})
}

func TestShutdownWithoutLeaveIsFailure(t *testing.T) {
	gs := startCluster(t, 3, nil)
	start := time.Now()
	if err := gs[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Worst case: probed after a full round of the other nodes, then the
	// longest, unconfirmed suspicion (memberlist's SuspicionMaxTimeoutMult
	// of 6), plus a second for the scheduler.
	bound := 4*testProbeInterval + 6*testSuspicionMult*testProbeInterval + time.Second
	waitFor(t, bound, "n2 reported failed", func() error {
		for _, o := range gs[:2] {
			if m, ok := member(o.AllMembers(), "n2"); !ok || m.State != StateDead {
				return fmt.Errorf("%s: n2 is %+v", o.cfg.Name, m)
			}
			if _, ok := member(o.Members(), "n2"); ok {
				return fmt.Errorf("%s still lists n2", o.cfg.Name)
			}
		}
		return nil
	})
	t.Logf("failure detected after %v (bound %v)", time.Since(start).Round(time.Millisecond), bound)
	if err := allSee(gs[:2], gs[:2]...); err != nil {
		t.Error(err)
	}
}

func TestLeaveIsSeenAsLeft(t *testing.T) {
	gs := startCluster(t, 3, nil)
	start := time.Now()
	if err := gs[2].Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := gs[2].Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	mustBe(t, gs[2].UpdateMeta(time.Second), ErrLeft)
	// Far sooner than the failure detector could have: no suspicion period.
	waitFor(t, testSuspicionMult*testProbeInterval, "n2 reported left", func() error {
		for _, o := range gs[:2] {
			if m, ok := member(o.AllMembers(), "n2"); !ok || m.State != StateLeft {
				return fmt.Errorf("%s: n2 is %+v", o.cfg.Name, m)
			}
		}
		return nil
	})
	t.Logf("leave seen after %v", time.Since(start).Round(time.Millisecond))
	if err := gs[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	holds(t, 5*testProbeInterval, "n2 still left after its shutdown", func() error {
		for _, o := range gs[:2] {
			if m, _ := member(o.AllMembers(), "n2"); m.State != StateLeft {
				return fmt.Errorf("%s: n2 is %+v", o.cfg.Name, m)
			}
		}
		return allSee(gs[:2], gs[:2]...)
	})
}

func TestSeedStartingLateIsJoined(t *testing.T) {
	port := freePort(t)
	bcfg := testConfig(t, "b")
	bcfg.Seeds = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	b := startNode(t, bcfg)

	err := waitJoined(t, b, 300*time.Millisecond)
	mustBe(t, err, context.DeadlineExceeded)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("connection refused")) {
		t.Errorf("WaitJoined before the seed is up: %v, want the last attempt's connection refused", err)
	}

	acfg := testConfig(t, "a")
	acfg.BindPort = port
	a := startNode(t, acfg)
	if err := waitJoined(t, b, 5*time.Second); err != nil {
		t.Fatalf("WaitJoined after the seed came up: %v", err)
	}
	waitFor(t, 2*time.Second, "a and b see each other", func() error { return allSee([]*Gossip{a, b}, a, b) })
}

func TestRejoinAfterEveryoneElseFailed(t *testing.T) {
	port := freePort(t)
	acfg := testConfig(t, "a")
	acfg.BindPort = port
	a := startNode(t, acfg)
	bcfg := testConfig(t, "b")
	bcfg.Seeds = []string{addrOf(a)}
	b := startNode(t, bcfg)
	waitFor(t, 3*time.Second, "a and b together", func() error { return allSee([]*Gossip{a, b}, a, b) })

	// a, the only seed, dies; b is alone. a comes back with no seeds of its
	// own: only b's rejoining can bring them together.
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 6*time.Second, "b alone", func() error { return allSee([]*Gossip{b}, b) })
	a2 := startNode(t, acfg)
	waitFor(t, 5*time.Second, "a and b together again", func() error { return allSee([]*Gossip{a2, b}, a2, b) })
}

func TestLifecycle(t *testing.T) {
	g, err := New(testConfig(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	mustBe(t, g.Leave(time.Second), ErrNotStarted)
	mustBe(t, g.UpdateMeta(time.Second), ErrNotStarted)
	mustBe(t, g.WaitJoined(context.Background()), ErrNotStarted)
	if ms := g.Members(); ms != nil {
		t.Errorf("Members before Start: %v", ms)
	}
	if host, port := g.LocalAddr(); host != "" || port != 0 {
		t.Errorf("LocalAddr before Start: %s %d", host, port)
	}

	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	mustBe(t, g.Start(), ErrStarted)
	if err := g.WaitJoined(context.Background()); err != nil {
		t.Errorf("WaitJoined with no seeds: %v", err)
	}
	if host, port := g.LocalAddr(); host != "127.0.0.1" || port == 0 {
		t.Errorf("LocalAddr: %s %d", host, port)
	}
	if got := names(g.Members()); len(got) != 1 || got[0] != "x@"+addrOf(g) {
		t.Errorf("Members alone: %v", got)
	}
	if err := g.UpdateMeta(time.Second); err != nil {
		t.Errorf("UpdateMeta alone: %v", err)
	}

	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Shutdown(); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := g.Shutdown(); err != nil {
		t.Errorf("Shutdown again: %v", err)
	}
	mustBe(t, g.Leave(time.Second), ErrShutdown)
	mustBe(t, g.UpdateMeta(time.Second), ErrShutdown)
	mustBe(t, g.Start(), ErrShutdown)
	mustBe(t, g.WaitJoined(context.Background()), ErrShutdown)
	if ms := g.Members(); ms != nil {
		t.Errorf("Members after Shutdown: %v", ms)
	}

	// Shutdown before Start.
	h, err := New(testConfig(t, "y"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Shutdown(); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	mustBe(t, h.Start(), ErrShutdown)
}

func TestShutdownStopsAJoinLoop(t *testing.T) {
	// A seed that never answers: the loop is retrying (or sleeping) when
	// Shutdown comes, and must end with it (TestMain checks for leaks).
	cfg := testConfig(t, "lonely")
	cfg.Seeds = []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	g := startNode(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.WaitJoined(ctx) }()
	defer cancel()
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		mustBe(t, err, ErrShutdown)
	case <-time.After(2 * time.Second):
		t.Fatal("WaitJoined did not return on Shutdown")
	}
}

func TestMetadataSize(t *testing.T) {
	meta := &metaBox{b: bytes.Repeat([]byte{'m'}, MetaMaxSize+1)}
	cfg := testConfig(t, "big")
	cfg.Meta = meta.get
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustBe(t, g.Start(), ErrMetaTooLarge)
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// The limit itself fits, and a later oversized update is refused while
	// the cluster keeps the last good metadata.
	gs := startCluster(t, 2, func(i int, cfg *Config) {
		if i == 1 {
			meta.set(bytes.Repeat([]byte{'m'}, MetaMaxSize))
			cfg.Meta = meta.get
		}
	})
	if m, _ := member(gs[0].Members(), "n1"); len(m.Meta) != MetaMaxSize {
		t.Fatalf("n0 sees %d bytes of n1's metadata, want %d", len(m.Meta), MetaMaxSize)
	}
	meta.set(bytes.Repeat([]byte{'m'}, MetaMaxSize+1))
	mustBe(t, gs[1].UpdateMeta(time.Second), ErrMetaTooLarge)
	meta.set([]byte("small"))
	if err := gs[1].UpdateMeta(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "n0 sees the small metadata", func() error {
		if m, _ := member(gs[0].Members(), "n1"); string(m.Meta) != "small" {
			return fmt.Errorf("n1's meta is %d bytes", len(m.Meta))
		}
		return nil
	})
}

// Every node may share one seed list, its own address included: joining
// itself does not count, and the first node is joined once another joins it.
func TestOwnAddressAmongSeeds(t *testing.T) {
	port := freePort(t)
	self := fmt.Sprintf("127.0.0.1:%d", port)
	acfg := testConfig(t, "a")
	acfg.BindPort = port
	acfg.Seeds = []string{self}
	a := startNode(t, acfg)
	mustBe(t, waitJoined(t, a, 300*time.Millisecond), context.DeadlineExceeded)

	bcfg := testConfig(t, "b")
	bcfg.Seeds = []string{self}
	b := startNode(t, bcfg)
	for _, g := range []*Gossip{a, b} {
		if err := waitJoined(t, g, 3*time.Second); err != nil {
			t.Errorf("%s: WaitJoined: %v", g.cfg.Name, err)
		}
	}
	waitFor(t, 2*time.Second, "a and b together", func() error { return allSee([]*Gossip{a, b}, a, b) })
}

// Shutdown returns only after the goroutines of this package have ended:
// an OnChange in progress finishes first, and none starts afterwards.
func TestShutdownWaitsForOnChange(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var calls atomic.Int64
	cfg := testConfig(t, "x")
	cfg.OnChange = func() {
		calls.Add(1)
		kick(entered)
		<-release
	}
	g := startNode(t, cfg)
	select {
	case <-entered: // this node's own arrival is a change
	case <-time.After(2 * time.Second):
		t.Fatal("no OnChange after Start")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Shutdown(); err != nil {
			t.Error(err)
		}
	}()
	holds(t, 200*time.Millisecond, "Shutdown waiting for OnChange", func() error {
		select {
		case <-done:
			return fmt.Errorf("Shutdown returned while OnChange was running")
		default:
			return nil
		}
	})
	close(release)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Shutdown did not return once OnChange did")
	}
	n := calls.Load()
	g.changed() // what a late memberlist callback would do
	holds(t, 100*time.Millisecond, "no OnChange after Shutdown", func() error {
		if calls.Load() != n {
			return fmt.Errorf("OnChange called after Shutdown returned")
		}
		return nil
	})
}
