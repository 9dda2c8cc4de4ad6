// Package netns makes the test networks of the suites that run varpar on
// hosts emulated on this machine (deploy/chaos, deploy/testdeploy): a bridge
// in the root namespace on a free /24 of 198.18.0.0/15 (addresses set aside
// for benchmarks, never routed), and network namespaces joined to it by veth
// pairs whose far end is eth0. It runs iproute2's ip; it needs root.
package netns

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Run runs a command and returns its error with its output.
func Run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// PickPrefix chooses a /24 of 198.18.0.0/15 that no interface of the root
// namespace has an address in (addrs is `ip -o addr` output), starting at
// the one rnd (two bytes) picks.
func PickPrefix(addrs string, rnd []byte) (netip.Prefix, error) {
	for i := range 512 {
		n := (int(rnd[0])<<8 | int(rnd[1]) + i) % 512
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n/256), byte(n % 256), 0}), 24)
		if !strings.Contains(addrs, fmt.Sprintf(" %d.%d.%d.", 198, 18+n/256, n%256)) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("netns: every /24 of 198.18.0.0/15 is in use")
}

// Bridge is a bridge in the root namespace, with the address .254 of its
// prefix.
type Bridge struct {
	Name   string
	Prefix netip.Prefix
	Addr   netip.Addr // .254
}

// NewBridge makes a bridge called name on a free /24 (PickPrefix with rnd).
func NewBridge(name string, rnd []byte) (*Bridge, error) {
	out, err := exec.Command("ip", "-o", "addr").Output()
	if err != nil {
		return nil, fmt.Errorf("netns: ip -o addr: %w", err)
	}
	p, err := PickPrefix(string(out), rnd)
	if err != nil {
		return nil, err
	}
	b := &Bridge{Name: name, Prefix: p, Addr: b254(p)}
	for _, args := range [][]string{
		{"ip", "link", "add", name, "type", "bridge"},
		{"ip", "addr", "add", b.Addr.String() + "/24", "dev", name},
		{"ip", "link", "set", name, "up"},
	} {
		if err := Run(args...); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

func b254(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	a[3] = 254
	return netip.AddrFrom4(a)
}

// Host returns the address .octet of the bridge's prefix.
func (b *Bridge) Host(octet byte) netip.Addr {
	a := b.Prefix.Addr().As4()
	a[3] = octet
	return netip.AddrFrom4(a)
}

// AddNS makes namespace ns with eth0 at .octet, joined to the bridge by a
// veth pair whose root end is called veth (at most 14 characters: the far
// end is named veth+"x" until it is moved).
func (b *Bridge) AddNS(ns, veth string, octet byte) (netip.Addr, error) {
	if len(veth) > 14 {
		return netip.Addr{}, fmt.Errorf("netns: interface name %s too long", veth)
	}
	addr := b.Host(octet)
	tmp := veth + "x"
	for _, args := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", tmp},
		{"ip", "link", "set", tmp, "netns", ns},
		{"ip", "-n", ns, "link", "set", tmp, "name", "eth0"},
		{"ip", "-n", ns, "addr", "add", addr.String() + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "link", "set", veth, "master", b.Name},
		{"ip", "link", "set", veth, "up"},
	} {
		if err := Run(args...); err != nil {
			return netip.Addr{}, err
		}
	}
	return addr, nil
}

// Close deletes the bridge, if it is still there.
func (b *Bridge) Close() error {
	if !LinkExists(b.Name) {
		return nil
	}
	return Run("ip", "link", "del", b.Name)
}

// LinkExists reports whether the root namespace has a link called name.
func LinkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// DelNS deletes namespace ns and, with it, the veth pair whose root end is
// veth: the kernel removes the pair asynchronously, so it waits (at most 3
// s) and deletes the root end itself if it lingers.
func DelNS(ns, veth string) error {
	err := Run("ip", "netns", "del", ns)
	for i := 0; i < 30 && LinkExists(veth); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if LinkExists(veth) {
		if err2 := Run("ip", "link", "del", veth); err2 != nil && LinkExists(veth) && err == nil {
			err = err2
		}
	}
	return err
}
