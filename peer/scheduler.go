package peer

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/varpar/varpar/consensus"
)

// replica is one member serving one variant, as the scheduler sees it.
type replica struct {
	Name  string // the member's
	Local bool   // this peer: no network in between, so always asked first
}

// reply is one replica's answer for one variant.
type reply struct {
	Indices []int32
	Probs   []float32
	Compute time.Duration // as the replica reported it
}

// callFunc asks replica r for variant's top-k. It must return soon after
// ctx ends: the scheduler cancels the calls it no longer needs.
type callFunc func(ctx context.Context, r replica, variant int) (reply, error)

// job is one request as the scheduler runs it.
type job struct {
	Replicas [][]replica // per variant, family order; empty: no live replica
	Weights  []float64   // fusion weight per variant
	Classes  int
	Quorum   int
	Call     callFunc
}

// arrival is the answer the decision used for one variant, and where and
// when it came from.
type arrival struct {
	Member  string
	After   time.Duration // since the request started
	Compute time.Duration
}

// outcome is what a job came to.
type outcome struct {
	Decision consensus.Decision
	Scores   []float64       // fused, one per class
	Arrivals map[int]arrival // by variant; the variants missing did not answer
}

// replicaKey identifies a replica: a member serving a variant.
type replicaKey struct {
	member  string
	variant int
}

// replicaStats is what the scheduler remembers of a replica.
type replicaStats struct {
	outstanding int
	latency     time.Duration // moving average of successful calls

	// Suspicion, learnt from this peer's own calls (suspect.go's rules),
	// independent of gossip's failure detector: a suspect is asked last
	// until suspectUntil, then probed.
	suspect      bool
	suspectUntil time.Time
	backoff      time.Duration // the current suspicion's length; doubles while probes fail
	probing      int           // probe calls out
}

// scheduler fans a request out to one replica of every variant that has one,
// the best first (least loaded, then fastest), hedges to the next replica
// when the first has not answered after the hedge delay or fails, fuses the
// answers as they come, and stops as soon as consensus decides or the
// request's context ends, cancelling the calls still out. It knows nothing of
// transports: the job's call function does the asking.
type scheduler struct {
	hedge time.Duration
	log   zerolog.Logger
	now   func() time.Time // the clock of suspicion back-offs
	// metrics, if set, counts suspicions and probes.
	metrics *metrics

	// A replica's first suspicion lasts minBackoff; each failed probe
	// doubles it, up to maxBackoff.
	minBackoff, maxBackoff time.Duration
	// A call out longer than its patience suspects its replica
	// (patienceLocked).
	minPatience, maxPatience time.Duration

	mu      sync.Mutex
	stats   map[replicaKey]*replicaStats
	changed chan struct{} // closed, and replaced, when a replica becomes suspected

	// calls counts call goroutines; they outlive the request that started
	// them by the moment their cancelled call takes to return.
	calls sync.WaitGroup
}

func newScheduler(hedge time.Duration, log zerolog.Logger) *scheduler {
	return &scheduler{hedge: hedge, log: log, now: time.Now, minBackoff: suspectBackoff, maxBackoff: suspectMaxBackoff,
		minPatience: minPatience, maxPatience: maxPatience, stats: map[replicaKey]*replicaStats{}, changed: make(chan struct{})}
}

// wait returns once every call the scheduler started has returned.
func (s *scheduler) wait() { s.calls.Wait() }

// order returns the replicas of variant best first: a suspect due for its
// probe, then the replicas not suspected, the suspects last; within each, the
// local one first, then by fewest calls outstanding, then by lowest latency;
// ties keep their order.
func (s *scheduler) order(variant int, reps []replica) []replica {
	out := append([]replica(nil), reps...)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	score := func(r replica) (int, time.Duration) {
		st := s.stats[replicaKey{r.Name, variant}]
		if st == nil {
			return 0, 0
		}
		return st.outstanding, st.latency
	}
	sort.SliceStable(out, func(a, b int) bool {
		ra, rb := s.standingLocked(replicaKey{out[a].Name, variant}, now), s.standingLocked(replicaKey{out[b].Name, variant}, now)
		if ra != rb {
			return ra < rb
		}
		if out[a].Local != out[b].Local {
			return out[a].Local
		}
		oa, la := score(out[a])
		ob, lb := score(out[b])
		if oa != ob {
			return oa < ob
		}
		return la < lb
	})
	return out
}

// forget drops the statistics of members that keep reports false, so that
// the table does not grow with every member ever seen.
func (s *scheduler) forget(keep func(member string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.stats {
		if !keep(k.member) {
			delete(s.stats, k)
		}
	}
}

// result is what asking one variant produced.
type result struct {
	variant int
	member  string
	reply   reply
	err     error
}

// run schedules j and returns the decision. It returns when consensus
// decides (possibly early, with variants still out) or when ctx ends,
// whichever is first; the calls still running are cancelled then. The error
// is consensus's, for answers it cannot fuse; running out of time is not an
// error but an outcome that is not Decided.
func (s *scheduler) run(ctx context.Context, j job) (outcome, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One result per variant asked; buffered so that a variant answering
	// after the decision never blocks.
	results := make(chan result, len(j.Replicas))
	var outstanding []int
	optional := map[int]bool{} // variants with no replica above suspicion
	for v, reps := range j.Replicas {
		if len(reps) == 0 {
			continue
		}
		outstanding = append(outstanding, v)
		reps = s.order(v, reps)
		if !s.anyTrusted(v, reps) {
			optional[v] = true
		}
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			results <- s.callVariant(ctx, v, reps, j.Call)
		}()
	}

	out := outcome{Scores: make([]float64, j.Classes), Arrivals: map[int]arrival{}}
	tally := consensus.Tally{Weights: j.Weights, Outstanding: outstanding, Quorum: j.Quorum}
	for {
		// Taken before the check, so that a suspicion after it wakes the
		// select below.
		changed := s.suspicionChanged()
		for _, v := range tally.Outstanding {
			if !optional[v] && !s.anyTrusted(v, j.Replicas[v]) {
				optional[v] = true // suspected while this request waited
			}
		}
		dec, err := consensus.Decide(tally, out.Scores)
		if err != nil {
			return out, err
		}
		if dec.Outcome == consensus.Pending && len(optional) > 0 {
			// The suspects' variants are asked, but not waited for once
			// the others decide without them.
			without := tally
			without.Outstanding = slices.DeleteFunc(slices.Clone(tally.Outstanding), func(v int) bool { return optional[v] })
			if d, err := consensus.Decide(without, out.Scores); err == nil && d.Outcome == consensus.Decided {
				dec, dec.Early = d, true
			}
		}
		if dec.Outcome != consensus.Pending {
			out.Decision = dec
			return out, nil
		}
		select {
		case r := <-results:
			tally.Outstanding = remove(tally.Outstanding, r.variant)
			if r.err == nil {
				out.Arrivals[r.variant] = arrival{Member: r.member, After: time.Since(start), Compute: r.reply.Compute}
				tally.Answers = append(tally.Answers, consensus.Answer{Variant: r.variant, Indices: r.reply.Indices, Probs: r.reply.Probs})
			}
		case <-ctx.Done():
			// The deadline: decide with what arrived.
			tally.Outstanding = nil
		case <-changed:
		}
	}
}

// callVariant asks the best replica, and the next one when the hedge delay
// passes without an answer or a call fails; it returns the first good answer,
// or the last failure when every replica failed. Calls still running when it
// returns end with ctx, which run cancels once it has decided.
func (s *scheduler) callVariant(ctx context.Context, variant int, reps []replica, call callFunc) result {
	got := make(chan result, len(reps)) // buffered: a late call never blocks
	tried, pending := 0, 0
	try := func() {
		r := reps[tried]
		tried++
		pending++
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			got <- s.callReplica(ctx, variant, r, call)
		}()
	}
	try()
	hedge := time.NewTimer(s.hedge)
	defer hedge.Stop()
	var last result
	for pending > 0 {
		select {
		case r := <-got:
			pending--
			if r.err == nil {
				// The replicas asked before it and still out are slower
				// than their peer: suspected, so that the next requests
				// do not wait the hedge delay for them.
				for _, slow := range reps[:tried] {
					if slow.Name != r.member {
						s.slowerThan(replicaKey{slow.Name, variant}, r.member)
					}
				}
				return r
			}
			last = r
			if tried < len(reps) && ctx.Err() == nil {
				try()
			}
		case <-hedge.C:
			if tried < len(reps) && ctx.Err() == nil {
				try()
			}
		}
	}
	return last
}

// callReplica makes one call and keeps the replica's statistics.
func (s *scheduler) callReplica(ctx context.Context, variant int, r replica, call callFunc) result {
	key := replicaKey{r.Name, variant}
	s.mu.Lock()
	st := s.stats[key]
	if st == nil {
		st = &replicaStats{}
		s.stats[key] = st
	}
	st.outstanding++
	probe := st.suspect && !s.now().Before(st.suspectUntil)
	if probe {
		st.probing++
	}
	patience := s.patienceLocked(st)
	s.mu.Unlock()
	start := time.Now()
	fired := make(chan struct{})
	watch := time.AfterFunc(patience, func() {
		defer close(fired)
		if ctx.Err() == nil {
			s.suspectFor(key, false, "no answer in "+patience.String())
		}
	})
	rep, err := call(ctx, r, variant)
	took := time.Since(start)
	if !watch.Stop() {
		<-fired // its suspicion comes before what the answer teaches
	}
	s.mu.Lock()
	st.outstanding--
	if probe {
		st.probing--
	}
	if err == nil {
		st.latency += (took - st.latency) / 4
	}
	s.mu.Unlock()
	if probe && s.metrics != nil {
		result := "suspected"
		if err == nil {
			result = "trusted"
		}
		s.metrics.probes.WithLabelValues(result).Inc()
	}
	switch {
	case err == nil:
		s.trust(key, took)
	case errors.Is(ctx.Err(), context.Canceled):
		// Cancelled by this peer: decided without it, or the client left.
		// That proves nothing, except for a probe, which had to answer in
		// time to be trusted again.
		if probe {
			s.suspectFor(key, false, "probe cancelled before it answered")
		}
	default:
		// Failed, or still out at the deadline.
		s.suspectFor(key, true, err.Error())
		if ctx.Err() == nil {
			s.log.Debug().Err(err).Str("replica", r.Name).Int("variant", variant).Msg("replica failed")
		}
	}
	return result{variant: variant, member: r.Name, reply: rep, err: err}
}

func remove(s []int, x int) []int {
	out := s[:0:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}
