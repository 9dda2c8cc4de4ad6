package p2pnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"
	"github.com/rs/zerolog"

	"github.com/varpar/varpar/p2pnet/pb"
)

// SessionProtocol carries many infer calls between two peers on one
// long-lived stream: the caller writes SessionFrames (a request, or the
// cancellation of one), the server writes a SessionAnswer per call, in any
// order. Opening a stream per request (InferProtocol) costs a handful of
// muxer frames, a protocol negotiation and a handler goroutine; on a session
// a call is one frame each way (BenchmarkInferRoundTrip: about 3x less time
// per call on loopback). Infer uses a session when the peer speaks it and
// falls back to InferProtocol when it does not.
const SessionProtocol = "/varpar/infer-session/1.0.0"

// Variables only so that tests can shorten them.
var (
	// maxSessionCalls caps the calls one session runs at once; more are
	// answered BUSY.
	maxSessionCalls = 256
	// sessionIdle is how long a server keeps a session with no frames.
	sessionIdle = 5 * time.Minute
)

const (
	// sessionRetryAfter is how long a peer that does not speak the session
	// protocol is asked per request before a session is tried again.
	sessionRetryAfter = time.Minute
	// frameOverhead is room for a SessionFrame's own fields around its
	// request.
	frameOverhead = 64
)

// errSessionClosed is the error of a call whose session broke before the
// answer came.
var errSessionClosed = errors.New("p2pnet: session closed")

// clientSession is this host's session with one peer.
type clientSession struct {
	ready   chan struct{} // closed once s is open or openErr is set
	openErr error
	s       network.Stream

	wmu sync.Mutex // serialises writes to s

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *pb.InferAnswer
	err     error // set when the session broke; no new calls then
}

// session returns the open session with to, opening one if need be.
func (h *Host) session(ctx context.Context, to peer.AddrInfo) (*clientSession, error) {
	h.smu.Lock()
	if h.sessions == nil {
		h.sessions = map[peer.ID]*clientSession{}
	}
	cs := h.sessions[to.ID]
	if cs == nil {
		cs = &clientSession{ready: make(chan struct{}), pending: map[uint64]chan *pb.InferAnswer{}}
		h.sessions[to.ID] = cs
		h.smu.Unlock()
		h.openSession(to, cs)
	} else {
		h.smu.Unlock()
	}
	select {
	case <-cs.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cs.openErr != nil {
		return nil, cs.openErr
	}
	return cs, nil
}

// openSession opens cs's stream, under the host's context rather than the
// first caller's, since later callers share it.
func (h *Host) openSession(to peer.AddrInfo, cs *clientSession) {
	defer close(cs.ready)
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.StreamTimeout)
	defer cancel()
	s, err := h.openStream(ctx, to, SessionProtocol)
	if err == nil {
		h.mu.Lock()
		if h.closed {
			err = ErrClosed
			s.Reset()
		} else {
			h.handlers.Add(1)
		}
		h.mu.Unlock()
	}
	if err != nil {
		cs.openErr = err
		h.dropSession(to.ID, cs)
		return
	}
	cs.s = s
	go func() {
		defer h.handlers.Done()
		h.readSession(to.ID, cs)
	}()
}

// dropSession forgets cs, if it is still to's session.
func (h *Host) dropSession(id peer.ID, cs *clientSession) {
	h.smu.Lock()
	if h.sessions[id] == cs {
		delete(h.sessions, id)
	}
	h.smu.Unlock()
}

// readSession hands each answer to its call until the stream ends; then it
// fails the calls still waiting.
func (h *Host) readSession(id peer.ID, cs *clientSession) {
	var err error
	for {
		a := new(pb.SessionAnswer)
		if err = readMsg(cs.s, MaxAnswerBytes+frameOverhead, a, nil); err == nil {
			err = pb.ValidateSessionAnswer(a)
		}
		if err != nil {
			break
		}
		cs.mu.Lock()
		ch := cs.pending[a.Call]
		delete(cs.pending, a.Call)
		cs.mu.Unlock()
		if ch != nil { // nil: a call given up on
			ch <- a.Answer
		}
	}
	if !errors.Is(err, io.EOF) && h.ctx.Err() == nil {
		h.log.Debug().Err(err).Stringer("peer", id).Msg("infer session ended")
	}
	cs.s.Reset()
	h.dropSession(id, cs)
	cs.mu.Lock()
	cs.err = fmt.Errorf("%w: %w", errSessionClosed, err)
	for call, ch := range cs.pending {
		close(ch)
		delete(cs.pending, call)
	}
	cs.mu.Unlock()
}

// write sends one frame, giving up at deadline; a failed write breaks the
// session (the reader then fails every call).
func (cs *clientSession) write(f *pb.SessionFrame, deadline time.Time) error {
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	cs.s.SetWriteDeadline(deadline)
	err := writeMsg(cs.s, f)
	cs.s.SetWriteDeadline(time.Time{})
	if err != nil {
		cs.s.Reset()
	}
	return err
}

// call sends req and waits for its answer until ctx ends, then cancels it.
func (cs *clientSession) call(ctx context.Context, req *pb.InferRequest, deadline time.Time) (*pb.InferAnswer, error) {
	cs.mu.Lock()
	if cs.err != nil {
		err := cs.err
		cs.mu.Unlock()
		return nil, err
	}
	cs.next++
	id := cs.next
	ch := make(chan *pb.InferAnswer, 1)
	cs.pending[id] = ch
	cs.mu.Unlock()
	if err := cs.write(&pb.SessionFrame{Call: id, Request: req}, deadline); err != nil {
		return nil, fmt.Errorf("%w: sending request: %w", errSessionClosed, err)
	}
	select {
	case a, ok := <-ch:
		if !ok {
			cs.mu.Lock()
			err := cs.err
			cs.mu.Unlock()
			return nil, err
		}
		return a, nil
	case <-ctx.Done():
		cs.mu.Lock()
		_, waiting := cs.pending[id]
		delete(cs.pending, id)
		cs.mu.Unlock()
		if waiting { // tell the server to stop; best effort
			cs.write(&pb.SessionFrame{Call: id, Cancel: true}, time.Now().Add(time.Second))
		}
		return nil, ctx.Err()
	}
}

// inferSession runs one call over the session with to. ok is false when the
// peer does not speak the session protocol, and the caller should use a
// stream of its own.
func (h *Host) inferSession(ctx context.Context, to peer.AddrInfo, req *pb.InferRequest, deadline time.Time) (ans *pb.InferAnswer, ok bool, err error) {
	h.smu.Lock()
	since, refused := h.noSession[to.ID]
	h.smu.Unlock()
	if refused && time.Since(since) < sessionRetryAfter {
		return nil, false, nil
	}
	for attempt := 0; ; attempt++ {
		cs, err := h.session(ctx, to)
		if errors.Is(err, multistream.ErrNotSupported[protocol.ID]{}) {
			h.smu.Lock()
			if h.noSession == nil {
				h.noSession = map[peer.ID]time.Time{}
			}
			h.noSession[to.ID] = time.Now()
			h.smu.Unlock()
			return nil, false, nil
		}
		if err != nil {
			return nil, true, err
		}
		ans, err = cs.call(ctx, req, deadline)
		// A session can break under a call that never reached the server
		// (it closed the session as idle just then): one more try on a
		// new one while there is time.
		if errors.Is(err, errSessionClosed) && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return ans, true, err
	}
}

// serverSession is one session this host serves.
type serverSession struct {
	h    *Host
	s    network.Stream
	from peer.ID
	log  zerolog.Logger

	wmu sync.Mutex

	mu    sync.Mutex
	calls map[uint64]context.CancelFunc
	wg    sync.WaitGroup
}

// handleSession serves one SessionProtocol stream: calls run concurrently,
// each with its own deadline; anything wrong with the bytes resets the
// stream, which stops every call on it.
func (h *Host) handleSession(s network.Stream) {
	from, log, ok := h.acceptInferStream(s, SessionProtocol)
	if !ok {
		return
	}
	stopReset := context.AfterFunc(h.ctx, func() { s.Reset() })
	defer stopReset()
	ss := &serverSession{h: h, s: s, from: from, log: log, calls: map[uint64]context.CancelFunc{}}
	for {
		if err := s.SetReadDeadline(time.Now().Add(sessionIdle)); err != nil {
			break
		}
		f := new(pb.SessionFrame)
		reserved := 0
		err := readMsg(s, h.cfg.MaxInferBytes+frameOverhead, f, reserveIn(s, &reserved))
		if err == nil {
			err = pb.ValidateSessionFrame(f)
		}
		if err != nil {
			s.Scope().ReleaseMemory(reserved)
			switch {
			case errors.Is(err, io.EOF):
				// The caller is done: finish its calls, then close.
				ss.wg.Wait()
				s.Close()
				return
			case errors.Is(err, network.ErrReset), isTimeout(err), h.ctx.Err() != nil:
				log.Debug().Err(err).Msg("infer session ended")
			default:
				log.Warn().Err(err).Msg("dropping infer session: bad frame")
			}
			break
		}
		if f.Cancel {
			s.Scope().ReleaseMemory(reserved)
			ss.cancel(f.Call)
			continue
		}
		ss.start(f.Call, f.Request, reserved)
	}
	s.Reset()
	ss.mu.Lock()
	for _, cancel := range ss.calls {
		cancel()
	}
	ss.mu.Unlock()
	ss.wg.Wait()
}

func (ss *serverSession) cancel(call uint64) {
	ss.mu.Lock()
	if cancel := ss.calls[call]; cancel != nil {
		cancel()
	}
	ss.mu.Unlock()
}

// start runs one call on a goroutine of its own; reserved bytes of the
// resource manager are released when it ends.
func (ss *serverSession) start(call uint64, req *pb.InferRequest, reserved int) {
	h, log := ss.h, ss.log.With().Str("request", req.RequestId).Str("variant", req.VariantId).Logger()
	now := time.Now()
	deadline, capped := h.requestDeadline(log, ss.from, req, now)
	reply := func(code pb.ErrorCode, msg string) {
		ss.write(call, &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, Error: code, Message: msg})
	}
	ss.mu.Lock()
	_, dup := ss.calls[call]
	busy := len(ss.calls) >= maxSessionCalls
	ss.mu.Unlock()
	switch {
	case dup:
		reply(pb.ErrorCode_BAD_INPUT, fmt.Sprintf("call %d is already running on this session", call))
	case busy:
		reply(pb.ErrorCode_BUSY, fmt.Sprintf("%d calls already running on this session", maxSessionCalls))
	case !deadline.After(now):
		ss.write(call, lateAnswer(req))
	default:
		ctx, cancel := context.WithDeadline(h.ctx, deadline)
		ss.mu.Lock()
		ss.calls[call] = cancel
		ss.wg.Add(1)
		ss.mu.Unlock()
		go func() {
			defer ss.wg.Done()
			defer ss.s.Scope().ReleaseMemory(reserved)
			defer func() {
				ss.mu.Lock()
				delete(ss.calls, call)
				ss.mu.Unlock()
				cancel()
			}()
			ans := h.serve(ctx, log, ss.from, req)
			switch err := ctx.Err(); {
			case err == nil:
				ss.write(call, finishAnswer(log, req, ans))
			case errors.Is(err, context.DeadlineExceeded) && capped:
				ss.write(call, h.overtimeAnswer(req))
			default:
				// Cancelled, or past the caller's own deadline: nobody waits.
				log.Debug().Err(err).Msg("infer abandoned")
			}
		}()
		return
	}
	ss.s.Scope().ReleaseMemory(reserved)
}

// write sends one answer; a failed write resets the session.
func (ss *serverSession) write(call uint64, a *pb.InferAnswer) {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.s.SetWriteDeadline(time.Now().Add(ss.h.cfg.StreamTimeout))
	err := writeMsg(ss.s, &pb.SessionAnswer{Call: call, Answer: a})
	ss.s.SetWriteDeadline(time.Time{})
	if err != nil {
		ss.log.Debug().Err(err).Msg("sending infer answer")
		ss.s.Reset()
	}
}
