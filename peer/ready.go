package peer

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varpar/varpar/consensus"
)

// Ready, as GET /readyz answers it. A peer becomes ready once
//
//   - it has a membership view, and, when it has seeds other than itself
//     (a cluster to join), another member has been in that view: the join
//     exchanged state with it, so at least one other member sees this peer
//     (a peer without other seeds is a cluster of one, ready alone);
//   - it serves every variant the plan gives it;
//   - its view (the members and what each serves) and the plan have not
//     changed for readySettle, about the time gossip takes to spread a change
//     through a lab, so that the others have seen what it serves too; and
//   - the cluster serves at least one variant, so a classify can succeed.
//
// Once ready, a peer stays ready while it serves what the plan gives it and
// the cluster serves a variant: a member joining or failing elsewhere does
// not make every peer unready for the settle time (a load balancer would
// then drop them all at once), since they all still answer.
const readySettle = 1 * time.Second

// readiness remembers what Ready needs of the past: when the view or plan
// last changed, whether another member was ever seen, and whether the peer
// was ready once. The zero value is ready to use.
type readiness struct {
	mu     sync.Mutex
	now    func() time.Time // nil: time.Now
	settle time.Duration    // 0: readySettle
	shape  string           // the last view and plan, as text
	since  time.Time        // when shape last changed
	others bool             // another member has been in the view
	once   bool             // ready once already
}

func (r *readiness) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// observeReady records the view and plan the reconcile loop has just
// computed.
func (p *Peer) observeReady(view []memberView, plan consensus.Plan) {
	var b strings.Builder
	for _, m := range view {
		fmt.Fprintf(&b, "%s:", m.Name)
		for i, v := range p.manifest.Variants {
			if serves(m.Meta, v.ID, p.shas[i]) {
				fmt.Fprintf(&b, "%s,", v.ID)
			}
		}
		b.WriteByte(';')
	}
	fmt.Fprint(&b, plan.Serving) // fmt prints maps sorted by key
	p.ready.observe(b.String(), len(view))
}

// observe records the shape of the view and plan, and how many members the
// view holds.
func (r *readiness) observe(shape string, members int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if shape != r.shape {
		r.shape, r.since = shape, r.clock()
	}
	if members > 1 {
		r.others = true
	}
}

// startup is the part of readiness that holds only until the first time the
// peer is ready: another member seen (when expected) and a settled view. It
// returns "" when met.
func (r *readiness) startup(expectOthers bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.once {
		return ""
	}
	if expectOthers && !r.others {
		return "waiting for another member to see this peer (its seeds)"
	}
	settle := r.settle
	if settle == 0 {
		settle = readySettle
	}
	if stable := r.clock().Sub(r.since); stable < settle {
		return fmt.Sprintf("view or plan changed %v ago; settling for %v", stable.Round(time.Millisecond), settle)
	}
	return ""
}

// readyNow records that the peer was ready.
func (r *readiness) readyNow() {
	r.mu.Lock()
	r.once = true
	r.mu.Unlock()
}

// Ready reports whether the peer is ready (see readySettle) and, if not,
// what it waits for.
func (p *Peer) Ready() (bool, string) {
	cv := p.Cluster()
	p.mu.Lock()
	if len(p.view) == 0 {
		p.mu.Unlock()
		return false, "no membership view yet"
	}
	for _, id := range p.plan.Serving[p.cfg.NodeName] {
		if p.servers[id] == nil {
			p.mu.Unlock()
			return false, "loading variant " + id
		}
	}
	p.mu.Unlock()
	served := false
	for _, ms := range cv.Serving {
		served = served || len(ms) > 0
	}
	if !served {
		return false, "no variant is served in the cluster"
	}
	if why := p.ready.startup(p.expectsOthers()); why != "" {
		return false, why
	}
	p.ready.readyNow()
	return true, "ok"
}

// expectsOthers reports whether the peer has a seed other than its own
// gossip address: a cluster to join rather than one of its own.
func (p *Peer) expectsOthers() bool {
	own := map[string]bool{p.cfg.GossipAddr: true}
	if p.gossip != nil {
		host, port := p.gossip.LocalAddr()
		own[net.JoinHostPort(host, strconv.Itoa(port))] = true
		if p.cfg.AdvertiseAddr != "" {
			own[net.JoinHostPort(p.cfg.AdvertiseAddr, strconv.Itoa(port))] = true
		}
	}
	for _, s := range p.cfg.Seeds {
		if !own[s] {
			return true
		}
	}
	return false
}

func (p *Peer) serveReady(w http.ResponseWriter, r *http.Request) {
	if ok, why := p.Ready(); !ok {
		httpError(w, http.StatusServiceUnavailable, why)
		return
	}
	io.WriteString(w, "ok\n")
}
