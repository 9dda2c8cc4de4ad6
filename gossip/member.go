package gossip

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is what this node believes about a member.
//
// There is no "suspect": memberlist v0.7.0 keeps suspicion to itself (its
// Node.State field is not maintained for known nodes), and a suspect member
// is still a member, so it is reported as alive until declared dead.
type State string

const (
	// StateAlive: a member, answering probes or not yet declared dead.
	StateAlive State = "alive"
	// StateDead: declared failed by the failure detector (it stopped
	// answering without saying goodbye).
	StateDead State = "dead"
	// StateLeft: said goodbye with Leave.
	StateLeft State = "left"
)

func stateOf(s memberlist.NodeStateType) State {
	switch s {
	case memberlist.StateDead:
		return StateDead
	case memberlist.StateLeft:
		return StateLeft
	default: // alive, suspect
		return StateAlive
	}
}

// Member is one node of the cluster as this node sees it.
type Member struct {
	Name  string
	Addr  string // advertised IP address
	Port  int    // advertised gossip port (UDP and TCP)
	Meta  []byte // the node's Config.Meta; the caller's copy
	State State
}

// Address returns the member's gossip address as host:port.
func (m Member) Address() string { return net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)) }

func memberOf(n *memberlist.Node, s State) Member {
	return Member{
		Name:  n.Name,
		Addr:  n.Addr.String(),
		Port:  int(n.Port),
		Meta:  slices.Clone(n.Meta),
		State: s,
	}
}

// intentTTL bounds how long a leave intent is remembered: long enough for the
// dead message that follows it (or precedes it: gossip does not keep order)
// to arrive, short enough that a stale one cannot relabel a later failure.
const intentTTL = 15 * time.Second

// view is this node's membership table, fed by memberlist's events. Unlike
// memberlist it remembers departed members for a while, and whether they left
// or failed (from the leave intents, see intent.go). Its lock is a leaf: it is
// taken inside memberlist's callbacks, with memberlist's own lock held, so no
// code may call into memberlist while holding it.
type view struct {
	self      string        // this node's name
	retention time.Duration // how long departed members are kept
	now       func() time.Time

	mu      sync.Mutex
	members map[string]*entry
	intents map[string]time.Time // name -> when its leave intent arrived
	leaving bool                 // this node is leaving
}

type entry struct {
	m     Member
	since time.Time // last state change
}

func newView(self string, retention time.Duration, now func() time.Time) *view {
	return &view{
		self:      self,
		retention: retention,
		now:       now,
		members:   make(map[string]*entry),
		intents:   make(map[string]time.Time),
	}
}

// join records a member that became alive (new, or back from dead or left).
func (v *view) join(m Member) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m.State = StateAlive
	v.members[m.Name] = &entry{m: m, since: v.now()}
	delete(v.intents, m.Name)
	v.pruneLocked()
}

// update records new metadata of a live member.
func (v *view) update(m Member) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.members[m.Name]; ok && e.m.State == StateAlive {
		e.m.Meta = m.Meta
		return
	}
	m.State = StateAlive
	v.members[m.Name] = &entry{m: m, since: v.now()}
}

// depart records a member that memberlist no longer counts as alive, and
// returns whether it left or failed.
func (v *view) depart(name string) State {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	s := StateDead
	if t, ok := v.intents[name]; ok && now.Sub(t) <= intentTTL {
		s = StateLeft
	}
	if name == v.self && v.leaving {
		s = StateLeft
	}
	delete(v.intents, name)
	if e, ok := v.members[name]; ok {
		e.m.State = s
		e.since = now
	} else {
		v.members[name] = &entry{m: Member{Name: name, State: s}, since: now}
	}
	v.pruneLocked()
	return s
}

// intent records that name announced it is leaving. If its departure was
// already recorded as a failure a moment ago (the dead message overtook the
// intent), that is corrected to left, and intent reports true.
func (v *view) intent(name string) (relabelled bool) {
	if name == v.self {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	if e, ok := v.members[name]; ok && e.m.State == StateDead && now.Sub(e.since) <= intentTTL {
		e.m.State = StateLeft
		return true
	}
	if e, ok := v.members[name]; ok && e.m.State == StateAlive {
		v.intents[name] = now
	}
	return false
}

// setLeaving marks this node's own departure as a leave.
func (v *view) setLeaving() {
	v.mu.Lock()
	v.leaving = true
	v.mu.Unlock()
}

// alive returns the live members, this node included, sorted by name.
func (v *view) alive() []Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Member, 0, len(v.members))
	for _, e := range v.members {
		if e.m.State == StateAlive {
			out = append(out, cloneMember(e.m))
		}
	}
	sortMembers(out)
	return out
}

// all returns the live members and those departed less than the retention
// ago, sorted by name.
func (v *view) all() []Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked()
	out := make([]Member, 0, len(v.members))
	for _, e := range v.members {
		out = append(out, cloneMember(e.m))
	}
	sortMembers(out)
	return out
}

// lookup returns the member called name, live or recently departed.
func (v *view) lookup(name string) (Member, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked() // so that the join check forgets a dead member when memberlist does
	e, ok := v.members[name]
	if !ok {
		return Member{}, false
	}
	return cloneMember(e.m), true
}

// others counts the live members besides this node.
func (v *view) others() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for name, e := range v.members {
		if name != v.self && e.m.State == StateAlive {
			n++
		}
	}
	return n
}

// size counts the live members, this node included (at least 1).
func (v *view) size() int { return v.others() + 1 }

func (v *view) pruneLocked() {
	now := v.now()
	for name, e := range v.members {
		if e.m.State != StateAlive && now.Sub(e.since) > v.retention {
			delete(v.members, name)
		}
	}
	for name, t := range v.intents {
		if now.Sub(t) > intentTTL {
			delete(v.intents, name)
		}
	}
}

func cloneMember(m Member) Member {
	m.Meta = slices.Clone(m.Meta)
	return m
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
}
