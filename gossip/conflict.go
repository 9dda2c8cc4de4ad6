package gossip

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// Name conflicts and refused members.
//
// Two devices cloned from one image come up with one name at two addresses.
// memberlist itself keeps the first claimant and ignores the other's alive
// messages (reporting them to NotifyConflict), but a join is a full state
// exchange: left alone, the newcomer would merge the cluster's table and see
// every member while no member sees it. So both sides of a join vet the table
// the other side sent (checkMerge, memberlist's MergeDelegate) and cancel
// their merge on a conflict. The seed sends its table before it merges the
// joiner's, so the joiner always gets to decide, and the two decisions agree
// because each side checks the same pair of claimants. The outcome is
// deterministic: the newcomer joins nobody, nobody adds it, and its join
// fails with a *NameConflictError.
//
// A claimant the other side reports as left frees the name at once (as in
// memberlist); one reported dead blocks it until the cluster forgets it
// (Config.DeadRetention), so a device that crashed and came back on a new
// address is let in a little later, while a live claimant blocks it for good.

// conflictLogEvery rate-limits the error line logged for one conflict:
// memberlist reports it for every alive message the newcomer sends.
const conflictLogEvery = time.Minute

// checkMerge vets the table that the other side of a join sent.
func (g *Gossip) checkMerge(peers []*memberlist.Node) error {
	self, selfKnown := g.view.lookup(g.cfg.Name)
	for _, n := range peers {
		theirs := memberOf(n, stateOf(n.State))
		if n.Name == g.cfg.Name {
			if theirs.State == StateLeft || selfKnown && self.Address() == theirs.Address() {
				continue // a name given up, or ourselves (an earlier incarnation)
			}
			return &NameConflictError{Name: n.Name, Self: true, Ours: self.Address(), Theirs: theirs.Address(), TheirState: theirs.State}
		}
		if theirs.State != StateAlive {
			continue
		}
		if mine, ok := g.view.lookup(n.Name); ok && mine.State != StateLeft && mine.Address() != theirs.Address() {
			return &NameConflictError{Name: n.Name, Ours: mine.Address(), Theirs: theirs.Address(), TheirState: theirs.State}
		}
		if err := g.accept(theirs); err != nil {
			return err
		}
	}
	return nil
}

// accept asks Config.AcceptMember about a member other than this node.
func (g *Gossip) accept(m Member) error {
	if g.cfg.AcceptMember == nil || m.Name == g.cfg.Name {
		return nil
	}
	if err := g.cfg.AcceptMember(m); err != nil {
		return &RefusedError{Member: m, Err: err}
	}
	return nil
}

// refused logs a cancelled merge and keeps the reason for the join loop,
// which gets only memberlist's flattened text of it (see classifyJoinError).
func (g *Gossip) refused(err error) {
	g.refusal.Store(&err)
	g.log.Error().Err(err).Msg("gossip: refused to merge with the other side of a join")
}

// logConflict reports a conflict that memberlist found outside a join (its
// NotifyConflict): the newcomer is ignored; say so, once a minute.
func (g *Gossip) logConflict(existing, other Member) {
	key := existing.Name + " " + other.Address()
	g.conflictMu.Lock()
	now := g.now()
	if last, ok := g.conflicts[key]; ok && now.Sub(last) < conflictLogEvery {
		g.conflictMu.Unlock()
		return
	}
	if len(g.conflicts) >= 64 {
		clear(g.conflicts)
	}
	g.conflicts[key] = now
	g.conflictMu.Unlock()

	ev := g.log.Error().Str("name", existing.Name).Str("existing", existing.Address()).Str("other", other.Address())
	if existing.Name == g.cfg.Name {
		ev.Msg("gossip: name conflict: another node claims this node's name and is ignored; give every device its own name")
		return
	}
	ev.Msg("gossip: name conflict: two nodes claim one name, the newcomer is ignored; give every device its own name")
}
