package peer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/varpar/varpar/gossip"
	"github.com/varpar/varpar/p2pnet/pb"
)

// fakeMembership is a gossip view that the test writes.
type fakeMembership struct{ members []gossip.Member }

func (f *fakeMembership) Members() []gossip.Member         { return f.members }
func (f *fakeMembership) LocalAddr() (string, int)         { return "", 0 }
func (f *fakeMembership) UpdateMeta(_ time.Duration) error { return nil }
func (f *fakeMembership) Leave(_ time.Duration) error      { return nil }
func (f *fakeMembership) Shutdown() error                  { return nil }

// A valid libp2p peer ID (an Ed25519 key's), as members announce them.
const testPeerID = "12D3KooWLCc7kHCYCh924M78FgvD7ZkP9DbHXttejZf1eM52JHQV"

func metaOf(tb testing.TB, peerID string, port uint32) []byte {
	tb.Helper()
	b, err := pb.MarshalMeta(&pb.NodeMeta{Version: 1, PeerId: peerID, Libp2PPort: port})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestReadViewLogsUnusableMembersOnce: members on IPv4 and IPv6 are in the
// view with their libp2p address; a member whose metadata or address this
// peer cannot use is left out and logged once per reason, not at every
// reading of the view, and logged again when it becomes usable.
func TestReadViewLogsUnusableMembersOnce(t *testing.T) {
	var logs bytes.Buffer
	f := &fakeMembership{members: []gossip.Member{
		{Name: "v4", Addr: "10.0.0.4", Port: 7946, Meta: metaOf(t, testPeerID, 7947)},
		{Name: "v6", Addr: "fd00::6", Port: 7946, Meta: metaOf(t, testPeerID, 7947)},
		{Name: "bad-id", Addr: "10.0.0.5", Port: 7946, Meta: metaOf(t, "not-a-peer-id", 7947)},
		{Name: "bad-meta", Addr: "10.0.0.7", Port: 7946, Meta: []byte("garbage")},
		{Name: "no-addr", Addr: "", Port: 7946, Meta: metaOf(t, testPeerID, 7947)},
	}}
	p := &Peer{cfg: Config{NodeName: "v4"}, log: zerolog.New(&logs), gossip: f}
	leftOut := func() int { return strings.Count(logs.String(), "member left out") }

	for range 3 {
		view := p.readView()
		if len(view) != 2 || view[0].Name != "v4" || view[1].Name != "v6" {
			t.Fatalf("view %+v, want v4 and v6", view)
		}
		if got, want := view[0].P2P.String(), testPeerID+"@/ip4/10.0.0.4/tcp/7947"; got != want {
			t.Errorf("v4 at %s, want %s", got, want)
		}
		if got, want := view[1].P2P.String(), testPeerID+"@/ip6/fd00::6/tcp/7947"; got != want {
			t.Errorf("v6 at %s, want %s", got, want)
		}
		if !view[0].Self || view[1].Self {
			t.Errorf("self flags %v %v, want v4 only", view[0].Self, view[1].Self)
		}
	}
	if got := leftOut(); got != 3 {
		t.Fatalf("three readings of three unusable members logged %d times, want 3:\n%s", got, logs.String())
	}
	for _, name := range []string{"bad-id", "bad-meta", "no-addr"} {
		if !strings.Contains(logs.String(), `"member":"`+name+`"`) {
			t.Errorf("no log names %s:\n%s", name, logs.String())
		}
	}

	// A new reason is logged again; a member that becomes usable is said so.
	f.members[2].Meta = metaOf(t, "still-not-an-id", 7947)
	f.members[4].Addr = "10.0.0.8"
	if view := p.readView(); len(view) != 3 {
		t.Fatalf("view %+v, want no-addr back in", view)
	}
	if got := leftOut(); got != 4 {
		t.Errorf("after bad-id's reason changed: %d logs, want 4:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "member usable again") {
		t.Errorf("no-addr's recovery not logged:\n%s", logs.String())
	}
}
