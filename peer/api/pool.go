package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultDeadFor is how long a Pool skips a peer it could not reach: about
// a peer's restart, short enough that a peer back is used again soon.
const DefaultDeadFor = 2 * time.Second

// Pool is a client of several peers of one cluster that fails over. A
// request that cannot reach a peer (connection refused or reset, no route,
// the connection closed before the answer) goes to the next peer, and the
// unreachable one is skipped for a while (DefaultDeadFor) unless every peer
// is. An HTTP answer, whatever its status, is the peer's and is returned as
// is: a live peer's refusal (a bad image, too few variants) would be the
// same elsewhere. A timeout is not failed over either: the request's time
// is spent. With a hedge delay (SetHedge), a classify request whose peer
// has not answered within it is also sent to the next peer, so that a peer
// that accepts connections but stalls (frozen, on a slow link) costs the
// delay, not the deadline. It is safe for concurrent use.
type Pool struct {
	clients []*Client
	deadFor time.Duration
	hedge   atomic.Int64 // time.Duration; 0: no hedging
	now     func() time.Time
	next    atomic.Uint64 // round-robin position

	mu        sync.Mutex
	deadUntil []time.Time // per client: skipped until then
}

// NewPool makes a client of the peers at urls (as NewClient takes them),
// each with opts, that skips an unreachable peer for deadFor (0:
// DefaultDeadFor).
func NewPool(urls []string, deadFor time.Duration, opts ...Option) (*Pool, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no peer given", ErrBadURL)
	}
	if deadFor <= 0 {
		deadFor = DefaultDeadFor
	}
	p := &Pool{deadFor: deadFor, now: time.Now, deadUntil: make([]time.Time, len(urls))}
	for _, u := range urls {
		c, err := NewClient(u, opts...)
		if err != nil {
			return nil, err
		}
		p.clients = append(p.clients, c)
	}
	return p, nil
}

// SetHedge sets the hedge delay of Classify: a request that the peer it
// went to has not answered within d is also sent to the next peer (failing
// over there as usual), the first answer is used and the other request is
// cancelled, and the stalled peer is skipped for the dead time. 0 (the
// default) turns hedging off: a request waits for its peer.
func (p *Pool) SetHedge(d time.Duration) { p.hedge.Store(int64(max(d, 0))) }

// Len is the number of peers.
func (p *Pool) Len() int { return len(p.clients) }

// CloseIdleConnections closes every client's idle connections.
func (p *Pool) CloseIdleConnections() {
	for _, c := range p.clients {
		c.CloseIdleConnections()
	}
}

// Classify posts img to the next peer in turn, failing over as the Pool
// says.
func (p *Pool) Classify(ctx context.Context, img []byte, params Params) (*ClassifyResponse, error) {
	return p.From(int(p.next.Add(1)-1)).Classify(ctx, img, params)
}

// Get fetches path from the next peer in turn, failing over.
func (p *Pool) Get(ctx context.Context, path string) (int, []byte, error) {
	return p.From(int(p.next.Add(1)-1)).Get(ctx, path)
}

// From is the pool entered at peer i (modulo the peers): its requests go
// to peer i first, then fail over to the next ones.
func (p *Pool) From(i int) Entry { return Entry{p: p, first: i} }

// Entry is a Pool whose requests try one peer first.
type Entry struct {
	p     *Pool
	first int
}

// Classify posts img, to the entry's peer first, hedging as the Pool is
// set to.
func (e Entry) Classify(ctx context.Context, img []byte, params Params) (*ClassifyResponse, error) {
	resp, _, err := e.ClassifyTrace(ctx, img, params)
	return resp, err
}

// Trace is how a request went through a Pool.
type Trace struct {
	URL   string // the peer whose answer (or last error) was used
	Tried int    // peers tried
}

// ClassifyTrace is Classify that also reports the peers tried.
// A peer that answers 503 with Retry-After (busy, or reaching none of the
// variants, as a peer just started) is passed over like one unreachable;
// its answer is returned when no other peer answers better.
func (e Entry) ClassifyTrace(ctx context.Context, img []byte, params Params) (*ClassifyResponse, Trace, error) {
	resp, tr, err := hedged(e.p, ctx, e.first, func(ctx context.Context, c *Client) (*ClassifyResponse, error) {
		resp, err := c.Classify(ctx, img, params)
		if err == nil && resp.Retryable() {
			return resp, &elsewhere{resp}
		}
		return resp, err
	})
	var ee *elsewhere
	if errors.As(err, &ee) {
		return ee.resp, tr, nil
	}
	return resp, tr, err
}

// elsewhere carries a retryable refusal through the failover loop.
type elsewhere struct{ resp *ClassifyResponse }

func (e *elsewhere) Error() string { return e.resp.Err().Error() }

// again reports whether another peer may be asked after err: the peer was
// unreachable, or refused for now.
func again(ctx context.Context, err error) bool {
	var ee *elsewhere
	return Unreachable(ctx, err) || (errors.As(err, &ee) && ctx.Err() == nil)
}

// Get fetches path, from the entry's peer first.
func (e Entry) Get(ctx context.Context, path string) (int, []byte, error) {
	var status int
	var body []byte
	err := e.p.try(ctx, e.first, func(c *Client) error {
		var err error
		status, body, err = c.Get(ctx, path)
		return err
	})
	return status, body, err
}

// order is the peers from first on: those not known unreachable in turn,
// then the others.
func (p *Pool) order(first int) []int {
	n := len(p.clients)
	first = ((first % n) + n) % n
	now := p.now()
	var order, dead []int
	p.mu.Lock()
	for k := range n {
		i := (first + k) % n
		if now.Before(p.deadUntil[i]) {
			dead = append(dead, i)
		} else {
			order = append(order, i)
		}
	}
	p.mu.Unlock()
	return append(order, dead...)
}

// try calls do with the peers in order until one is reached. The error is
// the last peer's.
func (p *Pool) try(ctx context.Context, first int, do func(*Client) error) error {
	var err error
	for _, i := range p.order(first) {
		if err = do(p.clients[i]); err == nil || !again(ctx, err) {
			if err == nil {
				p.setDeadUntil(i, time.Time{})
			}
			return err
		}
		p.setDeadUntil(i, p.now().Add(p.deadFor))
	}
	return err
}

func (p *Pool) setDeadUntil(i int, t time.Time) {
	p.mu.Lock()
	p.deadUntil[i] = t
	p.mu.Unlock()
}

// Unreachable reports whether err, from a request made with ctx, means the
// peer could not be reached or went away before answering, so that another
// peer may be asked: connection refused or reset, no route to the host, the
// connection closed early. A timeout or the end of ctx is not: the time is
// spent.
func Unreachable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.EPIPE, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
