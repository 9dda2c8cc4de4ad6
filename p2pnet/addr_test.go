package p2pnet

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestListenAddr(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "0.0.0.0:7947", want: "/ip4/0.0.0.0/tcp/7947"},
		{in: "127.0.0.1:0", want: "/ip4/127.0.0.1/tcp/0"},
		{in: ":7947", want: "/ip4/0.0.0.0/tcp/7947"},
		{in: "[::1]:0", want: "/ip6/::1/tcp/0"},
		{in: "[::]:7947", want: "/ip6/::/tcp/7947"},
		{in: "[2001:db8::7]:7947", want: "/ip6/2001:db8::7/tcp/7947"},
		{in: "[::ffff:10.0.0.1]:7947", want: "/ip4/10.0.0.1/tcp/7947"},
		{in: "[fe80::1%eth0]:7947", want: "/ip6zone/eth0/ip6/fe80::1/tcp/7947"},
		{in: "::1:7947", bad: true},           // IPv6 without brackets
		{in: "127.0.0.1", bad: true},          // no port
		{in: "localhost:7947", bad: true},     // a name, not an address
		{in: "127.0.0.1:http", bad: true},     // a service name
		{in: "127.0.0.1:65536", bad: true},    // port out of range
		{in: "127.0.0.1:-1", bad: true},       // negative port
		{in: "300.0.0.1:7947", bad: true},     // not an IPv4 address
		{in: "[fe80::1%a/b]:7947", bad: true}, // a zone multiaddr cannot carry
		{in: "", bad: true},                   // nothing
		{in: "/ip4/1.2.3.4/tcp/1", bad: true}, // already a multiaddr
	}
	for _, tt := range tests {
		got, err := ListenAddr(tt.in)
		switch {
		case tt.bad && !errors.Is(err, ErrBadAddress):
			t.Errorf("ListenAddr(%q) = %q, %v; want an error wrapping ErrBadAddress", tt.in, got, err)
		case tt.bad && !strings.Contains(err.Error(), tt.in):
			t.Errorf("ListenAddr(%q): error %q does not name the address", tt.in, err)
		case !tt.bad && (err != nil || got != tt.want):
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewRemote(t *testing.T) {
	h := newHost(t)
	id := h.ID().String()
	tests := []struct {
		name, id, ip string
		port         int
		want         string // the remote's address; "" for an error
		wantErr      string // part of the error
	}{
		{"ipv4", id, "10.0.0.7", 7947, "/ip4/10.0.0.7/tcp/7947", ""},
		{"ipv4 loopback", id, "127.0.0.1", 1, "/ip4/127.0.0.1/tcp/1", ""},
		{"ipv6 loopback", id, "::1", 7947, "/ip6/::1/tcp/7947", ""},
		{"ipv6", id, "2001:db8::7", 65535, "/ip6/2001:db8::7/tcp/65535", ""},
		{"ipv4-mapped ipv6", id, "::ffff:192.168.1.2", 7947, "/ip4/192.168.1.2/tcp/7947", ""},
		{"ipv6 link-local with zone", id, "fe80::1%eth0", 7947, "/ip6zone/eth0/ip6/fe80::1/tcp/7947", ""},
		{"bracketed ipv6", id, "[::1]", 7947, "", "is not an IP address"},
		{"host name", id, "pi-3.local", 7947, "", "is not an IP address"},
		{"empty ip", id, "", 7947, "", "is not an IP address"},
		{"port 0", id, "10.0.0.7", 0, "", "port 0"},
		{"port too large", id, "10.0.0.7", 70000, "", "port 70000"},
		{"empty peer id", "", "10.0.0.7", 7947, "", "peer ID"},
		{"garbage peer id", "not-a-peer-id", "10.0.0.7", 7947, "", "peer ID"},
	}
	for _, tt := range tests {
		r, err := NewRemote(tt.id, tt.ip, tt.port)
		if tt.want == "" {
			if !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: NewRemote(%q, %q, %d) = %v, %v; want an ErrBadAddress saying %q", tt.name, tt.id, tt.ip, tt.port, r, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: NewRemote(%q, %q, %d): %v", tt.name, tt.id, tt.ip, tt.port, err)
			continue
		}
		if r.ID != h.ID() || len(r.addrs) != 1 || r.addrs[0].String() != tt.want {
			t.Errorf("%s: NewRemote(%q, %q, %d) = %v; want %s@%s", tt.name, tt.id, tt.ip, tt.port, r, id, tt.want)
		}
		if got := r.String(); got != id+"@"+tt.want {
			t.Errorf("%s: String() = %q", tt.name, got)
		}
	}
}

// TestInferOverIPv6 calls a host listening on ::1, named by NewRemote the way
// a peer names a member it learnt of by gossip.
func TestInferOverIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("this machine has no IPv6 loopback (::1): %v", err)
	} else {
		ln.Close()
	}
	listen, err := ListenAddr("[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	v6 := func(c *Config) { c.ListenAddrs = []string{listen} }
	server, client := newHost(t, v6), newHost(t, v6)
	server.SetInferHandler(topK)
	r, err := NewRemote(server.ID().String(), "::1", server.Port())
	if err != nil {
		t.Fatal(err)
	}
	ans, err := client.Infer(testCtx(t, 10*time.Second), r, testRequest("six", "v"))
	if err != nil {
		t.Fatalf("Infer over ::1: %v", err)
	}
	if want := []int32{'n', 'o', 'p'}; !slices.Equal(ans.Indices, want) {
		t.Errorf("answer indices %v, want %v", ans.Indices, want)
	}
	if a := server.Addrs(); len(a) == 0 || !strings.HasPrefix(a[0].String(), "/ip6/::1/tcp/"+strconv.Itoa(server.Port())) {
		t.Errorf("server listens on %v, want /ip6/::1/tcp/%d", a, server.Port())
	}
}
