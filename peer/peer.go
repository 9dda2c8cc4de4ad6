package peer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/gossip"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/p2pnet/pb"
)

// Version is the software version peers announce; set by the binary.
var Version = "dev"

// ErrStopped is returned by calls on a peer that has shut down.
var ErrStopped = errors.New("peer: stopped")

// Peer is one device of the cluster: it gossips its membership, serves the
// variants the shared plan gives it, fetches weights it lacks from other
// peers, and takes classification requests, which it fans out to the live
// variants and decides with package consensus.
type Peer struct {
	cfg      Config
	log      zerolog.Logger
	manifest *format.Manifest
	famDir   string
	weights  []float64 // fusion weights, family order
	// totalWeight is their sum: a fused score over it is a confidence.
	totalWeight float64
	shas        [][]byte // variant weights' SHA-256, raw, family order
	// familyDigest names shas in the metadata: peers with the same one
	// read each other's held bitmaps alike.
	familyDigest []byte
	index        map[string]int
	key          []byte

	store   *Store
	pool    *nn.Pool
	host    transport  // *p2pnet.Host
	gossip  membership // *gossip.Gossip
	sched   *scheduler
	decode  *decoder
	httpSrv *http.Server
	httpLn  net.Listener
	metrics *metrics
	speed   float64
	ready   readiness // what Ready remembers (ready.go)

	mu      sync.Mutex
	servers map[string]*server // variant id → server
	loading map[string]bool    // variants being fetched or loaded
	view    []memberView       // alive members, self included, sorted by name
	plan    consensus.Plan

	// unusable holds the members readView left out, with the reason last
	// logged; only the reconcile loop touches it.
	unusable map[string]string

	kick     chan struct{} // wakes the reconciler
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	started  bool
}

// New checks cfg, loads the family manifest and the cluster key, and prepares
// the peer. It starts nothing.
func New(cfg Config, logger zerolog.Logger) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := ReadClusterKey(cfg.ClusterKey)
	if err != nil {
		return nil, err
	}
	famDir := cfg.Family
	if famDir == "" {
		if famDir, err = extractDefaultFamily(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	man, err := format.ReadManifest(famDir)
	if err != nil {
		return nil, err
	}
	p := &Peer{
		cfg: cfg, log: logger.With().Str("node", cfg.NodeName).Logger(),
		manifest: man, famDir: famDir, weights: man.FusionWeights(), key: key,
		index: map[string]int{}, servers: map[string]*server{}, loading: map[string]bool{},
		kick:  make(chan struct{}, 1),
		sched: newScheduler(cfg.HedgeDelay, logger.With().Str("node", cfg.NodeName).Str("component", "scheduler").Logger()),
	}
	p.decode = newDecoder(cfg.MaxPixels, cfg.Threads)
	for _, w := range p.weights {
		p.totalWeight += w
	}
	for i, v := range man.Variants {
		p.index[v.ID] = i
		raw, err := hex.DecodeString(v.SHA256) // DecodeManifest checked it is hex
		if err != nil {
			return nil, fmt.Errorf("%s: variant %s: sha256: %w", famDir, v.ID, err)
		}
		p.shas = append(p.shas, raw)
	}
	p.familyDigest = pb.FamilyDigest(p.shas)
	for _, id := range cfg.Pinned {
		if _, ok := p.index[id]; !ok {
			return nil, fmt.Errorf("config: pinned: family %s has no variant %q", man.Name, id)
		}
	}
	return p, nil
}

// Start opens the store, the libp2p host, the gossip and the HTTP API, and
// starts serving. On error everything started so far is stopped again.
func (p *Peer) Start() (err error) {
	defer func() {
		if err != nil {
			p.Shutdown()
		}
	}()
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.started = true
	if err := os.MkdirAll(p.cfg.DataDir, 0o700); err != nil {
		return err
	}
	if p.store, err = OpenStore(p.cfg.DataDir); err != nil {
		return err
	}
	// Weights present in the family directory enter the store (hash-checked),
	// so that this peer can serve them and share them.
	for _, v := range p.manifest.Variants {
		path := filepath.Join(p.famDir, v.Weights)
		if _, err := os.Stat(path); err == nil {
			if err := p.store.PutFile(path, v.SHA256); err != nil {
				return err
			}
		}
	}
	p.pool = nn.NewPool(p.cfg.Threads)
	p.metrics = newMetrics()
	p.sched.metrics = p.metrics
	p.speed = probeSpeed(p)

	if p.host, err = p.startTransport(); err != nil {
		return err
	}
	if err := p.startMembership(); err != nil {
		return err
	}
	if err := p.startHTTP(); err != nil {
		return err
	}
	p.wg.Add(1)
	go p.reconcileLoop()
	p.wake()
	p.log.Info().Str("family", p.manifest.Name).Str("p2p", p.host.ID().String()).
		Str("http", p.httpLn.Addr().String()).Float64("speed", p.speed).Msg("peer started")
	return nil
}

// HTTPAddr is the address the API listens on (useful with port 0).
func (p *Peer) HTTPAddr() string { return p.httpLn.Addr().String() }

// GossipAddr is the host:port other peers join this one at (useful with
// port 0), or "" before Start.
func (p *Peer) GossipAddr() string {
	if p.gossip == nil {
		return ""
	}
	host, port := p.gossip.LocalAddr()
	if host == "" {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Leave tells the cluster this peer is going, so that others stop sending it
// requests and take over its variants without waiting for failure detection.
func (p *Peer) Leave(timeout time.Duration) error {
	if p.gossip == nil {
		return nil
	}
	return p.gossip.Leave(timeout)
}

// Shutdown stops everything the peer started and waits for its goroutines.
// It is safe to call more than once.
func (p *Peer) Shutdown() error {
	p.stopOnce.Do(func() {
		if p.cancel != nil {
			p.cancel()
		}
		if p.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.httpSrv.Shutdown(ctx)
			cancel()
		}
		if p.gossip != nil {
			p.gossip.Shutdown()
		}
		p.wg.Wait()
		// Classify calls were cancelled with p.ctx; they end promptly.
		p.sched.wait()
		p.mu.Lock()
		servers := p.servers
		p.servers = map[string]*server{}
		p.mu.Unlock()
		for _, s := range servers {
			s.stop()
		}
		if p.host != nil {
			p.host.Close()
		}
		p.decode.wait() // abandoned decodes stop at their next read
		p.pool.Close()
	})
	return nil
}

func (p *Peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// reconcileLoop recomputes the plan whenever the membership changes (and every
// few seconds, to retry fetches), and makes this peer serve its share.
func (p *Peer) reconcileLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-tick.C:
		}
		p.reconcile()
	}
}

func (p *Peer) reconcile() {
	view := p.readView()
	plan := consensus.Assign(p.members(view), p.variants())
	mine := plan.Serving[p.cfg.NodeName]

	p.observeReady(view, plan)
	p.mu.Lock()
	p.view, p.plan = view, plan
	want := map[string]bool{}
	for _, id := range mine {
		want[id] = true
		if p.servers[id] == nil && !p.loading[id] {
			p.loading[id] = true
			p.wg.Add(1)
			go p.load(id)
		}
	}
	// Make before break: hand a variant over only once a member the plan
	// gives it to announces it. Any other server would not do: two peers
	// handing the same variant over at once would each see the other
	// still serving it and both stop, and the plan's member keeps it.
	var drop []*server
	for id, s := range p.servers {
		if want[id] || !p.servedByPlanned(view, plan, id) {
			continue
		}
		drop = append(drop, s)
		delete(p.servers, id)
	}
	p.mu.Unlock()
	for _, s := range drop {
		p.log.Info().Str("variant", s.id).Msg("handing variant over")
		s.stop()
	}
	if len(drop) > 0 {
		p.announce()
	}
	p.metrics.members.Set(float64(len(view)))
	live := map[string]bool{}
	for _, m := range view {
		live[m.Name] = true
	}
	p.sched.forget(func(member string) bool { return live[member] })
}

// members is the view as Assign takes it: what each member serves, and what
// its store holds (so the plan bridges a variant given to a member that must
// fetch it to one that serves it at once).
func (p *Peer) members(view []memberView) []consensus.Member {
	var members []consensus.Member
	for _, m := range view {
		var serving, holding []string
		for i, v := range p.manifest.Variants {
			if serves(m.Meta, v.ID, p.shas[i]) {
				serving = append(serving, v.ID)
			}
			if p.holds(m.Meta, i) {
				holding = append(holding, v.ID)
			}
		}
		members = append(members, consensus.Member{Name: m.Name, Speed: float64(m.Meta.Speed),
			Memory: int64(m.Meta.MemoryBudget), Pinned: m.Meta.Pinned, Serving: serving, Holding: holding})
	}
	return members
}

// variants is the family as Assign takes it.
func (p *Peer) variants() []consensus.Variant {
	var variants []consensus.Variant
	for _, v := range p.manifest.Variants {
		variants = append(variants, consensus.Variant{ID: v.ID, Memory: v.Spec.Params() * 4, Cost: float64(v.Spec.MACs())})
	}
	return variants
}

// servedByPlanned reports whether a member other than this peer that plan
// gives variant id announces serving it.
func (p *Peer) servedByPlanned(view []memberView, plan consensus.Plan, id string) bool {
	sha := p.shas[p.index[id]]
	for _, m := range view {
		if m.Name != p.cfg.NodeName && slices.Contains(plan.Holders[id], m.Name) && serves(m.Meta, id, sha) {
			return true
		}
	}
	return false
}

func serves(meta *pb.NodeMeta, id string, sha []byte) bool {
	for _, v := range meta.Variants {
		if v.VariantId == id && bytes.Equal(v.ModelSha256, sha) {
			return true
		}
	}
	return false
}

// holds reports whether the member whose metadata is meta has the weights of
// the family's variant i in its store: it serves them, or it announces them
// held in this family.
func (p *Peer) holds(meta *pb.NodeMeta, i int) bool {
	if serves(meta, p.manifest.Variants[i].ID, p.shas[i]) {
		return true
	}
	return bytes.Equal(meta.FamilyDigest, p.familyDigest) && pb.Holds(meta.Held, i)
}

// load makes variant id servable: weights from the store or from a peer
// holding them, then the model, then a server.
func (p *Peer) load(id string) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.loading, id)
		p.mu.Unlock()
	}()
	i := p.index[id]
	v := p.manifest.Variants[i]
	if !p.store.Has(v.SHA256) {
		// The family directory first, as Start does (a stored file removed
		// as damaged comes back from there), then the peers that hold it.
		if err := p.store.PutFile(filepath.Join(p.famDir, v.Weights), v.SHA256); err != nil {
			if err := p.fetch(v); err != nil {
				p.log.Warn().Err(err).Str("variant", id).Msg("cannot get weights yet; will retry")
				return
			}
		}
	}
	// The store hands over bytes it has checked against the hash (see
	// Store), so the model is built from them without hashing again.
	data, err := p.store.Read(v.SHA256, format.MaxSafetensorsBytes)
	if err != nil {
		// A damaged file is gone now: the next round (at most the
		// reconcile tick away) gets it again.
		p.log.Error().Err(err).Str("variant", id).Msg("stored weights unreadable")
		return
	}
	name := p.store.Path(v.SHA256)
	st, err := format.DecodeSafetensors(name, data)
	var m *nn.Model
	if err == nil {
		m, err = nn.NewModel(v.Spec, st.Weights(), name)
	}
	if err != nil {
		p.log.Error().Err(err).Str("variant", id).Msg("stored weights do not load")
		return
	}
	s := newServer(id, p.shas[i], m, p.pool, p.cfg.QueueDepth)
	p.mu.Lock()
	if p.ctx.Err() != nil || p.servers[id] != nil {
		p.mu.Unlock()
		s.stop()
		return
	}
	p.servers[id] = s
	p.mu.Unlock()
	p.log.Info().Str("variant", id).Msg("serving variant")
	p.announce()
}

// fetch downloads a variant's weights from the first peer whose store holds
// them (serving them or not) and whose bytes hash right; a peer whose bytes
// are wrong is skipped. Peers that hold them without serving them come
// first: they have the time to spare.
func (p *Peer) fetch(v format.VariantInfo) error {
	p.mu.Lock()
	view := p.view
	p.mu.Unlock()
	limit := v.Spec.Params()*8 + 1<<20 // F32 weights plus header room, with margin
	i := p.index[v.ID]
	var from []memberView
	for _, m := range view {
		if !m.Self && p.holds(m.Meta, i) {
			from = append(from, m)
		}
	}
	slices.SortStableFunc(from, func(a, b memberView) int {
		sa, sb := serves(a.Meta, v.ID, p.shas[i]), serves(b.Meta, v.ID, p.shas[i])
		switch {
		case sa == sb:
			return 0
		case sb:
			return -1
		}
		return 1
	})
	var errs []error
	for _, m := range from {
		ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
		err := p.store.Put(v.SHA256, m.Name, func(w io.Writer) error {
			return p.host.FetchWeights(ctx, m.P2P, v.SHA256, limit, w)
		})
		cancel()
		if err == nil {
			p.log.Info().Str("variant", v.ID).Str("from", m.Name).Msg("fetched weights")
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("no live peer holds %s (%s)", v.ID, v.SHA256[:12])
	}
	return errors.Join(errs...)
}

// announce re-broadcasts this peer's metadata after its served set changed.
func (p *Peer) announce() {
	switch err := p.gossip.UpdateMeta(5 * time.Second); {
	case err == nil:
	case errors.Is(err, gossip.ErrLeft), errors.Is(err, gossip.ErrShutdown):
		// Stopping: the served set emptied as the peer left; nobody to tell.
		p.log.Debug().Err(err).Msg("metadata update after leaving")
	default:
		p.log.Warn().Err(err).Msg("metadata update")
	}
}

// probeSpeed is measureSpeed; tests that need a known plan set the speed
// every peer announces.
var probeSpeed = (*Peer).measureSpeed

// measureSpeed times the family's cheapest variant when its weights are here;
// the result only has to be comparable between peers of one family.
func (p *Peer) measureSpeed() float64 {
	best := -1
	for i, v := range p.manifest.Variants {
		if best < 0 || v.Spec.MACs() < p.manifest.Variants[best].Spec.MACs() {
			best = i
		}
	}
	spec := p.manifest.Variants[best].Spec
	m, err := nn.NewModel(spec, randomWeights(spec).Weights(), "speed probe")
	if err != nil {
		return 1
	}
	s := m.NewSession(1, p.pool)
	in := make([]float32, m.InputSize())
	s.Forward(in)
	// The fastest of several runs: peers start at the same time and disturb
	// each other's timing, and a minimum is far less noisy than a mean.
	fastest := time.Duration(math.MaxInt64)
	for i := 0; i < 20; i++ {
		start := time.Now()
		s.Forward(in)
		fastest = min(fastest, time.Since(start))
	}
	return quantizeSpeed(1e-3 / max(fastest.Seconds(), 1e-6)) // forward passes per millisecond
}

// quantizeSpeed rounds a measured speed to a power of two, so that machines
// of one kind announce the same speed and timing noise does not reshuffle
// the plan; a 2x difference in speed still shows.
func quantizeSpeed(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	return math.Exp2(math.Round(math.Log2(v)))
}
