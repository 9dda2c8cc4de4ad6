package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/varpar/varpar/peer/api"
	"github.com/varpar/varpar/peer/api/apitest"
)

// TestPoolHedgesAStalledPeer: the first peer accepts the request and
// stalls; with a hedge delay, the second peer's answer is used within the
// delay and a little, the stalled request is cancelled, and the stalled
// peer is skipped until its dead time is over.
func TestPoolHedgesAStalledPeer(t *testing.T) {
	before := goleak.IgnoreCurrent()
	st, stSrv := apitest.NewStalled(t)
	live := httptest.NewServer(&fakePeer{})
	defer live.Close()
	const hedge, deadFor = 100 * time.Millisecond, 600 * time.Millisecond
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	p := newPool(t, []string{stSrv.URL, live.URL}, deadFor, hc)
	p.SetHedge(hedge)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	resp, tr, err := p.From(0).ClassifyTrace(ctx, []byte("img"), api.Params{})
	took := time.Since(start)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("first peer stalled: %+v, %v; want the second peer's answer", resp, err)
	}
	if took < hedge || took > hedge+400*time.Millisecond {
		t.Errorf("answered after %v, want the hedge delay %v and a little", took, hedge)
	}
	if tr.URL != live.URL || tr.Tried != 2 {
		t.Errorf("trace %+v, want the live peer %s after 2 tried", tr, live.URL)
	}
	select {
	case <-st.Cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the stalled peer's request was not cancelled")
	}
	marked := time.Now()
	// Within the dead time, requests entering at the stalled peer go to the
	// live one straight away.
	for range 3 {
		start := time.Now()
		if _, tr, err := p.From(0).ClassifyTrace(ctx, []byte("img"), api.Params{}); err != nil || tr.URL != live.URL {
			t.Fatalf("within the dead time: %+v, %v; want the live peer", tr, err)
		}
		if took := time.Since(start); took >= hedge && time.Since(marked) < deadFor-hedge {
			t.Errorf("within the dead time, answered after %v: the stalled peer was tried first", took)
		}
	}
	if n := st.Got.Load(); n != 1 && time.Since(marked) < deadFor-hedge {
		t.Errorf("%d requests to the stalled peer within its dead time, want 1", n)
	}
	// After it, the stalled peer is tried first again.
	for deadline := time.Now().Add(5 * time.Second); st.Got.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if _, err := p.From(0).Classify(ctx, []byte("img"), api.Params{}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled peer was never tried again")
		}
	}
	if since := time.Since(marked); since < deadFor-hedge {
		t.Errorf("stalled peer tried again %v after it was marked, before its dead time %v", since, deadFor)
	}
	hc.CloseIdleConnections()
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// TestPoolWithoutHedgeWaitsForAStalledPeer: hedge 0 keeps the old
// behaviour: the request waits for its peer until its deadline.
func TestPoolWithoutHedgeWaitsForAStalledPeer(t *testing.T) {
	st, stSrv := apitest.NewStalled(t)
	live := &fakePeer{}
	liveSrv := httptest.NewServer(live)
	defer liveSrv.Close()
	p := newPool(t, []string{stSrv.URL, liveSrv.URL}, 0, &http.Client{})
	p.SetHedge(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := p.From(0).Classify(ctx, []byte("img"), api.Params{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no hedging, first peer stalled: %v; want the deadline", err)
	}
	if st.Got.Load() != 1 || len(live.got) != 0 {
		t.Errorf("requests: stalled %d, live %d; want 1 and 0", st.Got.Load(), len(live.got))
	}
}

// TestPoolHedgeBothStalled: every peer stalls; the request ends with its
// context's deadline and leaves no goroutine behind.
func TestPoolHedgeBothStalled(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a, aSrv := apitest.NewStalled(t)
	b, bSrv := apitest.NewStalled(t)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	p := newPool(t, []string{aSrv.URL, bSrv.URL}, 0, hc)
	p.SetHedge(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.From(0).Classify(ctx, []byte("img"), api.Params{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("both peers stalled: %v; want the deadline", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v, want about the 300ms deadline", took)
	}
	if a.Got.Load() != 1 || b.Got.Load() != 1 {
		t.Errorf("requests: %d and %d; want one to each", a.Got.Load(), b.Got.Load())
	}
	for _, s := range []*apitest.Stalled{a, b} {
		select {
		case <-s.Cancelled:
		case <-time.After(2 * time.Second):
			t.Fatal("a stalled peer's request was not cancelled")
		}
	}
	hc.CloseIdleConnections()
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}
