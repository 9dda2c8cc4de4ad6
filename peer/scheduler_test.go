package peer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/varpar/varpar/consensus"
)

// fakeCluster is the scheduler's call function with replicas whose behaviour
// a test sets: each answers, fails, or hangs until its call is cancelled.
type fakeCluster struct {
	start time.Time
	mu    sync.Mutex
	calls []fakeCall
	do    map[string]func(ctx context.Context) (reply, error) // by replica name
}

type fakeCall struct {
	replica   string
	variant   int
	at        time.Duration // after start
	cancelled chan struct{} // closed when the call's context ended
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{start: time.Now(), do: map[string]func(ctx context.Context) (reply, error){}}
}

func (f *fakeCluster) call(ctx context.Context, r replica, variant int) (reply, error) {
	c := fakeCall{replica: r.Name, variant: variant, at: time.Since(f.start), cancelled: make(chan struct{})}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	do := f.do[r.Name]
	f.mu.Unlock()
	// Report the cancellation even when the call itself returned earlier:
	// what matters is that the scheduler ends every call's context.
	context.AfterFunc(ctx, func() { close(c.cancelled) })
	return do(ctx)
}

func (f *fakeCluster) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// answers says class c with probability 0.9.
func answers(c int32) func(context.Context) (reply, error) {
	return func(context.Context) (reply, error) {
		return reply{Indices: []int32{c}, Probs: []float32{0.9}, Compute: time.Millisecond}, nil
	}
}

// stuck hangs until its call is cancelled, as a replica whose queue never
// moves.
func stuck(ctx context.Context) (reply, error) {
	<-ctx.Done()
	return reply{}, ctx.Err()
}

func fails(context.Context) (reply, error) { return reply{}, errors.New("BUSY") }

// waitClosed polls until ch is closed or the deadline passes.
func waitClosed(tb testing.TB, ch <-chan struct{}, within time.Duration, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		tb.Fatalf("%s: not within %v", what, within)
	}
}

func newTestScheduler(tb testing.TB, hedge time.Duration) *scheduler {
	tb.Helper()
	before := goleak.IgnoreCurrent()
	s := newScheduler(hedge, zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel))
	tb.Cleanup(func() {
		// Every call the scheduler started must end once its request has.
		done := make(chan struct{})
		go func() { s.wait(); close(done) }()
		waitClosed(tb, done, 5*time.Second, "scheduler calls ending")
		goleak.VerifyNone(tb, before)
	})
	return s
}

// TestSchedulerHedgesAStuckReplica: the replica asked first hangs; after the
// hedge delay the next one is asked, its answer decides, and the hung call is
// cancelled.
func TestSchedulerHedgesAStuckReplica(t *testing.T) {
	const hedge = 40 * time.Millisecond
	s := newTestScheduler(t, hedge)
	f := newFakeCluster()
	f.do["a"], f.do["b"] = stuck, answers(2)
	// Far beyond the waits below, so that only the decision can cancel a.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	out, err := s.run(ctx, job{Replicas: [][]replica{{{Name: "a"}, {Name: "b"}}}, Weights: []float64{1},
		Classes: 3, Quorum: 1, Call: f.call})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if out.Decision.Outcome != consensus.Decided || out.Decision.Class != 2 || out.Arrivals[0].Member != "b" {
		t.Fatalf("got %v class %d from %q, want decided class 2 from the hedge to b", out.Decision.Outcome, out.Decision.Class, out.Arrivals[0].Member)
	}
	calls := f.recorded()
	if len(calls) != 2 || calls[0].replica != "a" || calls[1].replica != "b" {
		t.Fatalf("calls %+v, want a then b", calls)
	}
	if calls[1].at < hedge {
		t.Errorf("hedge to b sent after %v, before the hedge delay %v", calls[1].at, hedge)
	}
	if took > 2*time.Second {
		t.Errorf("hedged request took %v", took)
	}
	waitClosed(t, calls[0].cancelled, 2*time.Second, "the stuck call to a cancelled after the decision")
}

// TestSchedulerAllStuckEndsAtTheDeadline: every replica of one variant hangs;
// the request ends at its deadline without quorum, the other variant's answer
// in, and every hung call cancelled.
func TestSchedulerAllStuckEndsAtTheDeadline(t *testing.T) {
	s := newTestScheduler(t, 10*time.Millisecond)
	f := newFakeCluster()
	f.do["a"], f.do["b"], f.do["c"] = stuck, stuck, answers(1)
	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	out, err := s.run(ctx, job{Replicas: [][]replica{{{Name: "a"}, {Name: "b"}}, {{Name: "c"}}}, Weights: []float64{1, 1},
		Classes: 3, Quorum: 2, Call: f.call})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if out.Decision.Outcome != consensus.NoQuorum || out.Decision.Answered != 1 {
		t.Fatalf("got %v with %d answered, want NoQuorum with 1", out.Decision.Outcome, out.Decision.Answered)
	}
	if _, ok := out.Arrivals[0]; ok {
		t.Errorf("variant 0 answered though all its replicas hang: %+v", out.Arrivals[0])
	}
	if a, ok := out.Arrivals[1]; !ok || a.Member != "c" {
		t.Errorf("variant 1: %+v, want c's answer", out.Arrivals)
	}
	if took < deadline-20*time.Millisecond || took > deadline+150*time.Millisecond {
		t.Errorf("request with a %v deadline took %v", deadline, took)
	}
	calls := f.recorded()
	for _, c := range calls {
		waitClosed(t, c.cancelled, 5*time.Second, "call to "+c.replica+" cancelled at the deadline")
	}
	if names := len(calls); names != 3 {
		t.Errorf("%d calls, want a, its hedge b, and c: %+v", names, calls)
	}
}

// TestSchedulerFallsBackWhenAReplicaFails: the replica asked first refuses;
// the next one is asked at once, without waiting for the hedge delay.
func TestSchedulerFallsBackWhenAReplicaFails(t *testing.T) {
	s := newTestScheduler(t, time.Hour)
	f := newFakeCluster()
	f.do["a"], f.do["b"] = fails, answers(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	out, err := s.run(ctx, job{Replicas: [][]replica{{{Name: "a"}, {Name: "b"}}}, Weights: []float64{1},
		Classes: 3, Quorum: 1, Call: f.call})
	if err != nil {
		t.Fatal(err)
	}
	if out.Decision.Outcome != consensus.Decided || out.Arrivals[0].Member != "b" {
		t.Fatalf("got %v from %q, want decided by b", out.Decision.Outcome, out.Arrivals[0].Member)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("fallback took %v; it should not wait for the hedge", took)
	}
	// Every replica failing: the variant is missing, the request not decided.
	f.do["b"] = fails
	out, err = s.run(ctx, job{Replicas: [][]replica{{{Name: "a"}, {Name: "b"}}}, Weights: []float64{1},
		Classes: 3, Quorum: 1, Call: f.call})
	if err != nil || out.Decision.Outcome != consensus.NoQuorum || len(out.Arrivals) != 0 {
		t.Fatalf("all replicas failing: got %v, %+v, %v; want NoQuorum, nothing arrived", out.Decision.Outcome, out.Arrivals, err)
	}
}

// TestSchedulerPicksTheBestReplica: the local replica first; then the one
// with fewer calls outstanding; then the faster one, as measured by earlier
// calls.
func TestSchedulerPicksTheBestReplica(t *testing.T) {
	s := newTestScheduler(t, time.Hour)
	f := newFakeCluster()
	f.do["a"], f.do["b"], f.do["local"] = stuck, answers(1), answers(1)
	first := func(reps ...replica) string {
		t.Helper()
		n := len(f.recorded())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := s.run(ctx, job{Replicas: [][]replica{reps}, Weights: []float64{1}, Classes: 3, Quorum: 1, Call: f.call})
		if err != nil || out.Decision.Outcome != consensus.Decided {
			t.Fatalf("run: %v, %v", out.Decision.Outcome, err)
		}
		return f.recorded()[n].replica
	}
	a, b, local := replica{Name: "a"}, replica{Name: "b"}, replica{Name: "local", Local: true}

	// Nothing known: the given order, but the local replica first.
	if got := first(b, local); got != "local" {
		t.Errorf("first call to %s, want the local replica", got)
	}
	if got := first(b, a); got != "b" {
		t.Errorf("nothing known: first call to %s, want b (the order given)", got)
	}

	// a is busy: a call to it hangs in another request.
	busyCtx, busyCancel := context.WithCancel(context.Background())
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		s.run(busyCtx, job{Replicas: [][]replica{{a}}, Weights: []float64{1}, Classes: 3, Quorum: 1, Call: f.call})
	}()
	for end := time.Now().Add(5 * time.Second); !slices.ContainsFunc(f.recorded(), func(c fakeCall) bool { return c.replica == "a" }); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the busy call to a never started")
		}
	}
	if got := first(a, b); got != "b" {
		t.Errorf("a has a call outstanding: first call to %s, want the least loaded, b", got)
	}
	busyCancel()
	waitClosed(t, busy, 5*time.Second, "the busy request ending")

	// Both idle; a answers slowly, b fast: once a has answered, b is the
	// faster, whichever comes first in the list.
	f.mu.Lock()
	f.do["a"] = func(ctx context.Context) (reply, error) {
		select {
		case <-time.After(100 * time.Millisecond): // a slow replica
			return answers(1)(ctx)
		case <-ctx.Done():
			return reply{}, ctx.Err()
		}
	}
	f.mu.Unlock()
	if got := first(a); got != "a" {
		t.Fatalf("only a: first call to %s", got)
	}
	if got := first(a, b); got != "b" {
		t.Errorf("a slow, b fast, both idle: first call to %s, want b", got)
	}
}

// TestSchedulerForgetsDepartedMembers keeps the statistics table bounded.
func TestSchedulerForgetsDepartedMembers(t *testing.T) {
	s := newTestScheduler(t, time.Hour)
	f := newFakeCluster()
	f.do["a"], f.do["b"] = answers(0), answers(0)
	for _, r := range []string{"a", "b"} {
		if _, err := s.run(context.Background(), job{Replicas: [][]replica{{{Name: r}}}, Weights: []float64{1}, Classes: 3, Quorum: 1, Call: f.call}); err != nil {
			t.Fatal(err)
		}
	}
	s.forget(func(m string) bool { return m == "b" })
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.stats[replicaKey{"a", 0}]; ok || len(s.stats) != 1 {
		t.Errorf("after forgetting a: %v", s.stats)
	}
}

// fakeClock is the scheduler's clock of back-offs, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// says answers class c with probability p.
func says(c int32, p float32) func(context.Context) (reply, error) {
	return func(context.Context) (reply, error) {
		return reply{Indices: []int32{c}, Probs: []float32{p}, Compute: time.Millisecond}, nil
	}
}

// TestSchedulerRoutesAroundATimedOutReplica: a replica still out at the last
// request's deadline is not asked first on the next (it was, before the
// scheduler learnt from its calls, and the request waited the hedge delay or
// the whole deadline); after the back-off it is probed, first, and trusted
// again once it answers; a probe that fails doubles the back-off.
func TestSchedulerRoutesAroundATimedOutReplica(t *testing.T) {
	s := newTestScheduler(t, time.Hour) // no hedging: only the order decides who is asked
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	s.now = clock.Now
	f := newFakeCluster()
	f.do["a"], f.do["b"] = stuck, answers(1)
	reps := []replica{{Name: "a"}, {Name: "b"}}
	ask := func(deadline time.Duration) (outcome, string) {
		t.Helper()
		n := len(f.recorded())
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		out, err := s.run(ctx, job{Replicas: [][]replica{reps}, Weights: []float64{1}, Classes: 3, Quorum: 1, Call: f.call})
		if err != nil {
			t.Fatal(err)
		}
		s.wait() // the calls cancelled have returned, and the scheduler learnt from them
		return out, f.recorded()[n].replica
	}
	if out, first := ask(100 * time.Millisecond); first != "a" || out.Decision.Outcome != consensus.NoQuorum {
		t.Fatalf("first request: asked %s first, %v; want a (the order given), no quorum at the deadline", first, out.Decision.Outcome)
	}
	start := time.Now()
	out, first := ask(5 * time.Second)
	if first != "b" || out.Decision.Outcome != consensus.Decided || out.Arrivals[0].Member != "b" {
		t.Fatalf("after a timed out: asked %s first, %v from %q; want b first, decided by b", first, out.Decision.Outcome, out.Arrivals[0].Member)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("request after a timed out took %v", took)
	}
	if _, first := ask(5 * time.Second); first != "b" {
		t.Errorf("within the back-off: asked %s first, want b", first)
	}

	// The back-off over, a (now well again) is probed first and trusted.
	f.mu.Lock()
	f.do["a"] = answers(1)
	f.mu.Unlock()
	clock.Add(suspectBackoff)
	if out, first := ask(5 * time.Second); first != "a" || out.Arrivals[0].Member != "a" {
		t.Fatalf("after the back-off: asked %s first, answer from %q; want the probe to a", first, out.Arrivals[0].Member)
	}
	if s.suspected(replicaKey{"a", 0}) {
		t.Errorf("a answered its probe but is still suspected")
	}

	// Suspected again; a failing probe doubles the back-off.
	f.mu.Lock()
	f.do["a"] = fails
	f.mu.Unlock()
	// Both fakes answer in microseconds, so which of the two has the lower
	// measured latency is noise; make b the slower one, so that a, trusted
	// again, is asked first.
	s.mu.Lock()
	s.stats[replicaKey{"b", 0}].latency = time.Second
	s.mu.Unlock()
	if _, first := ask(5 * time.Second); first != "a" { // it fails, b answers
		t.Fatalf("a trusted again and faster than b: asked %s first, want a", first)
	}
	clock.Add(suspectBackoff)
	if _, first := ask(5 * time.Second); first != "a" {
		t.Fatalf("after the back-off: asked %s first, want the probe to a", first)
	}
	clock.Add(suspectBackoff) // half the doubled back-off
	if _, first := ask(5 * time.Second); first != "b" {
		t.Errorf("a failed its probe, back-off doubled: asked %s first after %v, want b", first, suspectBackoff)
	}
	clock.Add(suspectBackoff)
	if _, first := ask(5 * time.Second); first != "a" {
		t.Errorf("after the doubled back-off: asked %s first, want the probe to a", first)
	}
}

// TestSchedulerDoesNotWaitForASuspectedSoleReplica: a variant whose only
// replica timed out is still asked, but the next request decides without it
// once the other variants decide the answer, instead of waiting its deadline;
// it is still waited for when the quorum needs it.
func TestSchedulerDoesNotWaitForASuspectedSoleReplica(t *testing.T) {
	s := newTestScheduler(t, time.Hour)
	s.now = (&fakeClock{now: time.Unix(1e9, 0)}).Now // no back-off ends
	f := newFakeCluster()
	// b and c disagree, so that a's answer could decide: without suspicion
	// the request has to wait for a.
	f.do["a"], f.do["b"], f.do["c"] = stuck, says(1, 0.9), says(2, 0.8)
	j := job{Replicas: [][]replica{{{Name: "a"}}, {{Name: "b"}}, {{Name: "c"}}}, Weights: []float64{1, 1, 1},
		Classes: 3, Quorum: 2, Call: f.call}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	out, err := s.run(ctx, j)
	cancel()
	s.wait() // the call to a has returned, and the scheduler learnt from it
	if err != nil || out.Decision.Outcome != consensus.Decided || out.Decision.Early {
		t.Fatalf("first request: %v early %v, %v; want decided at the deadline with b and c", out.Decision.Outcome, out.Decision.Early, err)
	}

	const deadline = 3 * time.Second
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	n := len(f.recorded())
	start := time.Now()
	out, err = s.run(ctx, j)
	took := time.Since(start)
	if err != nil || out.Decision.Outcome != consensus.Decided || out.Decision.Class != 1 || !out.Decision.Early {
		t.Fatalf("a suspected: %+v, %v; want decided early, class 1", out.Decision, err)
	}
	if took > deadline/3 {
		t.Errorf("a suspected: the request took %v of its %v deadline; it should not wait for a", took, deadline)
	}
	s.wait() // the calls run on; the request did not wait for them
	if !slices.ContainsFunc(f.recorded()[n:], func(c fakeCall) bool { return c.replica == "a" }) {
		t.Errorf("a suspected but the only replica of variant 0: it should still be asked")
	}

	// Quorum 3 needs a: waited for up to the deadline, as before.
	j.Quorum = 3
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	out, err = s.run(ctx, j)
	if took := time.Since(start); err != nil || out.Decision.Outcome != consensus.NoQuorum || took < 180*time.Millisecond {
		t.Fatalf("quorum 3 with a suspected: %v after %v, %v; want no quorum at the 200ms deadline", out.Decision.Outcome, took, err)
	}
}

// TestSchedulerStopsWaitingForAFrozenReplica: the only replica of a variant
// stops answering (SIGSTOP, a partition) without ever having failed a call.
// The requests already waiting for it, two at once, stop waiting once its
// call has been out longer than its patience, and decide without it, long
// before their deadline (they waited the whole deadline before).
func TestSchedulerStopsWaitingForAFrozenReplica(t *testing.T) {
	s := newTestScheduler(t, time.Hour)
	f := newFakeCluster()
	// b and c disagree, so that a's answer could decide: the requests
	// cannot decide early while a is trusted.
	f.do["a"], f.do["b"], f.do["c"] = stuck, says(1, 0.9), says(2, 0.8)
	j := job{Replicas: [][]replica{{{Name: "a"}}, {{Name: "b"}}, {{Name: "c"}}}, Weights: []float64{1, 1, 1},
		Classes: 3, Quorum: 2, Call: f.call}
	const deadline = 3 * time.Second
	type res struct {
		out  outcome
		err  error
		took time.Duration
	}
	got := make(chan res, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			out, err := s.run(ctx, j)
			got <- res{out, err, time.Since(start)}
		}()
	}
	for range 2 {
		r := <-got
		if r.err != nil || r.out.Decision.Outcome != consensus.Decided || r.out.Decision.Class != 1 || !r.out.Decision.Early {
			t.Fatalf("a frozen: %+v, %v; want decided early, class 1", r.out.Decision, r.err)
		}
		if r.took > minPatience+deadline/10 {
			t.Errorf("a frozen: a request took %v of its %v deadline; want about a's patience, %v", r.took, deadline, minPatience)
		}
	}
	if !s.suspected(replicaKey{"a", 0}) {
		t.Errorf("a frozen past its patience but not suspected")
	}
}

// TestSchedulerPatienceFollowsLatency: a replica's patience is a multiple of
// its usual latency, within the bounds.
func TestSchedulerPatienceFollowsLatency(t *testing.T) {
	s := newScheduler(time.Hour, zerolog.Nop())
	for _, c := range []struct{ latency, want time.Duration }{
		{0, minPatience},
		{time.Millisecond, minPatience},
		{100 * time.Millisecond, patienceMult * 100 * time.Millisecond},
		{time.Second, maxPatience},
	} {
		if got := s.patienceLocked(&replicaStats{latency: c.latency}); got != c.want {
			t.Errorf("latency %v: patience %v, want %v", c.latency, got, c.want)
		}
	}
}
