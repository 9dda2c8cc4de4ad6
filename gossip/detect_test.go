package gossip

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// memberlistLAN is the failure detection this package used before it was
// tuned for a lab: memberlist's LAN profile with a patient suspicion.
func memberlistLAN(c *Config) {
	c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult, c.SuspicionMaxMult = time.Second, 500*time.Millisecond, 5, 6
}

// detectionTime starts n real nodes on loopback with the failure detection
// of DefaultConfig (edited by timing), stops one without leaving (as kill -9
// does) and returns how long until every other node no longer lists it.
func detectionTime(t *testing.T, n int, timing func(*Config)) time.Duration {
	t.Helper()
	// Registered first, run last: after the nodes' Shutdown, which does not
	// wait for a probe in flight; at these timings one lasts up to a second.
	t.Cleanup(func() { probesDone(5 * time.Second) })
	def := DefaultConfig()
	gs := startCluster(t, n, func(i int, c *Config) {
		c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult, c.SuspicionMaxMult = def.ProbeInterval, def.ProbeTimeout, def.SuspicionMult, def.SuspicionMaxMult
		c.GossipInterval, c.PushPullInterval = def.GossipInterval, def.PushPullInterval
		if timing != nil {
			timing(c)
		}
	})
	victim, rest := gs[n-1], gs[:n-1]
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 30*time.Second, "the stopped node gone from every view", func() error {
		for _, g := range rest {
			if slices.ContainsFunc(g.Members(), func(m Member) bool { return m.Name == victim.cfg.Name }) {
				return fmt.Errorf("%s still lists %s", g.cfg.Name, victim.cfg.Name)
			}
		}
		return nil
	})
	return time.Since(start)
}

// TestDetectionTime measures how long 3 nodes take to drop a fourth that
// stopped without leaving, with the defaults and with memberlist's LAN
// profile as this package used it before, and holds the defaults to half.
func TestDetectionTime(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for failure detection at real timings")
	}
	tuned := detectionTime(t, 4, nil)
	lan := detectionTime(t, 4, memberlistLAN)
	t.Logf("detection with 4 nodes on loopback: defaults %v, memberlist LAN profile %v", tuned.Round(10*time.Millisecond), lan.Round(10*time.Millisecond))
	if tuned > 5*time.Second || tuned > lan*3/4 {
		t.Errorf("detection took %v with the defaults (memberlist LAN: %v); want under 5 s and well under LAN", tuned, lan)
	}
}

// probesDone waits, at most timeout, until no memberlist probe is running.
func probesDone(timeout time.Duration) {
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := runtime.Stack(buf, true); !bytes.Contains(buf[:n], []byte("memberlist.(*Memberlist).probeNode(")) {
			return
		}
	}
}
