package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/varpar/varpar/internal/netns"
)

// Net is the run's namespaces and links: a bridge in the root namespace and
// one namespace per host (peers, the load generator, the outsider), each
// with a veth pair whose far end is eth0 in the namespace.
type Net struct {
	ID     string       // random; in every name this run creates
	Prefix netip.Prefix // a /24 of 198.18.0.0/15
	Bridge string
	br     *netns.Bridge
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
func run(args ...string) error { return netns.Run(args...) }

// NewNet makes the bridge. Close removes it and everything added since.
func NewNet(log func(string, ...any)) (*Net, error) {
	rnd := make([]byte, 4)
	rand.Read(rnd)
	id := hex.EncodeToString(rnd[2:])
	br, err := netns.NewBridge("vpc"+id+"br", rnd)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return &Net{ID: id, Prefix: br.Prefix, Bridge: br.Name, br: br, hosts: map[string]*Host{}, log: log}, nil
}

// Add makes a namespace with the address .octet of the prefix.
func (n *Net) Add(name string, octet byte) (*Host, error) {
	h := &Host{Name: name, NS: "varpar-chaos-" + n.ID + "-" + name, Veth: fmt.Sprintf("vpc%s%s", n.ID, name)}
	n.hosts[name] = h
	n.order = append(n.order, name)
	addr, err := n.br.AddNS(h.NS, h.Veth, octet)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	h.Addr = addr
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

// Close deletes every namespace (and with it its veth pair) and the bridge.
// It returns the first error but tries everything.
func (n *Net) Close() error {
	var first error
	for _, name := range n.order {
		h := n.hosts[name]
		if err := netns.DelNS(h.NS, h.Veth); err != nil && first == nil {
			first = err
		}
	}
	if err := n.br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
