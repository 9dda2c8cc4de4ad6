package gossip

import (
	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks. They run on memberlist's
// goroutines, most of them with memberlist's node lock held, so they touch
// only the view, atomics and the two wake-up channels, and never call into
// memberlist (nor take Gossip.mu, which Start holds while memberlist starts).
type delegate struct {
	g *Gossip
}

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
)

// NodeMeta returns the snapshot that Start or UpdateMeta took (and checked
// against the limit), so memberlist never calls user code.
func (d *delegate) NodeMeta(limit int) []byte {
	if p := d.g.meta.Load(); p != nil && len(*p) <= limit {
		return *p
	}
	return nil
}

func (d *delegate) NotifyMsg(buf []byte) {
	kind, name, err := decodeMessage(buf)
	if err != nil {
		d.g.log.Debug().Err(err).Msg("gossip: dropped a message")
		return
	}
	if kind == msgLeaveIntent && d.g.view.intent(name) {
		d.g.log.Info().Str("member", name).Msg("gossip: member left")
		d.g.changed()
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.g.bcast.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte { return nil }

func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	m := memberOf(n, StateAlive)
	d.g.view.join(m)
	if n.Name != d.g.cfg.Name {
		d.g.log.Info().Str("member", m.Name).Str("addr", m.Address()).Msg("gossip: member joined")
	}
	d.g.changed()
}

func (d *delegate) NotifyLeave(n *memberlist.Node) {
	s := d.g.view.depart(n.Name)
	ev := d.g.log.Info()
	if s == StateDead {
		ev = d.g.log.Warn()
	}
	msg := "gossip: member left"
	if s == StateDead {
		msg = "gossip: member failed"
	}
	ev.Str("member", n.Name).Str("addr", memberOf(n, s).Address()).Msg(msg)
	d.g.changed()
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	d.g.view.update(memberOf(n, StateAlive))
	d.g.log.Debug().Str("member", n.Name).Int("meta_bytes", len(n.Meta)).Msg("gossip: member updated")
	d.g.changed()
}

func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.g.logConflict(memberOf(existing, StateAlive), memberOf(other, StateAlive))
}

func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	if err := d.g.checkMerge(peers); err != nil {
		d.g.refused(err)
		return err
	}
	return nil
}

func (d *delegate) NotifyAlive(peer *memberlist.Node) error {
	if d.g.cfg.AcceptMember == nil || peer.Name == d.g.cfg.Name {
		// This node's own name is memberlist's business: an impostor at
		// another address is a conflict (NotifyConflict), not a refusal.
		return nil
	}
	return d.g.accept(memberOf(peer, StateAlive))
}
