package gossip

import (
	"fmt"
	"testing"
	"time"
)

// Devices boot in any order: n1 names only n0 as its seed, but n0 is not up
// yet, and n2 joins n1 first. {n1, n2} must still find n0 once it starts,
// although n1 is no longer alone (a node that sees others keeps knocking on
// the seeds that are not members).
func TestSeedStartedLateMergesTwoHalves(t *testing.T) {
	port := freePort(t)
	seed0 := fmt.Sprintf("127.0.0.1:%d", port)
	c1 := testConfig(t, "n1")
	c1.Seeds = []string{seed0}
	n1 := startNode(t, c1)
	c2 := testConfig(t, "n2")
	c2.Seeds = []string{addrOf(n1)}
	n2 := startNode(t, c2)
	waitFor(t, 5*time.Second, "n1 and n2 see each other", func() error { return allSee([]*Gossip{n1, n2}, n1, n2) })

	c0 := testConfig(t, "n0")
	c0.BindPort = port // no seeds: it waits for others
	n0 := startNode(t, c0)
	waitFor(t, 10*time.Second, "the halves merge", func() error {
		return allSee([]*Gossip{n0, n1, n2}, n0, n1, n2)
	})
}
