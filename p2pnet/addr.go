package p2pnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// ErrBadAddress is wrapped by ListenAddr and NewRemote for an address or a
// peer ID that cannot be used.
var ErrBadAddress = errors.New("p2pnet: unusable address")

// PeerID is a peer's identity on the transport, derived from its identity
// key. Its String form is what a peer announces (in gossip metadata) and what
// NewRemote takes back.
type PeerID peer.ID

// String is the peer ID's usual text form (base58, "12D3Koo...").
func (id PeerID) String() string { return peer.ID(id).String() }

// ParsePeerID decodes the text form of a peer ID.
func ParsePeerID(s string) (PeerID, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: peer ID %q: %v", ErrBadAddress, s, err)
	}
	return PeerID(id), nil
}

// Remote names another peer for Infer and FetchWeights: who it is, and where
// it listens. Make one with NewRemote, or take a host's own with Host.Remote.
type Remote struct {
	ID    PeerID
	addrs []multiaddr.Multiaddr
}

// NewRemote names the peer whose ID (text form) is id, listening on TCP at
// ip and port. ip is an IPv4 or IPv6 address as text ("10.0.0.7", "::1",
// "fe80::1%eth0"); an IPv4-mapped IPv6 address counts as IPv4. Errors wrap
// ErrBadAddress and say which part is wrong.
func NewRemote(id, ip string, port int) (Remote, error) {
	pid, err := ParsePeerID(id)
	if err != nil {
		return Remote{}, err
	}
	a, err := tcpMultiaddr(ip, port)
	if err != nil {
		return Remote{}, err
	}
	return Remote{ID: pid, addrs: []multiaddr.Multiaddr{a}}, nil
}

// String is the peer ID and its first address, for logs.
func (r Remote) String() string {
	if len(r.addrs) == 0 {
		return r.ID.String()
	}
	return r.ID.String() + "@" + r.addrs[0].String()
}

func (r Remote) addrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: peer.ID(r.ID), Addrs: r.addrs}
}

// ListenAddr turns a "host:port" listen address into the multiaddr that
// Config.ListenAddrs wants: "0.0.0.0:7947" is "/ip4/0.0.0.0/tcp/7947",
// "[::1]:0" is "/ip6/::1/tcp/0". An empty host means every IPv4 interface,
// as in DefaultConfig. The host must be an IP address: a listener binds an
// address, not a name. Errors wrap ErrBadAddress.
func ListenAddr(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("%w: listen address %q: %v", ErrBadAddress, hostport, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("%w: listen address %q: port %q is not a number", ErrBadAddress, hostport, port)
	}
	a, err := multiaddrOf(host, n, true)
	if err != nil {
		return "", fmt.Errorf("%w: listen address %q: %v", ErrBadAddress, hostport, err)
	}
	return a.String(), nil
}

// tcpMultiaddr is the multiaddr of a TCP address to dial.
func tcpMultiaddr(ip string, port int) (multiaddr.Multiaddr, error) {
	a, err := multiaddrOf(ip, port, false)
	if err != nil {
		return nil, fmt.Errorf("%w: address %s: %v", ErrBadAddress, net.JoinHostPort(ip, strconv.Itoa(port)), err)
	}
	return a, nil
}

// multiaddrOf builds the TCP multiaddr of ip and port; its errors say what
// is wrong, and the callers wrap them.
func multiaddrOf(ip string, port int, listen bool) (multiaddr.Multiaddr, error) {
	switch {
	case port < 0 || port > 65535:
		return nil, fmt.Errorf("port %d is not 0..65535", port)
	case port == 0 && !listen:
		// Port 0 asks the kernel for a free port when listening; no peer
		// listens on it.
		return nil, fmt.Errorf("port 0 cannot be dialled")
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address", ip)
	}
	addr = addr.Unmap()
	var s string
	switch {
	case addr.Is4():
		s = fmt.Sprintf("/ip4/%s/tcp/%d", addr, port)
	case addr.Zone() != "":
		// A link-local IPv6 address needs its interface; multiaddr keeps
		// the zone in a component of its own.
		if strings.Contains(addr.Zone(), "/") {
			return nil, fmt.Errorf("zone %q", addr.Zone())
		}
		s = fmt.Sprintf("/ip6zone/%s/ip6/%s/tcp/%d", addr.Zone(), addr.WithZone(""), port)
	default:
		s = fmt.Sprintf("/ip6/%s/tcp/%d", addr, port)
	}
	return multiaddr.NewMultiaddr(s)
}
