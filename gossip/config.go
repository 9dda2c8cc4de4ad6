package gossip

import (
	"fmt"
	"log"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// MetaMaxSize is the most metadata a node may carry: memberlist's limit.
const MetaMaxSize = memberlist.MetaMaxSize

// DefaultPort is memberlist's customary port, for UDP and TCP alike.
const DefaultPort = 7946

// Config configures a Gossip. Start from DefaultConfig.
type Config struct {
	// Name identifies the node in the cluster: unique, at most 128 bytes.
	// Two nodes at different addresses with one name are a name conflict:
	// the later one is refused (see NameConflictError).
	Name string
	// BindAddr is the IP address to listen on (UDP and TCP), IPv4 or IPv6,
	// e.g. "0.0.0.0", "127.0.0.1", "::1" or "fd00::7". With "::" (every
	// IPv6 interface) AdvertiseAddr is required: memberlist picks an
	// address to advertise only for "0.0.0.0", and would advertise "::",
	// which no node can reach.
	BindAddr string
	// BindPort is the port to listen on; 0 picks a free one (see LocalAddr).
	BindPort int
	// AdvertiseAddr is the IP address other nodes should use to reach this
	// one (behind NAT). Empty: the bound address, or with BindAddr 0.0.0.0 a
	// private address of this machine.
	AdvertiseAddr string
	// AdvertisePort goes with AdvertiseAddr; 0 means the bound port. It needs
	// a fixed BindPort.
	AdvertisePort int
	// Seeds are the "host:port" addresses of nodes to join. This node's own
	// address may be among them (every node can share one list). Empty: the
	// node waits for others to join it.
	Seeds []string
	// Key is the cluster key: 16, 24 or 32 bytes (AES-128, -192 or -256
	// GCM). Every packet and stream is encrypted and authenticated with it,
	// and nothing unencrypted is accepted. Required.
	Key []byte

	// Meta returns this node's metadata, at most MetaMaxSize bytes, opaque to
	// this package. It is called by Start and by UpdateMeta, on the caller's
	// goroutine, never from memberlist's. Nil: no metadata.
	Meta func() []byte
	// OnChange is called after members join, leave, fail, or change their
	// metadata; read Members for the new picture. Calls are coalesced (one
	// call may stand for several changes) and come one at a time from a
	// goroutine of this package, never after Shutdown returns. OnChange may
	// take its time without delaying the gossip, but it must not call
	// Shutdown (Shutdown waits for it). Nil: no calls.
	OnChange func()
	// AcceptMember, if set, may refuse a member (a node other than this one)
	// by returning an error: the member is then not added, and its updates
	// are ignored. It is consulted for every alive message and state
	// exchange, from Start on, on memberlist's goroutines, possibly
	// concurrently, with memberlist's lock held: it must be fast, and may
	// call Members and AllMembers (of a Gossip assigned before Start) but
	// nothing else of this package. A refusal during a join
	// fails the whole join (RefusedError), on the joining side and on the
	// seed.
	//
	// Refusals must be symmetric (if A refuses B, B refuses A), as identity
	// collisions are, or the refused node can end up seeing members that do
	// not see it. A member already accepted and later refused keeps its old
	// metadata. A node restarting under its own name is not a collision:
	// accept a member whose Name matches the one it collides with.
	AcceptMember func(Member) error
	// Logger receives this package's logs and memberlist's, whose "[LEVEL]"
	// prefixes become zerolog levels (component=memberlist). The lines about
	// packets and streams refused are rate-limited (log.go).
	Logger zerolog.Logger
	// OnRejected, if set, is called for every packet or stream memberlist
	// refused, with the reason: decrypt (not sealed with the cluster key:
	// junk, or a node with another key), label, checksum, malformed,
	// queue_full or stream. It is called on memberlist's goroutines and must
	// be fast (a counter's Inc).
	OnRejected func(reason string)

	// Failure detection (memberlist's SWIM with Lifeguard). A node that stops
	// answering is probed within about a ProbeInterval, fails the probe by
	// the end of it, and stays suspect for SuspicionMult * ProbeInterval *
	// max(1, log10(nodes)) before it is declared dead once enough other
	// nodes confirm the suspicion (SuspicionMult-2 of them); unconfirmed (a
	// lab of 3, a partition's minority), the suspicion starts
	// SuspicionMaxMult times longer and shrinks as confirmations come. With
	// the defaults, on loopback with 4 nodes (TestDetectionTime): about 2 s;
	// memberlist's LAN profile took 7 to 9 s. The peers' schedulers stop
	// waiting for a dead member long before that, from their own calls.

	// ProbeInterval is how often each node probes one other node.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for its ack before asking other
	// nodes to probe indirectly; it must be below ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect node has to refute before it
	// is declared dead.
	SuspicionMult int
	// SuspicionMaxMult bounds an unconfirmed suspicion: at most this many
	// times the confirmed one.
	SuspicionMaxMult int
	// GossipInterval is how often a node sends queued updates (joins,
	// failures, metadata) to 3 random others.
	GossipInterval time.Duration
	// PushPullInterval is how often a node exchanges its full membership
	// table with a random other node over TCP, repairing what gossip lost.
	PushPullInterval time.Duration
	// StreamTimeout bounds a TCP exchange (join, push/pull, TCP probe
	// fallback), connecting included.
	StreamTimeout time.Duration
	// DeadRetention is how long a dead node is remembered (and still sent
	// gossip, so it can refute). Until then its name cannot be taken by a
	// node at another address; AllMembers also keeps departed members that
	// long.
	DeadRetention time.Duration

	// Joining. Start joins the seeds in the background, and so does a node
	// that finds itself alone later (all other members failed or left, as
	// after a switch reboot), until it sees another member again. Failed
	// attempts are retried after JoinBackoff, doubling up to JoinMaxBackoff.

	JoinBackoff    time.Duration
	JoinMaxBackoff time.Duration
	// JoinRetries is how many failed attempts in a row to make before giving
	// up (WaitJoined then returns ErrJoinFailed); 0 means never give up.
	JoinRetries int
}

// DefaultConfig returns the home-lab profile: a LAN of small devices, a few
// to a few tens, on Ethernet or Wi-Fi. Detection is about four times as fast as
// memberlist's LAN profile, and within the 3 s a variant may go without a
// server (the chaos suite's bar). The trade-off: a failure wrongly declared (a Pi
// stalled for more than a second, Wi-Fi gone quiet in power saving) costs a
// reassignment of variants and a transfer of weights, and the node rejoins
// by refuting; a failure noticed late costs only some accuracy meanwhile,
// since the schedulers route around a member that stops answering from
// their own calls. So the probes are quicker, while a suspect still has
// 1.2 s (and up to 3.6 s unconfirmed) to refute, and the indirect and TCP probes
// that follow a missed ack cover an RTT spike.
func DefaultConfig() Config {
	return Config{
		BindAddr: "0.0.0.0",
		BindPort: DefaultPort,
		Logger:   zerolog.Nop(),

		ProbeInterval:    300 * time.Millisecond, // LAN uses 1 s: each node probes one other about three times a second, ~350 B/s
		ProbeTimeout:     150 * time.Millisecond, // LAN uses 500 ms: a LAN ack takes a few ms, a busy Pi on Wi-Fi tens; a miss only starts indirect and TCP probes
		SuspicionMult:    4,                      // LAN's 4: 4 x 0.3 s = 1.2 s for a suspect to refute once 2 others confirm (a Pi stalled by inference)
		SuspicionMaxMult: 3,                      // LAN uses 6: unconfirmed (a lab of 3, a partition's minority) 3.6 s at most, not 7.2
		GossipInterval:   200 * time.Millisecond, // memberlist LAN: updates reach a 10-node lab within a second
		PushPullInterval: 15 * time.Second,       // LAN uses 30 s: a full sync of a lab-sized table is a few KB; bounds how stale a lost metadata update stays
		StreamTimeout:    5 * time.Second,        // LAN uses 10 s: a lab-sized push/pull takes milliseconds; a powered-off seed should not hold a join attempt long
		DeadRetention:    30 * time.Second,       // memberlist LAN: a dead node's name is free again after 30 s (a device that came back on a new address)

		JoinBackoff:    1 * time.Second,  // first retry after 1 s: a lab powering on together finds its seeds quickly
		JoinMaxBackoff: 30 * time.Second, // then at most one attempt (and one log line) per 30 s
		JoinRetries:    0,                // never give up: a seed may be off for days
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Name == "":
		return bad("Config.Name is empty")
	case len(c.Name) > maxNameLen:
		return bad("Config.Name is %d bytes, at most %d", len(c.Name), maxNameLen)
	case net.ParseIP(c.BindAddr) == nil:
		return bad("Config.BindAddr %q is not an IP address", c.BindAddr)
	case c.BindPort < 0 || c.BindPort > 65535:
		return bad("Config.BindPort = %d, want 0..65535", c.BindPort)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil:
		return bad("Config.AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr).IsUnspecified():
		return bad("Config.AdvertiseAddr %q is no address a node can reach", c.AdvertiseAddr)
	case c.AdvertiseAddr == "" && net.ParseIP(c.BindAddr).IsUnspecified() && net.ParseIP(c.BindAddr).To4() == nil:
		return bad("Config.BindAddr %q needs Config.AdvertiseAddr (memberlist would advertise %q itself)", c.BindAddr, c.BindAddr)
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return bad("Config.AdvertisePort = %d, want 0..65535", c.AdvertisePort)
	case c.AdvertisePort != 0 && c.BindPort == 0:
		return bad("Config.AdvertisePort needs a fixed Config.BindPort (memberlist advertises the port it picks)")
	case !slices.Contains([]int{16, 24, 32}, len(c.Key)):
		return bad("Config.Key is %d bytes, want 16, 24 or 32", len(c.Key))
	case c.ProbeInterval <= 0:
		return bad("Config.ProbeInterval = %v, want > 0", c.ProbeInterval)
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.ProbeInterval:
		return bad("Config.ProbeTimeout = %v, want > 0 and below ProbeInterval (%v)", c.ProbeTimeout, c.ProbeInterval)
	case c.SuspicionMult < 1:
		return bad("Config.SuspicionMult = %d, want >= 1", c.SuspicionMult)
	case c.SuspicionMaxMult < 1:
		return bad("Config.SuspicionMaxMult = %d, want >= 1", c.SuspicionMaxMult)
	case c.GossipInterval <= 0:
		return bad("Config.GossipInterval = %v, want > 0", c.GossipInterval)
	case c.PushPullInterval <= 0:
		return bad("Config.PushPullInterval = %v, want > 0", c.PushPullInterval)
	case c.StreamTimeout <= 0:
		return bad("Config.StreamTimeout = %v, want > 0", c.StreamTimeout)
	case c.DeadRetention <= 0:
		return bad("Config.DeadRetention = %v, want > 0", c.DeadRetention)
	case c.JoinBackoff <= 0:
		return bad("Config.JoinBackoff = %v, want > 0", c.JoinBackoff)
	case c.JoinMaxBackoff < c.JoinBackoff:
		return bad("Config.JoinMaxBackoff = %v, want >= JoinBackoff (%v)", c.JoinMaxBackoff, c.JoinBackoff)
	case c.JoinRetries < 0:
		return bad("Config.JoinRetries = %d, want >= 0 (0: forever)", c.JoinRetries)
	}
	for _, s := range c.Seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return bad("Config.Seeds: %q is not host:port", s)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return bad("Config.Seeds: %q has no valid port", s)
		}
	}
	return nil
}

// memberlistConfig translates c for memberlist.Create.
func (c *Config) memberlistConfig(d *delegate, keyring *memberlist.Keyring, logger *log.Logger) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if mc.AdvertisePort == 0 {
		// With BindPort 0 memberlist overwrites this with the port it picks.
		mc.AdvertisePort = c.BindPort
	}

	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxMult
	mc.GossipInterval = c.GossipInterval
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.StreamTimeout
	mc.GossipToTheDeadTime = c.DeadRetention
	// A dead node's name is never handed to another address while it is
	// remembered: the join check in conflict.go relies on it.
	mc.DeadNodeReclaimTime = 0

	mc.Keyring = keyring
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true

	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	mc.Merge = d
	mc.Alive = d
	// Version 1 of this package's user messages (intent.go).
	mc.DelegateProtocolVersion = 1
	mc.DelegateProtocolMin = 1
	mc.DelegateProtocolMax = 1

	mc.LogOutput = nil
	mc.Logger = logger
	return mc
}
