package peer

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// haveIPv6Loopback reports whether this machine can listen on ::1 for both
// what memberlist uses (UDP and TCP) and libp2p (TCP).
func haveIPv6Loopback() error {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return err
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		return err
	}
	return pc.Close()
}

// localFusion is the family's own answer for img, fused here with package nn
// and package consensus and no network: what a cluster must answer.
func localFusion(tb testing.TB, p *Peer, img []byte, k int) string {
	tb.Helper()
	decoded, err := nn.DecodeImage(bytes.NewReader(img), p.cfg.MaxPixels)
	if err != nil {
		tb.Fatal(err)
	}
	pool := nn.NewPool(1)
	defer pool.Close()
	var answers []consensus.Answer
	for i, v := range p.manifest.Variants {
		m, err := format.LoadVariant(p.famDir, v)
		if err != nil {
			tb.Fatal(err)
		}
		a := consensus.Answer{Variant: i, Indices: make([]int32, k), Probs: make([]float32, k)}
		m.NewRunner(pool).TopK(decoded, a.Indices, a.Probs)
		answers = append(answers, a)
	}
	scores := make([]float64, len(p.manifest.Classes))
	if err := consensus.Fuse(answers, p.weights, scores); err != nil {
		tb.Fatal(err)
	}
	return p.manifest.Classes[consensus.Argmax(scores)]
}

// TestPeersOverIPv6 runs two peers whose gossip, libp2p and HTTP addresses
// are all on ::1: the second joins the first's seed, they share the family's
// variants out, and a classify on one fans out over IPv6 to the variants the
// other serves and answers what the family answers locally. (Before p2pnet
// built the addresses, a peer made /ip4/::1 of an IPv6 member and left it
// out of its view without a word, so the two never converged.)
func TestPeersOverIPv6(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two peers")
	}
	if err := haveIPv6Loopback(); err != nil {
		t.Skipf("this machine has no IPv6 loopback (::1): %v", err)
	}
	before := goleak.IgnoreCurrent()
	defer func() {
		probesDone(5 * time.Second)
		goleak.VerifyNone(t, before)
	}()
	peers := startPeers(t, 2, func(c *Config) {
		c.GossipAddr, c.P2PAddr, c.HTTPAddr = "[::1]:0", "[::1]:0", "[::1]:0"
	})
	defer func() {
		for _, p := range peers {
			p.Shutdown()
		}
	}()
	if seed := peers[1].cfg.Seeds[0]; !strings.HasPrefix(seed, "[::1]:") {
		t.Fatalf("second peer's seed is %q, want [::1]:port", seed)
	}
	converged(t, peers, 30*time.Second)
	for _, p := range peers {
		for _, m := range p.Cluster().Members {
			if !strings.HasPrefix(m.Addr, "[::1]:") {
				t.Errorf("%s sees %s at %s, want an address on ::1", p.cfg.NodeName, m.Name, m.Addr)
			}
		}
	}

	img := digitPNG(t)
	init, other := peers[0], peers[1].cfg.NodeName
	nv := len(init.manifest.Variants)
	const k = 3
	res, err := init.Classify(context.Background(), Request{Image: img, K: k, Quorum: nv, Deadline: 10 * time.Second})
	if err != nil {
		t.Fatalf("classify over IPv6: %v", err)
	}
	remote := 0
	for id, tm := range res.Timings {
		if tm.Member == other {
			remote++
		} else if tm.Member != init.cfg.NodeName {
			t.Errorf("variant %s answered by %q, a member of neither", id, tm.Member)
		}
	}
	if remote == 0 || len(res.Answered) != nv {
		t.Fatalf("answered %v with timings %v; want all %d variants, some by %s over IPv6", res.Answered, res.Timings, nv, other)
	}
	if want := localFusion(t, init, img, k); res.Class != want {
		t.Errorf("cluster over IPv6 answered %q, the family answers %q", res.Class, want)
	}
	t.Logf("class %s (confidence %.3f), %d of %d variants from %s", res.Class, res.Confidence, remote, nv, other)
}
