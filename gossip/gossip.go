package gossip

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

type lifecycle int

const (
	stateNew lifecycle = iota
	stateRunning
	stateLeft
	stateShutdown
)

// Gossip is this node's membership in the cluster. Its methods are safe for
// concurrent use.
type Gossip struct {
	cfg  Config
	log  zerolog.Logger
	now  func() time.Time
	view *view

	// opMu serialises Start, UpdateMeta, Leave and Shutdown, so that
	// memberlist's Leave and UpdateNode never run after its Shutdown (the
	// one panics, the other waits forever). Callbacks from memberlist never
	// take it.
	opMu sync.Mutex
	// state and ml are written under opMu and read without a lock: Members
	// may be called from AcceptMember, inside memberlist's callbacks, at any
	// time, Start included.
	state      atomic.Int32 // a lifecycle
	ml         atomic.Pointer[memberlist.Memberlist]
	cancel     context.CancelFunc // stops every goroutine of ours; under opMu
	joinCancel context.CancelFunc // stops the join loop alone (Leave); under opMu

	wg      sync.WaitGroup // the notifier and the join loop
	joinWG  sync.WaitGroup // the join loop
	stopped chan struct{}  // closed by Shutdown

	meta atomic.Pointer[[]byte] // what NodeMeta hands memberlist; written under opMu

	bcast   *memberlist.TransmitLimitedQueue // leave intents
	notify  chan struct{}                    // 1-buffered: OnChange is due
	wake    chan struct{}                    // 1-buffered: membership changed, for the join loop
	refusal atomic.Pointer[error]            // the last merge this node refused

	joined      chan struct{} // closed when the join phase ends
	joinOnce    sync.Once
	joinMu      sync.Mutex
	joinErr     error // why the join phase ended, nil if joined
	lastJoinErr error

	conflictMu sync.Mutex
	conflicts  map[string]time.Time // conflict -> last logged
}

// New validates cfg and returns a Gossip that has not started.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Seeds = slices.Clone(cfg.Seeds)
	cfg.Key = slices.Clone(cfg.Key)
	g := &Gossip{
		cfg:       cfg,
		log:       cfg.Logger,
		now:       time.Now,
		stopped:   make(chan struct{}),
		notify:    make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		joined:    make(chan struct{}),
		conflicts: make(map[string]time.Time),
	}
	g.view = newView(cfg.Name, cfg.DeadRetention, g.now)
	g.bcast = &memberlist.TransmitLimitedQueue{
		NumNodes:       g.view.size,
		RetransmitMult: memberlist.DefaultLANConfig().RetransmitMult,
	}
	return g, nil
}

// Start binds the gossip port, announces this node, and starts joining the
// seeds in the background (see WaitJoined). It fails if the port cannot be
// bound or Config.Meta returns too much; Start can be called once.
func (g *Gossip) Start() error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	switch g.lifecycle() {
	case stateRunning, stateLeft:
		return ErrStarted
	case stateShutdown:
		return ErrShutdown
	}

	meta, err := g.loadMeta()
	if err != nil {
		return err
	}
	g.meta.Store(&meta)

	keyring, err := memberlist.NewKeyring(nil, g.cfg.Key)
	if err != nil {
		return fmt.Errorf("gossip: keyring: %w", err)
	}
	mc := g.cfg.memberlistConfig(&delegate{g: g}, keyring, newStdLogger(g.log, g.cfg.OnRejected, g.stopped))
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("gossip: start: %w", err)
	}
	g.ml.Store(ml)
	self := ml.LocalNode()
	g.log.Info().Str("name", self.Name).Str("addr", self.Address()).Strs("seeds", g.cfg.Seeds).Msg("gossip: started")

	ctx, cancel := context.WithCancel(context.Background())
	joinCtx, joinCancel := context.WithCancel(ctx)
	g.cancel, g.joinCancel = cancel, joinCancel
	g.state.Store(int32(stateRunning))

	g.wg.Add(1)
	go g.notifier(ctx)
	if len(g.cfg.Seeds) == 0 {
		g.finishJoin(nil)
	} else {
		g.wg.Add(1)
		g.joinWG.Add(1)
		go func() {
			defer g.joinWG.Done()
			g.joinLoop(joinCtx, ml)
		}()
	}
	return nil
}

// notifier calls Config.OnChange, one call for any number of changes since
// the last.
func (g *Gossip) notifier(ctx context.Context) {
	defer g.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.notify:
			if ctx.Err() == nil && g.cfg.OnChange != nil {
				g.cfg.OnChange()
			}
		}
	}
}

// changed is called by the delegate on any change of membership or metadata.
func (g *Gossip) changed() {
	kick(g.notify)
	kick(g.wake)
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// loadMeta takes a snapshot of Config.Meta and checks its size.
func (g *Gossip) loadMeta() ([]byte, error) {
	if g.cfg.Meta == nil {
		return nil, nil
	}
	meta := slices.Clone(g.cfg.Meta())
	if len(meta) > MetaMaxSize {
		return nil, fmt.Errorf("%w: Config.Meta returned %d bytes, at most %d", ErrMetaTooLarge, len(meta), MetaMaxSize)
	}
	return meta, nil
}

// running returns the memberlist if this node is started and has not left.
func (g *Gossip) running() (*memberlist.Memberlist, error) {
	switch g.lifecycle() {
	case stateNew:
		return nil, ErrNotStarted
	case stateLeft:
		return nil, ErrLeft
	case stateShutdown:
		return nil, ErrShutdown
	}
	return g.ml.Load(), nil
}

func (g *Gossip) lifecycle() lifecycle { return lifecycle(g.state.Load()) }

// LocalAddr returns the address and port other nodes reach this one at (the
// real port when Config.BindPort was 0), or "", 0 before Start.
func (g *Gossip) LocalAddr() (string, int) {
	m, ok := g.view.lookup(g.cfg.Name)
	if !ok {
		return "", 0
	}
	return m.Addr, m.Port
}

// Members returns the live members, this node included, sorted by name
// (none before Start or after Shutdown). The slice and the metadata are the
// caller's.
func (g *Gossip) Members() []Member {
	if g.inactive() {
		return nil
	}
	return g.view.alive()
}

// AllMembers returns the live members and those that failed or left within
// Config.DeadRetention, sorted by name, with their State.
func (g *Gossip) AllMembers() []Member {
	if g.inactive() {
		return nil
	}
	return g.view.all()
}

func (g *Gossip) inactive() bool {
	st := g.lifecycle()
	return st == stateNew || st == stateShutdown
}

// UpdateMeta takes a new snapshot of Config.Meta and gossips it. It waits
// until the update has been sent to the cluster or timeout has passed (then
// it returns an error, but the update still spreads); alone, it returns at
// once. Memberlist's periodic state exchange repairs what gossip loses.
// Leave and Shutdown wait for an UpdateMeta in progress.
func (g *Gossip) UpdateMeta(timeout time.Duration) error {
	// Under opMu: concurrent updates must not overtake each other, and
	// memberlist's UpdateNode must not start after its Shutdown (it would
	// wait for a broadcast that never goes).
	g.opMu.Lock()
	defer g.opMu.Unlock()
	ml, err := g.running()
	if err != nil {
		return err
	}
	meta, err := g.loadMeta()
	if err != nil {
		return err
	}
	g.meta.Store(&meta)
	if err := ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossip: update metadata: %w", err)
	}
	return nil
}

// Leave tells the cluster that this node is leaving, so that the others mark
// it left at once instead of waiting for the failure detector, and stops
// rejoining. It waits up to timeout for the news to be sent; 0 means no
// limit. A node that left cannot come back: call Shutdown next. A second
// Leave returns nil.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	switch g.lifecycle() {
	case stateNew:
		return ErrNotStarted
	case stateLeft:
		return nil
	case stateShutdown:
		return ErrShutdown
	}
	ml := g.ml.Load()
	g.state.Store(int32(stateLeft))
	g.joinCancel()
	g.joinWG.Wait()

	start := g.now()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout / 2)
		defer t.Stop()
		deadline = t.C
	}
	g.view.setLeaving()
	if g.view.others() > 0 {
		// The intent first, so that it is out before the dead message.
		b := newIntentBroadcast(g.cfg.Name)
		g.bcast.QueueBroadcast(b)
		select {
		case <-b.done:
		case <-deadline:
			g.log.Warn().Msg("gossip: leave intent not fully sent; others may report this node failed")
		}
	}
	rest := time.Duration(0)
	if timeout > 0 {
		rest = max(timeout-g.now().Sub(start), time.Millisecond)
	}
	if err := ml.Leave(rest); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	g.log.Info().Msg("gossip: left the cluster")
	return nil
}

// Shutdown stops gossiping without saying goodbye (call Leave first for
// that) and returns after every goroutine this package started has ended. It
// may wait for a join attempt in flight, up to Config.StreamTimeout. Calling
// it again, or before Start, is fine.
func (g *Gossip) Shutdown() error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	st := g.lifecycle()
	if st == stateShutdown {
		return nil
	}
	g.state.Store(int32(stateShutdown))
	close(g.stopped)
	if st == stateNew {
		return nil
	}

	g.cancel()
	err := g.ml.Load().Shutdown()
	g.wg.Wait()
	g.log.Info().Msg("gossip: shut down")
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}
