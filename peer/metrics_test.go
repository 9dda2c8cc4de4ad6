package peer

import (
	"context"
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
	if _, code, _ := p.compute(ctx, s, img, 3); code != pb.ErrorCode_DEADLINE {
		t.Fatalf("cancelled call: code %v, want DEADLINE on the wire", code)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p.compute(ctx, s, img, 3)

	for _, c := range []struct {
		result string
		want   float64
	}{{"cancelled", 1}, {"DEADLINE", 1}} {
		if got := testutil.ToFloat64(p.metrics.served.WithLabelValues(s.id, c.result)); got != c.want {
			t.Errorf("varpar_inferences_total{result=%q} = %v, want %v", c.result, got, c.want)
		}
	}
}
