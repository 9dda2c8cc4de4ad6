package peer

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/varpar/varpar/gossip"
	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/p2pnet/pb"
)

// membership is what the peer needs of gossip once it runs. *gossip.Gossip
// is the real one (startMembership).
type membership interface {
	Members() []gossip.Member
	LocalAddr() (string, int)
	UpdateMeta(timeout time.Duration) error
	Leave(timeout time.Duration) error
	Shutdown() error
}

var _ membership = (*gossip.Gossip)(nil)

// startMembership starts gossiping on the configured address and joins the
// seeds (in the background).
func (p *Peer) startMembership() error {
	host, port, err := net.SplitHostPort(p.cfg.GossipAddr)
	if err != nil {
		return err
	}
	cfg := gossip.DefaultConfig()
	cfg.Name = p.cfg.NodeName
	cfg.BindAddr = host
	cfg.BindPort, _ = strconv.Atoi(port)
	cfg.AdvertiseAddr = p.cfg.AdvertiseAddr
	cfg.Seeds = p.cfg.Seeds
	cfg.Key = p.key
	cfg.Meta = p.encodeMeta
	cfg.OnChange = p.wake
	cfg.AcceptMember = p.acceptMember
	cfg.Logger = p.log.With().Str("component", "gossip").Logger()
	cfg.OnRejected = p.metrics.gossipRejected
	g, err := gossip.New(cfg)
	if err != nil {
		return err
	}
	// Set before Start: acceptMember, called during the join, reads it.
	p.gossip = g
	return g.Start()
}

// memberView is a member as the peer sees it: gossip's view plus its metadata.
type memberView struct {
	Name string
	Addr string // gossip address
	Meta *pb.NodeMeta
	P2P  p2pnet.Remote
	Self bool
}

// readView decodes every alive member's metadata and transport address.
// A member this peer cannot use is left out of its view (as before: calls to
// it could only fail) and said so in the log, once each time the reason
// changes. Only the reconcile loop calls it.
func (p *Peer) readView() []memberView {
	var out []memberView
	unusable := map[string]string{}
	for _, m := range p.gossip.Members() {
		v, err := p.memberOf(m)
		if err != nil {
			unusable[m.Name] = err.Error()
			if p.unusable[m.Name] != unusable[m.Name] {
				p.log.Warn().Err(err).Str("member", m.Name).Str("gossip", m.Address()).
					Msg("member left out: this peer cannot use its metadata or address")
			}
			continue
		}
		if _, was := p.unusable[m.Name]; was {
			p.log.Info().Str("member", m.Name).Stringer("p2p", v.P2P).Msg("member usable again")
		}
		out = append(out, v)
	}
	p.unusable = unusable
	return out
}

// memberOf reads one member's metadata and names its libp2p host: the peer
// ID it announces, at the IP address it gossips from (IPv4 or IPv6) and the
// port it announces.
func (p *Peer) memberOf(m gossip.Member) (memberView, error) {
	meta, err := pb.UnmarshalMeta(m.Meta)
	if err != nil {
		return memberView{}, fmt.Errorf("peer: member %s: metadata: %w", m.Name, err)
	}
	remote, err := p2pnet.NewRemote(meta.PeerId, m.Addr, int(meta.Libp2PPort))
	if err != nil {
		return memberView{}, fmt.Errorf("peer: member %s: %w", m.Name, err)
	}
	return memberView{Name: m.Name, Addr: m.Address(), Meta: meta, P2P: remote, Self: m.Name == p.cfg.NodeName}, nil
}

// encodeMeta is this peer's gossip metadata.
func (p *Peer) encodeMeta() []byte {
	meta := &pb.NodeMeta{Version: 1, PeerId: p.host.ID().String(), Libp2PPort: uint32(p.host.Port()),
		Speed: float32(p.speed), SoftwareVersion: Version, MemoryBudget: uint64(p.cfg.MemoryBudget), Pinned: p.cfg.Pinned}
	p.mu.Lock()
	ids := make([]string, 0, len(p.servers))
	var load int64
	for id, s := range p.servers {
		ids = append(ids, id)
		load += s.load()
	}
	sort.Strings(ids)
	for _, id := range ids {
		meta.Variants = append(meta.Variants, &pb.ServedVariant{VariantId: id, ModelSha256: p.servers[id].shaRaw})
	}
	p.mu.Unlock()
	meta.Load = float32(load)
	// What the store holds, so that peers lacking a variant's weights
	// fetch them from here even when this peer does not serve it, and the
	// plan can prefer this peer for it.
	for i, v := range p.manifest.Variants {
		if i < 8*pb.MaxHeldLen && p.store.Has(v.SHA256) {
			meta.Held = pb.SetHeld(meta.Held, i)
		}
	}
	if len(meta.Held) > 0 {
		meta.FamilyDigest = p.familyDigest
	}
	b, err := pb.MarshalMeta(meta)
	if errors.Is(err, pb.ErrMetaTooLarge) && len(meta.Held) > 0 {
		// What is served matters more than what is held.
		meta.Held, meta.FamilyDigest = nil, nil
		b, err = pb.MarshalMeta(meta)
	}
	if err != nil {
		p.log.Error().Err(err).Msg("node metadata too large")
		return nil
	}
	return b
}

// acceptMember refuses a member whose libp2p identity is already another
// member's: two devices cloned from one image must not become one node.
func (p *Peer) acceptMember(m gossip.Member) error {
	meta, err := pb.UnmarshalMeta(m.Meta)
	if err != nil || meta.PeerId == "" {
		return nil
	}
	if m.Name != p.cfg.NodeName && p.host != nil && meta.PeerId == p.host.ID().String() {
		return fmt.Errorf("member %s at %s has this peer's libp2p identity %s (a cloned data directory?)", m.Name, m.Address(), meta.PeerId)
	}
	for _, o := range p.gossip.Members() {
		if o.Name == m.Name {
			continue
		}
		if om, err := pb.UnmarshalMeta(o.Meta); err == nil && om.PeerId == meta.PeerId {
			return fmt.Errorf("member %s at %s has the libp2p identity of %s (%s)", m.Name, m.Address(), o.Name, meta.PeerId)
		}
	}
	return nil
}
