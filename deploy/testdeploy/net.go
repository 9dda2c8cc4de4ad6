package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/varpar/varpar/internal/netns"
)

// Prefix is the start of the name of every namespace, link and host
// directory this program makes, so that a run finds and removes what a
// killed earlier run left.
const Prefix = "vpd-"

// run runs a command and returns its error with its output.
func run(args ...string) error { return netns.Run(args...) }

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

// Net is the run's bridge in the root namespace, where the control side
// (this program, ansible, the checks) has the address .254.
type Net struct {
	ID      string
	Prefix  netip.Prefix
	Bridge  string
	Control netip.Addr
	br      *netns.Bridge
	nss     []string // each also the name of its veth's root end
}

// NewNet makes the bridge; Close removes it and everything added since.
func NewNet(id string, rnd []byte) (*Net, error) {
	br, err := netns.NewBridge(Prefix+id+"-br", rnd)
	if err != nil {
		return nil, err
	}
	return &Net{ID: id, Prefix: br.Prefix, Bridge: br.Name, Control: br.Addr, br: br}, nil
}

// AddNS makes namespace name (the same name for the root end of its veth)
// with eth0 at .octet of the prefix.
func (n *Net) AddNS(name string, octet byte) (netip.Addr, error) {
	n.nss = append(n.nss, name)
	return n.br.AddNS(name, name, octet)
}

// linkExists reports whether the root namespace has a link called name.
func linkExists(name string) bool { return netns.LinkExists(name) }

// delNS deletes a namespace and its veth (named as it is).
func delNS(ns string) error { return netns.DelNS(ns, ns) }

// Close deletes the namespaces, their veths and the bridge; the first error
// is returned, everything is tried. Processes in the namespaces must be gone.
func (n *Net) Close() error {
	var first error
	for _, ns := range n.nss {
		if err := delNS(ns); err != nil && first == nil {
			first = err
		}
	}
	if err := n.br.Close(); err != nil && first == nil {
		first = err
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
