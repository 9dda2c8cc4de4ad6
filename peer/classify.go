package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/p2pnet/pb"
	"github.com/varpar/varpar/peer/api"
)

// handleInfer serves one inference request from another peer.
func (p *Peer) handleInfer(ctx context.Context, from p2pnet.PeerID, req *pb.InferRequest) *pb.InferAnswer {
	fail := func(code pb.ErrorCode, msg string) *pb.InferAnswer {
		p.metrics.served.WithLabelValues(req.VariantId, code.String()).Inc()
		return &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: code, Message: msg}
	}
	s := p.serverOf(req.VariantId)
	if s == nil {
		return fail(pb.ErrorCode_UNKNOWN_VARIANT, "this peer does not serve "+req.VariantId)
	}
	classes := len(p.manifest.Classes)
	if int(req.K) > classes {
		return fail(pb.ErrorCode_BAD_INPUT, fmt.Sprintf("k %d, the family has %d classes", req.K, classes))
	}
	in, err := p.inferInput(ctx, s, req)
	if errors.Is(err, ErrBusy) {
		return fail(pb.ErrorCode_BUSY, err.Error())
	}
	if errors.Is(err, ErrDeadline) {
		return fail(pb.ErrorCode_DEADLINE, err.Error())
	}
	if err != nil {
		return fail(pb.ErrorCode_BAD_INPUT, err.Error())
	}
	ans, code, msg := p.compute(ctx, s, in, int(req.K))
	if code != pb.ErrorCode_OK {
		return &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: code, Message: msg}
	}
	ans.RequestId = req.RequestId
	return ans
}

// serverOf is the server of variant id on this peer, or nil.
func (p *Peer) serverOf(id string) *server {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.servers[id]
}

// inferInput turns a request's input into what s computes on: a resized
// image at s's resolution as it came (what peers send), or an encoded or
// raw image (what older peers send), decoded within the peer's budgets.
func (p *Peer) inferInput(ctx context.Context, s *server, req *pb.InferRequest) (input, error) {
	switch in := req.Input.(type) {
	case *pb.InferRequest_Resized:
		if int(in.Resized.Side) != s.res {
			return input{}, fmt.Errorf("%w: image resized to %d, %s takes %d", ErrBadRequest, in.Resized.Side, s.id, s.res)
		}
		return input{rgb: in.Resized.Rgb}, nil
	case *pb.InferRequest_EncodedImage:
		out, err := p.decode.prepare(ctx, in.EncodedImage, []int{s.res})
		if err != nil {
			return input{}, err
		}
		return input{rgb: out[s.res]}, nil
	}
	img, err := decodeRaw(req, p.cfg.MaxPixels)
	return input{img: img}, err
}

// compute runs in through s, for another peer or for this one, and counts
// the result. A refusal is a code and a message, as the wire carries it.
func (p *Peer) compute(ctx context.Context, s *server, in input, k int) (*pb.InferAnswer, pb.ErrorCode, string) {
	ans, err := s.submit(ctx, in, k)
	code, msg := pb.ErrorCode_OK, ""
	switch {
	case errors.Is(err, errBusy):
		code, msg = pb.ErrorCode_BUSY, "queue cannot finish before the deadline"
	case errors.Is(err, errStopped):
		code, msg = pb.ErrorCode_UNKNOWN_VARIANT, err.Error()
	case err != nil:
		code, msg = pb.ErrorCode_DEADLINE, err.Error()
	}
	p.metrics.served.WithLabelValues(s.id, inferenceResult(code, err)).Inc()
	return ans, code, msg
}

// callLocal asks this peer's own server of variant, with the image resized
// to its resolution: no protobuf and no validation, since the answer is made
// here from the weights whose hash the store checked.
func (p *Peer) callLocal(ctx context.Context, variant int, rgb []float32, k int) (reply, error) {
	id := p.manifest.Variants[variant].ID
	s := p.serverOf(id)
	if s == nil {
		// Handed over since the request looked at the view.
		p.metrics.served.WithLabelValues(id, pb.ErrorCode_UNKNOWN_VARIANT.String()).Inc()
		return reply{}, fmt.Errorf("peer: %s is no longer served here", id)
	}
	if s.res != p.manifest.Variants[variant].Spec.Resolution {
		return reply{}, fmt.Errorf("peer: %s here takes %d pixels, the family says %d", id, s.res, p.manifest.Variants[variant].Spec.Resolution)
	}
	ans, code, msg := p.compute(ctx, s, input{rgb: rgb}, k)
	if code != pb.ErrorCode_OK {
		return reply{}, fmt.Errorf("peer: %s here: %s: %s", id, code, msg)
	}
	return reply{Indices: ans.Indices, Probs: ans.Probs, Compute: time.Duration(ans.ComputeUs) * time.Microsecond}, nil
}

// callRemote asks member, at to, for variant's answer to req with the image
// resized to the variant's resolution (rgb), and accepts only an answer that
// answers req, says OK, comes from the family's weights and names only the
// family's classes.
func (p *Peer) callRemote(ctx context.Context, member string, to p2pnet.Remote, variant int, req *pb.InferRequest, rgb []float32) (reply, error) {
	v := p.manifest.Variants[variant]
	r := *req
	r.VariantId = v.ID
	r.Input = &pb.InferRequest_Resized{Resized: &pb.ResizedImage{Side: uint32(v.Spec.Resolution), Rgb: rgb}}
	ans, err := p.host.Infer(ctx, to, &r)
	if err != nil {
		return reply{}, err
	}
	if err := pb.ValidateInferAnswerFor(&r, ans); err != nil {
		return reply{}, fmt.Errorf("peer: %s: %w", member, err)
	}
	if ans.Error != pb.ErrorCode_OK {
		return reply{}, fmt.Errorf("peer: %s: %s: %s", member, ans.Error, ans.Message)
	}
	if !bytes.Equal(ans.ModelSha256, p.shas[variant]) {
		return reply{}, fmt.Errorf("peer: %s answered with other weights for %s", member, r.VariantId)
	}
	// An index past the family would make consensus refuse the whole
	// request; refused here, it costs only this call.
	for _, c := range ans.Indices {
		if int(c) >= len(p.manifest.Classes) {
			return reply{}, fmt.Errorf("peer: %s answered class %d, the family has %d", member, c, len(p.manifest.Classes))
		}
	}
	return reply{Indices: ans.Indices, Probs: ans.Probs, Compute: time.Duration(ans.ComputeUs) * time.Microsecond}, nil
}

// Request is one classification.
type Request struct {
	Image    []byte        // encoded JPEG or PNG
	K        int           // top-k per answer; 0: the peer's default
	Quorum   int           // variants that must answer; 0: the peer's default
	Deadline time.Duration // 0: the peer's default
}

// ErrNoQuorum is returned (wrapped) when too few variants answered.
var ErrNoQuorum = errors.New("peer: quorum not reached")

// ErrBadRequest is wrapped by Classify for a request that can never succeed.
var ErrBadRequest = errors.New("peer: bad request")

// Classify decodes the image (within the peer's decoding budgets), sends it
// resized to one replica of every live variant (hedging to a second after
// HedgeDelay), fuses the answers as they come and returns as soon as
// consensus decides, never after the deadline. Besides ErrNoQuorum and
// ErrBadRequest, it refuses with ErrBusy when it cannot decode the image in
// time for the others it is decoding, and with ErrDeadline when the deadline
// cannot be kept (early, when the image would take longer to decode than is
// left) or passed while decoding.
func (p *Peer) Classify(ctx context.Context, r Request) (*api.Result, error) {
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
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	// The replicas are those of the view when the request came: a variant
	// with none is not asked, so its resolution is not made.
	p.mu.Lock()
	view := p.view
	p.mu.Unlock()
	j := job{Replicas: make([][]replica, len(p.manifest.Variants)), Weights: p.weights,
		Classes: classes, Quorum: quorum}
	remotes := map[string]p2pnet.Remote{}
	for _, m := range view {
		remotes[m.Name] = m.P2P
		for i, v := range p.manifest.Variants {
			if serves(m.Meta, v.ID, p.shas[i]) {
				j.Replicas[i] = append(j.Replicas[i], replica{Name: m.Name, Local: m.Self})
			}
		}
	}
	// Decoded once, here, and resized to each resolution a live variant
	// takes: a bad image is the caller's error (even with no variant live),
	// and no other peer decodes it.
	var sizes []int
	for i, v := range p.manifest.Variants {
		if len(j.Replicas[i]) > 0 {
			sizes = append(sizes, v.Spec.Resolution)
		}
	}
	inputs, err := p.decode.prepare(ctx, r.Image, sizes)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: passed while decoding", ErrDeadline)
	}
	dl, _ := ctx.Deadline()
	id := newRequestID()
	// The input is set per variant, in callRemote.
	req := &pb.InferRequest{RequestId: id, K: uint32(k), DeadlineUnixMs: dl.UnixMilli()}

	// Calls end with the request, or when the peer shuts down.
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()

	j.Call = func(ctx context.Context, r replica, variant int) (reply, error) {
		in := inputs[p.manifest.Variants[variant].Spec.Resolution]
		if r.Local {
			return p.callLocal(ctx, variant, in, k)
		}
		return p.callRemote(ctx, r.Name, remotes[r.Name], variant, req, in)
	}
	out, err := p.sched.run(ctx, j)
	cancel()
	if err != nil {
		return nil, err
	}
	dec, scores := out.Decision, out.Scores
	timings := map[string]api.VariantTiming{}
	for i, a := range out.Arrivals {
		timings[p.manifest.Variants[i].ID] = api.VariantTiming{Member: a.Member, ArrivedMS: ms(a.After), ComputeMS: ms(a.Compute)}
	}
	res := &api.Result{RequestID: id, Index: dec.Class, QuorumMet: dec.Outcome == consensus.Decided, Early: dec.Early,
		Answered: []string{}, Missing: []string{}, Top: []api.ClassScore{}, Timings: timings}
	for i, v := range p.manifest.Variants {
		if _, ok := out.Arrivals[i]; ok {
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
		res.Top = append(res.Top, api.ClassScore{Index: c, Class: p.manifest.Classes[c], Score: scores[c] / total})
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

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// replicasOf lists the members serving variant id with the family's weights,
// in the order the scheduler would ask them now.
func (p *Peer) replicasOf(view []memberView, id string, sha []byte) []replica {
	var reps []replica
	for _, m := range view {
		if serves(m.Meta, id, sha) {
			reps = append(reps, replica{Name: m.Name, Local: m.Self})
		}
	}
	return p.sched.order(p.index[id], reps)
}
