package p2pnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
	"github.com/rs/zerolog"
)

// Host is one peer's libp2p host and the varpar protocols on it.
type Host struct {
	cfg  Config
	log  zerolog.Logger
	host host.Host

	// ctx is cancelled by Close; every handler's context and every outgoing
	// call hangs off it, so Close interrupts them all.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // running stream handlers; Add only under mu while !closed
	infer    InferHandler
	weights  WeightsSource
	skewLog  map[peer.ID]time.Time // when each peer's clock skew was last logged

	smu       sync.Mutex
	sessions  map[peer.ID]*clientSession // open infer sessions, by peer
	noSession map[peer.ID]time.Time      // peers that refused a session, and when

	closeOnce sync.Once
	closeErr  error
}

// New creates the libp2p host and starts listening on cfg.ListenAddrs. The
// host speaks only what a home lab needs: TCP inside a private network (the
// PSK derived from cfg.ClusterKey), Noise, yamux. There is no relay, no NAT
// port mapping, no mDNS, no ping service, and no metrics registered globally.
// No varpar protocol is served until SetInferHandler or SetWeightsSource.
func New(cfg Config) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	psk, err := DerivePSK(cfg.ClusterKey)
	if err != nil {
		return nil, err
	}
	key, err := identity(cfg)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.PrivateNetwork(psk),
		// Reuseport lets dials leave from the listening port, which only NAT
		// hole punching needs; plain sockets are easier to reason about.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.Ping(false),
		// Several hosts may live in one process (tests, a peer and a client);
		// the daemon exposes its own metrics.
		libp2p.DisableMetrics(),
		// Peers sit on a LAN: skip AutoNAT's reachability probing.
		libp2p.ForceReachabilityPrivate(),
	}
	listen := make([]multiaddr.Multiaddr, len(cfg.ListenAddrs))
	for i, s := range cfg.ListenAddrs {
		if listen[i], err = multiaddr.NewMultiaddr(s); err != nil {
			return nil, fmt.Errorf("p2pnet: listen address %q: %w", s, err)
		}
	}
	// The host starts listening on nothing, and listens below: when
	// libp2p.New itself fails to listen (a port in use) it leaks the
	// goroutines of the parts it had built, while a failed Listen here is
	// undone by Close.
	opts = append(opts, libp2p.NoListenAddrs)
	// libp2p's default resource manager, without its metrics: they would
	// time-stamp and report every stream event, to nobody.
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("p2pnet: resource manager: %w", err)
	}
	opts = append(opts, libp2p.ResourceManager(mgr)) // closed by the host (or by New on failure)
	lh, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: starting libp2p host: %w", err)
	}
	if len(listen) > 0 {
		err := lh.Network().Listen(listen...)
		// Listen succeeds when any one address works; we want them all.
		if got := len(lh.Network().ListenAddresses()); err == nil && got < len(listen) {
			err = fmt.Errorf("bound %d of %d addresses (see libp2p's log)", got, len(listen))
		}
		if err != nil {
			lh.Close()
			return nil, fmt.Errorf("p2pnet: listening on %v: %w", cfg.ListenAddrs, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Host{cfg: cfg, log: cfg.Logger, host: lh, ctx: ctx, cancel: cancel}
	h.log.Info().Stringer("peer", lh.ID()).Int("port", h.Port()).Msg("p2pnet host listening")
	return h, nil
}

func identity(cfg Config) (crypto.PrivKey, error) {
	if cfg.KeyFile == "" {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		return k, err
	}
	k, created, err := LoadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	if created {
		cfg.Logger.Info().Str("file", cfg.KeyFile).Msg("created a new peer identity key")
	}
	return k, nil
}

// ID is the peer ID, derived from the identity key.
func (h *Host) ID() PeerID { return PeerID(h.host.ID()) }

// Addrs are the addresses the host listens on, with unspecified addresses
// (0.0.0.0) expanded to the machine's interface addresses.
func (h *Host) Addrs() []multiaddr.Multiaddr { return h.host.Addrs() }

// AddrInfo is the ID and addresses other peers dial this host by, as libp2p
// names them.
func (h *Host) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: h.host.ID(), Addrs: h.Addrs()} }

// Remote names this host for another host's Infer and FetchWeights.
func (h *Host) Remote() Remote { return Remote{ID: h.ID(), addrs: h.Addrs()} }

// Port is the TCP port actually bound (the first, if several listen
// addresses were given), or 0 when the host listens on nothing. With port 0
// in the configuration this is how to learn the port to gossip.
func (h *Host) Port() int {
	for _, a := range h.host.Network().ListenAddresses() {
		v, err := a.ValueForProtocol(multiaddr.P_TCP)
		if err != nil {
			continue
		}
		if p, err := strconv.Atoi(v); err == nil && p > 0 {
			return p
		}
	}
	return 0
}

// Close stops serving, resets every open stream, closes the libp2p host and
// waits for every running handler to return. Handlers must honour their
// context for Close to return promptly. Calling Close again returns the first
// call's result.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.cancel()
		h.host.RemoveStreamHandler(InferProtocol)
		h.host.RemoveStreamHandler(SessionProtocol)
		h.host.RemoveStreamHandler(WeightsProtocol)
		h.closeErr = h.host.Close()
		h.handlers.Wait()
	})
	return h.closeErr
}

func (h *Host) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// track wraps a stream handler so that Close can wait for it.
func (h *Host) track(fn func(network.Stream)) network.StreamHandler {
	return func(s network.Stream) {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			s.Reset()
			return
		}
		h.handlers.Add(1)
		h.mu.Unlock()
		defer h.handlers.Done()
		fn(s)
	}
}

// callContext derives the context of an outgoing call: done when ctx is, or
// when the host closes.
func (h *Host) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// openStream connects to the peer if need be and opens a stream for proto.
func (h *Host) openStream(ctx context.Context, to peer.AddrInfo, proto protocol.ID) (network.Stream, error) {
	if err := h.host.Connect(ctx, to); err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	s, err := h.host.NewStream(ctx, to.ID, proto)
	if err != nil {
		return nil, fmt.Errorf("opening %s stream: %w", proto, err)
	}
	return s, nil
}

// callError says why an outgoing call failed, putting first what the caller
// tests for: ErrClosed when the host was closed, the context's error when
// the context ended, context.DeadlineExceeded when the stream's deadline
// passed.
func (h *Host) callError(ctx context.Context, what string, to peer.ID, err error) error {
	switch {
	case h.ctx.Err() != nil:
		return fmt.Errorf("p2pnet: %s %s: %w", what, to, ErrClosed)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("p2pnet: %s %s: %w: %w", what, to, ctx.Err(), err)
	case isTimeout(err) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("p2pnet: %s %s: %w: %w", what, to, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("p2pnet: %s %s: %w", what, to, err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
