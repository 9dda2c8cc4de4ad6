package peer

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestReadyAfterASettledView: a peer alone (no seeds) becomes ready only
// once its view and plan have not changed for readySettle; it used to be
// ready the moment it served its variants.
func TestReadyAfterASettledView(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a peer")
	}
	p := startPeers(t, 1)[0]
	defer p.Shutdown()
	var last string
	changed := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		cv := p.Cluster()
		if shape := fmt.Sprint(cv.Members, cv.Serving, cv.Assignment); shape != last {
			last, changed = shape, time.Now()
		}
		if ok, _ := p.Ready(); ok {
			if stable := time.Since(changed); stable < readySettle-100*time.Millisecond {
				t.Fatalf("ready %v after the view or plan last changed, want at least %v", stable, readySettle)
			}
			return
		}
		if time.Now().After(deadline) {
			_, why := p.Ready()
			t.Fatalf("not ready after 30 s: %s", why)
		}
	}
}

// TestReadyWaitsForAnotherMember: a peer whose seed is another node is not
// ready while no other member has seen it, although it serves every variant
// (alone, the plan gives it all of them); it used to say ready. Once a member
// joins it, it is.
func TestReadyWaitsForAnotherMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two peers")
	}
	// A seed address where nothing answers yet.
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := ln.LocalAddr().String()
	ln.Close()
	p := startPeers(t, 1, func(c *Config) { c.Seeds = []string{seed} })[0]
	defer p.Shutdown()
	servesPlan := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		mine := p.plan.Serving[p.cfg.NodeName]
		for _, id := range mine {
			if p.servers[id] == nil {
				return false
			}
		}
		return len(mine) > 0
	}
	// Its own view lists what it serves once its metadata is updated, a
	// moment after the servers start.
	inView := func() bool {
		for _, ms := range p.Cluster().Serving {
			if len(ms) > 0 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !servesPlan() || !inView(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the peer does not serve its plan, in its own view, after 30 s")
		}
	}
	// Well past the settle time: still waiting for another member.
	for end := time.Now().Add(readySettle + time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok, why := p.Ready(); ok || !strings.Contains(why, "another member") {
			t.Fatalf("alone with a seed elsewhere: ready %v (%s), want not ready, waiting for another member", ok, why)
		}
	}

	// A second peer joins it.
	q := startPeers(t, 1, func(c *Config) { c.NodeName, c.ClusterKey, c.Seeds = "q", p.cfg.ClusterKey, []string{p.GossipAddr()} })[0]
	defer q.Shutdown()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		okP, whyP := p.Ready()
		okQ, whyQ := q.Ready()
		if okP && okQ {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a member joined: p ready %v (%s), q ready %v (%s)", okP, whyP, okQ, whyQ)
		}
	}
}
