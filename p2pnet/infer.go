package p2pnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/rs/zerolog"

	"github.com/varpar/varpar/p2pnet/pb"
)

// InferProtocol is the stream protocol for one inference: the caller writes
// one InferRequest, the server writes one InferAnswer, and the caller closes.
// The caller keeps its side open until the answer arrives, so that its
// Reset reaches the server's handler as a cancelled context.
const InferProtocol = "/varpar/infer/1.0.0"

// inferService names the protocol's resource-manager scope.
const inferService = "varpar.infer"

// deadlineGrace is how long past a request's deadline the serving side keeps
// the stream open, waiting for the caller to give up on its own.
const deadlineGrace = 2 * time.Second

// InferHandler answers one request. ctx ends at the request's deadline
// (capped by Config.MaxInferTime), when the caller gives up (resets the
// stream), or when the Host closes; a handler should stop work then. The
// transport fills in the answer's request ID, the variant ID if empty, and
// ComputeUs if zero (with the handler's wall time). A handler that panics or
// returns an invalid answer makes the caller receive INTERNAL.
type InferHandler func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer

// SetInferHandler serves InferProtocol with fn, replacing any earlier
// handler; nil stops serving it.
func (h *Host) SetInferHandler(fn InferHandler) {
	h.mu.Lock()
	h.infer = fn
	closed := h.closed
	h.mu.Unlock()
	switch {
	case closed:
	case fn == nil:
		h.host.RemoveStreamHandler(InferProtocol)
		h.host.RemoveStreamHandler(SessionProtocol)
	default:
		h.host.SetStreamHandler(InferProtocol, h.track(h.handleInfer))
		if !h.cfg.noSessions {
			h.host.SetStreamHandler(SessionProtocol, h.track(h.handleSession))
		}
	}
}

// Infer sends req to the peer and returns its answer. The call's deadline is
// the earliest of ctx's deadline and req.DeadlineUnixMs; with neither it is
// Config.StreamTimeout from now, and req travels with that deadline filled
// in (req itself is not modified). Cancelling ctx resets the stream, which
// cancels the remote handler's context.
//
// An answer that arrives and validates is returned with a nil error even if
// its Error is not OK (BUSY, UNKNOWN_VARIANT...): the transport worked and
// the remote said no. Errors wrap ErrTooLarge (req over Config.MaxInferBytes),
// ErrBadMessage (an invalid req, or an answer that does not decode or does
// not answer req), context.DeadlineExceeded or context.Canceled, ErrClosed,
// or the connection's error.
func (h *Host) Infer(ctx context.Context, remote Remote, req *pb.InferRequest) (*pb.InferAnswer, error) {
	to := remote.addrInfo()
	if h.isClosed() {
		return nil, ErrClosed
	}
	if req == nil {
		return nil, fmt.Errorf("%w: nil InferRequest", ErrBadMessage)
	}
	r := *req // the deadline may be filled in; the caller's request stays as it was
	deadline, hasDeadline := ctx.Deadline()
	if r.DeadlineUnixMs > 0 {
		if rd := time.UnixMilli(r.DeadlineUnixMs); !hasDeadline || rd.Before(deadline) {
			deadline, hasDeadline = rd, true
		}
	}
	if !hasDeadline {
		deadline = time.Now().Add(h.cfg.StreamTimeout)
	}
	if r.DeadlineUnixMs <= 0 {
		r.DeadlineUnixMs = deadline.UnixMilli()
	}
	// The time left travels too: the serving peer counts from its own
	// receive time, whatever its clock says.
	left := (time.Until(deadline) + time.Millisecond - 1) / time.Millisecond
	r.TimeoutMs = uint32(min(max(left, 1), pb.MaxTimeoutMs))
	if err := pb.ValidateInferRequest(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if n := r.Size(); n > h.cfg.MaxInferBytes {
		return nil, fmt.Errorf("%w: InferRequest is %d bytes, cap %d", ErrTooLarge, n, h.cfg.MaxInferBytes)
	}

	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ctx, stopCall := h.callContext(ctx)
	defer stopCall()
	if ans, ok, err := h.inferSession(ctx, to, &r, deadline); ok {
		if err == nil {
			err = pb.ValidateInferAnswerFor(&r, ans)
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrBadMessage, err)
			}
		}
		if err != nil {
			return nil, h.callError(ctx, "infer", to.ID, err)
		}
		return ans, nil
	}
	// The peer does not speak the session protocol: a stream of our own.
	s, err := h.openStream(ctx, to, InferProtocol)
	if err != nil {
		return nil, h.callError(ctx, "infer", to.ID, err)
	}
	// Context cancellation resets the stream, which unblocks any read or
	// write below and tells the remote handler to stop.
	stopReset := context.AfterFunc(ctx, func() { s.Reset() })
	defer stopReset()
	if err := s.SetDeadline(deadline); err != nil {
		s.Reset()
		return nil, h.callError(ctx, "infer", to.ID, err)
	}
	ans, err := exchangeInfer(s, &r)
	if err != nil {
		s.Reset()
		return nil, h.callError(ctx, "infer", to.ID, err)
	}
	s.Close()
	return ans, nil
}

func exchangeInfer(s network.Stream, req *pb.InferRequest) (*pb.InferAnswer, error) {
	if err := writeMsg(s, req); err != nil {
		return nil, fmt.Errorf("sending request: %w", err)
	}
	ans := new(pb.InferAnswer)
	if err := readMsg(s, MaxAnswerBytes, ans, nil); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("stream closed without an answer: %w", io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("reading answer: %w", err)
	}
	if err := pb.ValidateInferAnswerFor(req, ans); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return ans, nil
}

func (h *Host) inferHandler() InferHandler {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.infer
}

// handleInfer serves one InferProtocol stream. Anything wrong with the bytes
// on the stream resets it; a request that is well formed gets an answer.
func (h *Host) handleInfer(s network.Stream) {
	from, log, ok := h.acceptInferStream(s, InferProtocol)
	if !ok {
		return
	}
	stopReset := context.AfterFunc(h.ctx, func() { s.Reset() })
	defer stopReset()
	if err := s.SetDeadline(time.Now().Add(h.cfg.StreamTimeout)); err != nil {
		s.Reset()
		return
	}

	reserved := 0
	defer func() { s.Scope().ReleaseMemory(reserved) }()
	req := new(pb.InferRequest)
	err := readMsg(s, h.cfg.MaxInferBytes, req, reserveIn(s, &reserved))
	if err == nil {
		err = pb.ValidateInferRequest(req)
	}
	if err != nil {
		if errors.Is(err, network.ErrReset) {
			log.Debug().Err(err).Msg("caller reset the infer stream")
		} else {
			log.Warn().Err(err).Msg("dropping bad infer request")
		}
		s.Reset()
		return
	}
	log = log.With().Str("request", req.RequestId).Str("variant", req.VariantId).Logger()

	now := time.Now()
	deadline, capped := h.requestDeadline(log, from, req, now)
	if !deadline.After(now) {
		h.sendAnswer(s, log, lateAnswer(req))
		return
	}
	// The stream outlives the handler's deadline by deadlineGrace; see below.
	if err := s.SetDeadline(deadline.Add(deadlineGrace)); err != nil {
		s.Reset()
		return
	}
	ctx, cancel := context.WithDeadline(h.ctx, deadline)
	defer cancel()

	// The caller writes nothing after its request. A read that ends other
	// than at a clean end of stream means it reset the stream (gave up) or
	// broke the protocol: either way, stop the handler.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		if _, err := s.Read(b[:]); !errors.Is(err, io.EOF) {
			cancel()
		}
	}()
	defer func() { <-watched }() // the Close or Reset below unblocks the read

	ans := h.serve(ctx, log, from, req)
	if err := ctx.Err(); err != nil {
		// Past the deadline, or the caller is gone: nobody reads an answer.
		log.Debug().Err(err).Msg("infer abandoned")
		if errors.Is(err, context.DeadlineExceeded) && capped {
			// Our limit, not the caller's deadline: tell it so.
			h.sendAnswer(s, log, h.overtimeAnswer(req))
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// The caller's deadline is the same instant (clock skew aside):
			// let it give up first, so it sees its own deadline rather than
			// a reset from us. Its reset, or the stream deadline
			// deadlineGrace later, ends the wait.
			<-watched
		}
		s.Reset()
		return
	}
	h.sendAnswer(s, log, finishAnswer(log, req, ans))
}

// requestDeadline is the deadline a request gets here: its receive time now
// plus its timeout (its absolute deadline when it has none), capped by
// Config.MaxInferTime (capped is then true).
func (h *Host) requestDeadline(log zerolog.Logger, from peer.ID, req *pb.InferRequest, now time.Time) (deadline time.Time, capped bool) {
	deadline = time.UnixMilli(req.DeadlineUnixMs)
	if req.TimeoutMs > 0 {
		// The caller's clock only matters when it sends no timeout.
		sent := deadline
		deadline = now.Add(time.Duration(req.TimeoutMs) * time.Millisecond)
		h.noteSkew(log, from, sent.Sub(deadline))
	}
	if limit := now.Add(h.cfg.MaxInferTime); deadline.After(limit) {
		deadline, capped = limit, true
	}
	return deadline, capped
}

// serve runs the infer handler on req (UNKNOWN_VARIANT without one), filling
// in the compute time when the handler did not.
func (h *Host) serve(ctx context.Context, log zerolog.Logger, from peer.ID, req *pb.InferRequest) *pb.InferAnswer {
	fn := h.inferHandler()
	if fn == nil {
		return &pb.InferAnswer{Error: pb.ErrorCode_UNKNOWN_VARIANT, Message: "this peer serves no variants"}
	}
	start := time.Now()
	ans := runInfer(ctx, log, fn, from, req)
	if ans != nil && ans.Error == pb.ErrorCode_OK && ans.ComputeUs == 0 {
		ans.ComputeUs = uint64(max(1, time.Since(start).Microseconds()))
	}
	return ans
}

// skewWarnEvery limits the clock-skew warning to one per peer per interval.
const skewWarnEvery = time.Minute

// noteSkew warns, at most once a minute per peer, when a caller's deadline by
// its own clock and by ours (receive time plus timeout) differ by more than a
// second: its clock, or ours, is off. Requests still work (the timeout
// decides), but absolute times in the two peers' logs will not line up.
func (h *Host) noteSkew(log zerolog.Logger, from peer.ID, skew time.Duration) {
	if skew > -time.Second && skew < time.Second {
		return
	}
	now := time.Now()
	h.mu.Lock()
	if h.skewLog == nil {
		h.skewLog = map[peer.ID]time.Time{}
	}
	last, seen := h.skewLog[from]
	if seen && now.Sub(last) < skewWarnEvery {
		h.mu.Unlock()
		return
	}
	h.skewLog[from] = now
	h.mu.Unlock()
	log.Warn().Dur("skew_ms", skew).Msg("the caller's clock and this peer's disagree (is NTP running on both?); using the request's timeout")
}

// acceptInferStream gives an incoming infer or session stream its resource
// manager service and a logger; ok is false (and the stream reset) when the
// resource manager refuses it.
func (h *Host) acceptInferStream(s network.Stream, proto string) (peer.ID, zerolog.Logger, bool) {
	from := s.Conn().RemotePeer()
	log := h.log.With().Str("proto", proto).Stringer("peer", from).Logger()
	if err := s.Scope().SetService(inferService); err != nil {
		log.Debug().Err(err).Msg("resource manager refused the stream")
		s.Reset()
		return from, log, false
	}
	return from, log, true
}

// reserveIn is readMsg's reserve function for a request read from s: the
// bytes are accounted to the stream's scope before they are allocated, so a
// flood of large requests meets the resource manager's limits rather than
// the machine's. *reserved says what to release.
func reserveIn(s network.Stream, reserved *int) func(int) error {
	return func(n int) error {
		if err := s.Scope().ReserveMemory(n, network.ReservationPriorityAlways); err != nil {
			return err
		}
		*reserved = n
		return nil
	}
}

// lateAnswer is the DEADLINE answer to a request whose deadline passed before
// it arrived.
func lateAnswer(req *pb.InferRequest) *pb.InferAnswer {
	return &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: pb.ErrorCode_DEADLINE,
		Message: "deadline passed before the request arrived (are the clocks in sync?)"}
}

// overtimeAnswer is the DEADLINE answer to a request stopped at this peer's
// Config.MaxInferTime rather than at the caller's deadline.
func (h *Host) overtimeAnswer(req *pb.InferRequest) *pb.InferAnswer {
	return &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: pb.ErrorCode_DEADLINE,
		Message: fmt.Sprintf("took longer than this peer allows (%v)", h.cfg.MaxInferTime)}
}

// runInfer calls the handler, turning a panic into an INTERNAL answer so that
// one bad request cannot take the peer down.
func runInfer(ctx context.Context, log zerolog.Logger, fn InferHandler, from peer.ID, req *pb.InferRequest) (ans *pb.InferAnswer) {
	defer func() {
		if p := recover(); p != nil {
			log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("infer handler panicked")
			ans = &pb.InferAnswer{Error: pb.ErrorCode_INTERNAL, Message: "infer handler panicked"}
		}
	}()
	return fn(ctx, PeerID(from), req)
}

// finishAnswer fills in what the transport owns and makes sure nothing
// invalid leaves the host.
func finishAnswer(log zerolog.Logger, req *pb.InferRequest, ans *pb.InferAnswer) *pb.InferAnswer {
	if ans == nil {
		log.Error().Msg("infer handler returned no answer")
		ans = &pb.InferAnswer{Error: pb.ErrorCode_INTERNAL, Message: "infer handler returned no answer"}
	}
	ans.RequestId = req.RequestId
	if ans.VariantId == "" {
		ans.VariantId = req.VariantId
	}
	if err := pb.ValidateInferAnswerFor(req, ans); err != nil {
		log.Error().Err(err).Msg("infer handler returned an invalid answer")
		ans = &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: pb.ErrorCode_INTERNAL,
			Message: clipMessage("invalid answer: " + err.Error())}
	}
	return ans
}

func (h *Host) sendAnswer(s network.Stream, log zerolog.Logger, ans *pb.InferAnswer) {
	if err := writeMsg(s, ans); err != nil {
		log.Debug().Err(err).Msg("sending infer answer")
		s.Reset()
		return
	}
	s.Close()
}

// clipMessage keeps an error message within pb.MaxMessageLen bytes without
// splitting a UTF-8 sequence.
func clipMessage(m string) string {
	if len(m) <= pb.MaxMessageLen {
		return m
	}
	m = m[:pb.MaxMessageLen]
	for len(m) > 0 && !utf8.ValidString(m) {
		m = m[:len(m)-1]
	}
	return m
}
