package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Net is the run's namespaces and links: a bridge in the root namespace and
// one namespace per host (peers, the load generator, the outsider), each
// with a veth pair whose far end is eth0 in the namespace.
type Net struct {
	ID     string       // random; in every name this run creates
	Prefix netip.Prefix // a /24 of 198.18.0.0/15
	Bridge string
	hosts  map[string]*Host
	order  []string
	log    func(format string, args ...any)
}

// Host is one namespace.
type Host struct {
	Name string // the suite's name for it ("p1", "load")
	NS   string // the namespace
	Veth string // the host end, in the root namespace
	Addr netip.Addr
}

// run runs a command and returns its error with its output.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// pickPrefix chooses a /24 of 198.18.0.0/15 that no interface of the root
// namespace has an address in (addrs is `ip -o addr` output).
func pickPrefix(addrs string, rnd []byte) (netip.Prefix, error) {
	for i := range 512 {
		n := (int(rnd[0])<<8 | int(rnd[1]) + i) % 512
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n/256), byte(n % 256), 0}), 24)
		third := fmt.Sprintf(" %d.%d.%d.", 198, 18+n/256, n%256)
		if !strings.Contains(addrs, third) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("chaos: every /24 of 198.18.0.0/15 is in use")
}

// NewNet makes the bridge. Close removes it and everything added since.
func NewNet(log func(string, ...any)) (*Net, error) {
	rnd := make([]byte, 4)
	rand.Read(rnd)
	out, err := exec.Command("ip", "-o", "addr").Output()
	if err != nil {
		return nil, fmt.Errorf("chaos: ip -o addr: %w", err)
	}
	prefix, err := pickPrefix(string(out), rnd)
	if err != nil {
		return nil, err
	}
	id := hex.EncodeToString(rnd[2:])
	n := &Net{ID: id, Prefix: prefix, Bridge: "vpc" + id + "br", hosts: map[string]*Host{}, log: log}
	bridgeAddr := prefix.Addr().As4()
	bridgeAddr[3] = 254
	for _, args := range [][]string{
		{"ip", "link", "add", n.Bridge, "type", "bridge"},
		{"ip", "addr", "add", netip.AddrFrom4(bridgeAddr).String() + "/24", "dev", n.Bridge},
		{"ip", "link", "set", n.Bridge, "up"},
	} {
		if err := run(args...); err != nil {
			n.Close()
			return nil, fmt.Errorf("chaos: %w", err)
		}
	}
	return n, nil
}

// Add makes a namespace with the address .octet of the prefix.
func (n *Net) Add(name string, octet byte) (*Host, error) {
	a := n.Prefix.Addr().As4()
	a[3] = octet
	h := &Host{Name: name, NS: "varpar-chaos-" + n.ID + "-" + name, Veth: fmt.Sprintf("vpc%s%s", n.ID, name), Addr: netip.AddrFrom4(a)}
	if len(h.Veth) > 15 {
		return nil, fmt.Errorf("chaos: interface name %s too long", h.Veth)
	}
	n.hosts[name] = h
	n.order = append(n.order, name)
	tmp := h.Veth + "x"
	for _, args := range [][]string{
		{"ip", "netns", "add", h.NS},
		{"ip", "link", "add", h.Veth, "type", "veth", "peer", "name", tmp},
		{"ip", "link", "set", tmp, "netns", h.NS},
		{"ip", "-n", h.NS, "link", "set", tmp, "name", "eth0"},
		{"ip", "-n", h.NS, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		{"ip", "link", "set", h.Veth, "master", n.Bridge},
		{"ip", "link", "set", h.Veth, "up"},
	} {
		if err := run(args...); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
	}
	return h, nil
}

// Host is the namespace called name.
func (n *Net) Host(name string) *Host { return n.hosts[name] }

// Exec is the wrapper that runs a command in h's namespace.
func (h *Host) Exec() []string { return []string{"ip", "netns", "exec", h.NS} }

// Partition drops, in each namespace of minority, every packet from or to
// the addresses of majority.
func (n *Net) Partition(minority, majority []string) error {
	for _, m := range minority {
		for _, o := range majority {
			ip := n.hosts[o].Addr.String()
			for _, args := range [][]string{
				{"ip", "netns", "exec", n.hosts[m].NS, "iptables", "-w", "-A", "INPUT", "-s", ip, "-j", "DROP"},
				{"ip", "netns", "exec", n.hosts[m].NS, "iptables", "-w", "-A", "OUTPUT", "-d", ip, "-j", "DROP"},
			} {
				if err := run(args...); err != nil {
					return fmt.Errorf("chaos: partition: %w", err)
				}
			}
		}
	}
	return nil
}

// Heal removes the partition's rules.
func (n *Net) Heal(minority []string) error {
	var first error
	for _, m := range minority {
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			if err := run("ip", "netns", "exec", n.hosts[m].NS, "iptables", "-w", "-F", chain); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// SlowLink limits both directions of name's link with a token bucket.
func (n *Net) SlowLink(name, rate string) error {
	h := n.hosts[name]
	for _, args := range [][]string{
		{"ip", "netns", "exec", h.NS, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "16kbit", "latency", "400ms"},
		{"tc", "qdisc", "add", "dev", h.Veth, "root", "tbf", "rate", rate, "burst", "16kbit", "latency", "400ms"},
	} {
		if err := run(args...); err != nil {
			return fmt.Errorf("chaos: slow link: %w", err)
		}
	}
	return nil
}

// FastLink removes SlowLink's limits.
func (n *Net) FastLink(name string) error {
	h := n.hosts[name]
	err1 := run("ip", "netns", "exec", h.NS, "tc", "qdisc", "del", "dev", "eth0", "root")
	err2 := run("tc", "qdisc", "del", "dev", h.Veth, "root")
	if err1 != nil {
		return err1
	}
	return err2
}

// exists reports whether the root namespace has a link called name.
func exists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// Close deletes every namespace (and with it its veth pair) and the bridge.
// It returns the first error but tries everything.
func (n *Net) Close() error {
	var first error
	for _, name := range n.order {
		h := n.hosts[name]
		if err := run("ip", "netns", "del", h.NS); err != nil && first == nil {
			first = err
		}
		// Deleting the namespace deletes the pair, asynchronously.
		for i := 0; i < 20 && exists(h.Veth); i++ {
			waitBriefly()
		}
		if exists(h.Veth) {
			if err := run("ip", "link", "del", h.Veth); err != nil && exists(h.Veth) && first == nil {
				first = err
			}
		}
	}
	if err := run("ip", "link", "del", n.Bridge); err != nil && first == nil {
		first = err
	}
	return first
}
