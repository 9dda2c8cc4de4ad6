package gossip

import (
	"net"
	"strings"
	"testing"
)

// TestJoinOverIPv6: nodes bound to ::1 join a seed given as "[::1]:port" and
// see each other at ::1.
func TestJoinOverIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("this machine has no IPv6 loopback (::1): %v", err)
	} else {
		ln.Close()
	}
	if pc, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("this machine has no IPv6 loopback (::1) for UDP: %v", err)
	} else {
		pc.Close()
	}
	gs := startCluster(t, 3, func(i int, cfg *Config) { cfg.BindAddr = "::1" })
	if seed := gs[1].cfg.Seeds[0]; !strings.HasPrefix(seed, "[::1]:") {
		t.Fatalf("seed %q, want [::1]:port", seed)
	}
	for _, o := range gs {
		for _, m := range o.Members() {
			if m.Addr != "::1" || !strings.HasPrefix(m.Address(), "[::1]:") {
				t.Errorf("%s sees %s at %q (%s), want ::1", o.cfg.Name, m.Name, m.Addr, m.Address())
			}
		}
	}
}
