package peer

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/varpar/varpar/p2pnet/pb"
)

// TestInferenceCancelledIsNotDeadline: a call the asking peer cancels (it
// decided without this answer) counts as result="cancelled"; a call whose
// deadline passes counts as DEADLINE. Both used to count as DEADLINE.
func TestInferenceCancelledIsNotDeadline(t *testing.T) {
	s, img := testServer(t, 4)
	defer s.stop()
	p := &Peer{metrics: newMetrics()}
	release := hold(s) // queued behind a long computation
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, code, _ := p.compute(ctx, s, input{img: img}, 3); code != pb.ErrorCode_DEADLINE {
		t.Fatalf("cancelled call: code %v, want DEADLINE on the wire", code)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p.compute(ctx, s, input{img: img}, 3)

	for _, c := range []struct {
		result string
		want   float64
	}{{"cancelled", 1}, {"DEADLINE", 1}} {
		if got := testutil.ToFloat64(p.metrics.served.WithLabelValues(s.id, c.result)); got != c.want {
			t.Errorf("varpar_inferences_total{result=%q} = %v, want %v", c.result, got, c.want)
		}
	}
}

// TestGossipJunkCounted: datagrams not sealed with the cluster key, sent to
// a peer's gossip port, count in varpar_gossip_rejected_total{reason="decrypt"}.
func TestGossipJunkCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a peer")
	}
	p := startPeers(t, 1)[0]
	defer p.Shutdown()
	conn, err := net.Dial("udp", p.GossipAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 50
	for range sent {
		conn.Write([]byte("junk junk junk junk"))
	}
	got := func() float64 { return testutil.ToFloat64(p.metrics.gossipBad.WithLabelValues("decrypt")) }
	for deadline := time.Now().Add(5 * time.Second); got() < sent; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("varpar_gossip_rejected_total{reason=\"decrypt\"} = %v after %d junk datagrams", got(), sent)
		}
	}
}
