package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/p2pnet/pb"
)

// handleInfer serves one inference request from another peer.
func (p *Peer) handleInfer(ctx context.Context, from peer.ID, req *pb.InferRequest) *pb.InferAnswer {
	return p.infer(ctx, req, nil)
}

// infer runs req on the variant this peer serves. img is the request's input
// already decoded (this peer's own scheduler decodes once for all its
// variants), or nil to decode req's input here.
func (p *Peer) infer(ctx context.Context, req *pb.InferRequest, img image.Image) *pb.InferAnswer {
	fail := func(code pb.ErrorCode, msg string) *pb.InferAnswer {
		p.metrics.served.WithLabelValues(req.VariantId, code.String()).Inc()
		return &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: code, Message: msg}
	}
	p.mu.Lock()
	s := p.servers[req.VariantId]
	p.mu.Unlock()
	if s == nil {
		return fail(pb.ErrorCode_UNKNOWN_VARIANT, "this peer does not serve "+req.VariantId)
	}
	classes := len(p.manifest.Classes)
	if int(req.K) > classes {
		return fail(pb.ErrorCode_BAD_INPUT, fmt.Sprintf("k %d, the family has %d classes", req.K, classes))
	}
	if img == nil {
		var err error
		if img, err = decodeInput(req, p.cfg.MaxPixels); err != nil {
			return fail(pb.ErrorCode_BAD_INPUT, err.Error())
		}
	}
	ans, err := s.submit(ctx, img, int(req.K))
	switch {
	case errors.Is(err, errBusy):
		return fail(pb.ErrorCode_BUSY, "queue cannot finish before the deadline")
	case errors.Is(err, errStopped):
		return fail(pb.ErrorCode_UNKNOWN_VARIANT, err.Error())
	case err != nil:
		return fail(pb.ErrorCode_DEADLINE, err.Error())
	}
	ans.RequestId = req.RequestId
	p.metrics.served.WithLabelValues(req.VariantId, ans.Error.String()).Inc()
	return ans
}

// Request is one classification.
type Request struct {
	Image    []byte        // encoded JPEG or PNG
	K        int           // top-k per answer; 0: the peer's default
	Quorum   int           // variants that must answer; 0: the peer's default
	Deadline time.Duration // 0: the peer's default
}

// Result is the decision and how it was reached.
type Result struct {
	RequestID  string       `json:"request_id"`
	Class      string       `json:"class"`
	Index      int          `json:"index"`
	Confidence float64      `json:"confidence"` // fused score / sum of the fusion weights of the family
	Top        []ClassScore `json:"top"`
	Answered   []string     `json:"answered"` // variants whose answers were fused
	Missing    []string     `json:"missing"`  // variants that did not answer in time (or have no live replica)
	QuorumMet  bool         `json:"quorum_met"`
	Early      bool         `json:"early_decision"`
	LatencyMS  float64      `json:"latency_ms"`
	// Per answered variant: when its answer arrived (ms after the request
	// reached this peer) and the compute time it reported.
	Timings map[string]VariantTiming `json:"timings"`
}

// VariantTiming is when one variant's answer arrived and what it cost.
type VariantTiming struct {
	Member    string  `json:"member"`
	ArrivedMS float64 `json:"arrived_ms"`
	ComputeMS float64 `json:"compute_ms"`
}

// ClassScore is one class of the fused top-k.
type ClassScore struct {
	Index int     `json:"index"`
	Class string  `json:"class"`
	Score float64 `json:"score"`
}

// ErrNoQuorum is returned (wrapped) when too few variants answered.
var ErrNoQuorum = errors.New("peer: quorum not reached")

// ErrBadRequest is wrapped by Classify for a request that can never succeed.
var ErrBadRequest = errors.New("peer: bad request")

// peerKey identifies a replica: a member serving a variant.
type peerKey struct{ member, variant string }

// replicaStats is what the scheduler remembers of a replica.
type replicaStats struct {
	outstanding int
	latency     time.Duration // moving average
}

// answer is what a call to one replica produced.
type answer struct {
	variant int
	member  string
	ans     *pb.InferAnswer
	err     error
}

// Classify sends the image to one replica of every live variant (hedging to a
// second after HedgeDelay), fuses the answers as they come and returns as soon
// as consensus decides, never after the deadline.
func (p *Peer) Classify(ctx context.Context, r Request) (*Result, error) {
	start := time.Now()
	classes := len(p.manifest.Classes)
	k := r.K
	if k == 0 {
		k = p.cfg.K
	}
	if k == 0 {
		k = max(1, classes/2)
	}
	if k < 1 || k > classes {
		return nil, fmt.Errorf("%w: k %d, want 1 to %d", ErrBadRequest, k, classes)
	}
	quorum := r.Quorum
	if quorum == 0 {
		quorum = p.cfg.Quorum
	}
	if quorum < 1 || quorum > len(p.manifest.Variants) {
		return nil, fmt.Errorf("%w: quorum %d, want 1 to %d", ErrBadRequest, quorum, len(p.manifest.Variants))
	}
	deadline := r.Deadline
	if deadline <= 0 {
		deadline = p.cfg.Deadline
	}
	if p.ctx == nil || p.ctx.Err() != nil {
		return nil, ErrStopped
	}
	// Decoded once here: a bad image is the caller's error, and this peer's
	// own variants use this copy instead of decoding their own.
	img, err := nn.DecodeImage(bytes.NewReader(r.Image), p.cfg.MaxPixels)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	dl, _ := ctx.Deadline()
	id := newRequestID()
	req := &pb.InferRequest{RequestId: id, K: uint32(k), DeadlineUnixMs: dl.UnixMilli(),
		Input: &pb.InferRequest_EncodedImage{EncodedImage: r.Image}}

	// Replicas per variant, best first.
	p.mu.Lock()
	view := p.view
	p.mu.Unlock()
	results := make(chan answer, 2*len(p.manifest.Variants))
	var calls sync.WaitGroup
	var outstanding []int
	for i, v := range p.manifest.Variants {
		reps := p.replicasOf(view, v.ID, p.shas[i])
		if len(reps) == 0 {
			continue
		}
		outstanding = append(outstanding, i)
		calls.Add(1)
		go func() {
			defer calls.Done()
			p.callVariant(ctx, i, reps, req, img, results)
		}()
	}
	// Whatever is still running when we return is cancelled; Shutdown waits.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		calls.Wait()
		close(results)
	}()

	tally := consensus.Tally{Weights: p.weights, Outstanding: outstanding, Quorum: quorum}
	scores := make([]float64, classes)
	answeredBy := map[int]bool{}
	timings := map[string]VariantTiming{}
	var dec consensus.Decision
	decide := func() bool {
		dec, err = consensus.Decide(tally, scores)
		return err != nil || dec.Outcome != consensus.Pending
	}
	done := decide()
	for !done {
		select {
		case a, ok := <-results:
			if !ok {
				tally.Outstanding = nil
				done = decide()
				break
			}
			tally.Outstanding = remove(tally.Outstanding, a.variant)
			if a.err == nil && !answeredBy[a.variant] {
				answeredBy[a.variant] = true
				timings[p.manifest.Variants[a.variant].ID] = VariantTiming{Member: a.member,
					ArrivedMS: ms(time.Since(start)), ComputeMS: float64(a.ans.ComputeUs) / 1000}
				tally.Answers = append(tally.Answers, consensus.Answer{Variant: a.variant, Indices: a.ans.Indices, Probs: a.ans.Probs})
			}
			done = decide()
		case <-ctx.Done():
			tally.Outstanding = nil
			done = decide()
		}
	}
	cancel()
	if err != nil {
		return nil, err
	}
	res := &Result{RequestID: id, Index: dec.Class, QuorumMet: dec.Outcome == consensus.Decided, Early: dec.Early,
		Answered: []string{}, Missing: []string{}, Top: []ClassScore{}, Timings: timings}
	for i, v := range p.manifest.Variants {
		if answeredBy[i] {
			res.Answered = append(res.Answered, v.ID)
		} else {
			res.Missing = append(res.Missing, v.ID)
		}
	}
	total := p.totalWeight
	for _, c := range consensus.Top(scores, k) {
		if scores[c] == 0 {
			break
		}
		res.Top = append(res.Top, ClassScore{Index: c, Class: p.manifest.Classes[c], Score: scores[c] / total})
	}
	if dec.Class >= 0 {
		res.Class = p.manifest.Classes[dec.Class]
		res.Confidence = scores[dec.Class] / total
	}
	res.LatencyMS = ms(time.Since(start))
	p.metrics.answering.Observe(float64(len(res.Answered)))
	if dec.Outcome != consensus.Decided {
		return res, fmt.Errorf("%w: %d of %d needed variants answered", ErrNoQuorum, dec.Answered, quorum)
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func remove(s []int, x int) []int {
	out := s[:0:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// replicasOf lists the members serving variant id with the family's weights,
// this peer first (no network), then by fewest outstanding calls and lowest
// latency.
func (p *Peer) replicasOf(view []memberView, id string, sha []byte) []memberView {
	var reps []memberView
	for _, m := range view {
		if serves(m.Meta, id, sha) {
			reps = append(reps, m)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	score := func(m memberView) (int, time.Duration) {
		st := p.replicas[peerKey{m.Name, id}]
		if st == nil {
			return 0, 0
		}
		return st.outstanding, st.latency
	}
	sort.SliceStable(reps, func(a, b int) bool {
		if reps[a].Self != reps[b].Self {
			return reps[a].Self
		}
		oa, la := score(reps[a])
		ob, lb := score(reps[b])
		if oa != ob {
			return oa < ob
		}
		return la < lb
	})
	return reps
}

// callVariant asks the best replica, and a second one if the first has not
// answered after HedgeDelay or fails; the first good answer is sent on out.
func (p *Peer) callVariant(ctx context.Context, variant int, reps []memberView, req *pb.InferRequest, img image.Image, out chan<- answer) {
	r := *req
	r.VariantId = p.manifest.Variants[variant].ID
	got := make(chan answer, len(reps))
	tried, pending := 0, 0
	try := func() {
		m := reps[tried]
		tried++
		pending++
		go func() { got <- p.callReplica(ctx, variant, m, &r, img) }()
	}
	try()
	hedge := time.NewTimer(p.cfg.HedgeDelay)
	defer hedge.Stop()
	var last answer
	for pending > 0 {
		select {
		case a := <-got:
			pending--
			if a.err == nil {
				out <- a
				return
			}
			last = a
			if tried < len(reps) && ctx.Err() == nil {
				try()
			}
		case <-hedge.C:
			if tried < len(reps) {
				try()
			}
		}
	}
	out <- last
}

// callReplica runs one call, in process for this peer's own variants.
func (p *Peer) callReplica(ctx context.Context, variant int, m memberView, req *pb.InferRequest, img image.Image) answer {
	key := peerKey{m.Name, req.VariantId}
	p.mu.Lock()
	st := p.replicas[key]
	if st == nil {
		st = &replicaStats{}
		p.replicas[key] = st
	}
	st.outstanding++
	p.mu.Unlock()
	start := time.Now()
	var ans *pb.InferAnswer
	var err error
	if m.Self {
		ans = p.infer(ctx, req, img)
	} else {
		ans, err = p.host.Infer(ctx, m.P2P, req)
	}
	took := time.Since(start)
	if err == nil {
		if verr := pb.ValidateInferAnswerFor(req, ans); verr != nil {
			err = verr
		} else if ans.Error != pb.ErrorCode_OK {
			err = fmt.Errorf("%s: %s: %s", m.Name, ans.Error, ans.Message)
		} else if !bytes.Equal(ans.ModelSha256, p.shas[variant]) {
			err = fmt.Errorf("%s answered with other weights for %s", m.Name, req.VariantId)
		}
	}
	p.mu.Lock()
	st.outstanding--
	if err == nil {
		st.latency += (took - st.latency) / 4
	}
	p.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		p.log.Debug().Err(err).Str("replica", m.Name).Str("variant", req.VariantId).Msg("replica failed")
	}
	return answer{variant: variant, member: m.Name, ans: ans, err: err}
}
