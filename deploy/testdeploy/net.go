package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Prefix is the start of the name of every namespace, link and host
// directory this program makes, so that a run finds and removes what a
// killed earlier run left.
const Prefix = "vpd-"

// run runs a command and returns its error with its output.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// output runs a command and returns its standard output.
func output(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

// pickPrefix chooses a /24 of 198.18.0.0/15 that no interface of the root
// namespace has an address in (addrs is `ip -o addr` output), starting at a
// random one (rnd, two bytes).
func pickPrefix(addrs string, rnd []byte) (netip.Prefix, error) {
	for i := range 512 {
		n := (int(rnd[0])<<8 | int(rnd[1]) + i) % 512
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n/256), byte(n % 256), 0}), 24)
		if !strings.Contains(addrs, fmt.Sprintf(" %d.%d.%d.", 198, 18+n/256, n%256)) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every /24 of 198.18.0.0/15 is in use")
}

// Net is the run's bridge in the root namespace, where the control side
// (this program, ansible, the checks) has the address .254.
type Net struct {
	ID      string
	Prefix  netip.Prefix
	Bridge  string
	Control netip.Addr
	links   []string // veths made, root namespace ends
	nss     []string
}

// NewNet makes the bridge; Close removes it and everything added since.
func NewNet(id string, rnd []byte) (*Net, error) {
	addrs, err := output("ip", "-o", "addr")
	if err != nil {
		return nil, err
	}
	p, err := pickPrefix(addrs, rnd)
	if err != nil {
		return nil, err
	}
	a := p.Addr().As4()
	a[3] = 254
	n := &Net{ID: id, Prefix: p, Bridge: Prefix + id + "-br", Control: netip.AddrFrom4(a)}
	for _, args := range [][]string{
		{"ip", "link", "add", n.Bridge, "type", "bridge"},
		{"ip", "addr", "add", n.Control.String() + "/24", "dev", n.Bridge},
		{"ip", "link", "set", n.Bridge, "up"},
	} {
		if err := run(args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// AddNS makes namespace name (the same name for the root end of its veth)
// with eth0 at .octet of the prefix.
func (n *Net) AddNS(name string, octet byte) (netip.Addr, error) {
	if len(name) > 14 {
		return netip.Addr{}, fmt.Errorf("interface name %s too long", name)
	}
	a := n.Prefix.Addr().As4()
	a[3] = octet
	addr := netip.AddrFrom4(a)
	n.nss = append(n.nss, name)
	n.links = append(n.links, name)
	tmp := name + "x"
	for _, args := range [][]string{
		{"ip", "netns", "add", name},
		{"ip", "link", "add", name, "type", "veth", "peer", "name", tmp},
		{"ip", "link", "set", tmp, "netns", name},
		{"ip", "-n", name, "link", "set", tmp, "name", "eth0"},
		{"ip", "-n", name, "addr", "add", addr.String() + "/24", "dev", "eth0"},
		{"ip", "-n", name, "link", "set", "eth0", "up"},
		{"ip", "-n", name, "link", "set", "lo", "up"},
		{"ip", "link", "set", name, "master", n.Bridge},
		{"ip", "link", "set", name, "up"},
	} {
		if err := run(args...); err != nil {
			return netip.Addr{}, err
		}
	}
	return addr, nil
}

// linkExists reports whether the root namespace has a link called name.
func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// delNS deletes a namespace and waits (bounded) for its veth to go.
func delNS(ns string) error {
	err := run("ip", "netns", "del", ns)
	for i := 0; i < 30 && linkExists(ns); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if linkExists(ns) {
		if err2 := run("ip", "link", "del", ns); err2 != nil && linkExists(ns) && err == nil {
			err = err2
		}
	}
	return err
}

// Close deletes the namespaces, their veths and the bridge; the first error
// is returned, everything is tried. Processes in the namespaces must be gone.
func (n *Net) Close() error {
	var first error
	for _, ns := range n.nss {
		if err := delNS(ns); err != nil && first == nil {
			first = err
		}
	}
	if linkExists(n.Bridge) {
		if err := run("ip", "link", "del", n.Bridge); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ownNames filters names (of namespaces or links) to those this program
// makes: Prefix then 4 hex digits then "-".
func ownNames(names []string) []string {
	var own []string
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, Prefix)
		if !ok || len(rest) < 6 || rest[4] != '-' {
			continue
		}
		hex := true
		for _, c := range rest[:4] {
			if !strings.ContainsRune("0123456789abcdef", c) {
				hex = false
			}
		}
		if hex {
			own = append(own, n)
		}
	}
	return own
}
