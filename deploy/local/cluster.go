package local

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// ErrShutdown is returned by Start after Shutdown.
var ErrShutdown = errors.New("local: cluster shut down")

// Cluster runs varpar peer processes on 127.0.0.1 (or, per Spec, on another
// address under a wrapper command such as ip netns exec).
type Cluster struct {
	exe    string
	dir    string // cluster.key, logs/, one data directory per peer
	key    string
	family string // "": the built-in family
	// procAttr, when set, is given to every peer process (tests set
	// Pdeathsig so that a crashed test leaves no peer behind).
	procAttr *syscall.SysProcAttr
	http     *http.Client // for probes and requests, shared by the peers' API clients

	mu       sync.Mutex
	peers    []*Peer
	ports    map[int]bool // handed out, so never twice
	shutdown bool
	shutErr  error
}

// Option configures a Cluster.
type Option func(*Cluster)

// WithProcAttr gives every peer process attr (for example Pdeathsig on
// Linux, so that the peers die with a crashed test).
func WithProcAttr(attr *syscall.SysProcAttr) Option {
	return func(c *Cluster) { c.procAttr = attr }
}

// New makes the temporary directory and a fresh cluster key for peers of
// the varpar binary exe serving the family in the directory family ("":
// the family built into the binary). It starts nothing.
func New(exe, family string, opts ...Option) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "varpar-demo-")
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	c := &Cluster{exe: exe, dir: dir, key: filepath.Join(dir, "cluster.key"), family: family, ports: map[int]bool{},
		http: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}}
	for _, o := range opts {
		o(c)
	}
	if err := os.Mkdir(c.LogDir(), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("local: %w", err)
	}
	// The binary writes the key, so that this package needs no peer code
	// and the key is in whatever format the binary under test reads.
	if out, err := exec.Command(exe, "keygen", "--out", c.key).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("local: %s keygen: %w: %s", exe, err, bytes.TrimSpace(out))
	}
	return c, nil
}

// Dir is the cluster's temporary directory.
func (c *Cluster) Dir() string { return c.dir }

// LogDir holds one log file per peer (name.log).
func (c *Cluster) LogDir() string { return filepath.Join(c.dir, "logs") }

// KeyFile is the cluster key every peer gets unless its Spec says otherwise.
func (c *Cluster) KeyFile() string { return c.key }

// Spec says how to start one peer; zero fields take the cluster's.
type Spec struct {
	Name      string
	Key       string   // cluster key file
	Family    string   // family directory
	Seeds     []string // gossip addresses to join (nil: every other peer)
	Args      []string // more flags for varpar peer (they win over the defaults)
	TokenFile string   // the API token the client sends
	// Host, when set, is the address the peer listens on, with the fixed
	// ports HostPorts (its own network namespace's address: no port there
	// is taken); "": 127.0.0.1 with free ports.
	Host string
	// Wrap, when set, is a command the peer runs under, e.g. ip netns exec
	// NAME (which execs the peer, so PID, signals and /proc are the peer's).
	Wrap []string
}

// HostPorts are the gossip, libp2p and HTTP ports of a peer given a Host.
var HostPorts = [3]int{7946, 7947, 8080}

// Start launches peers at once. A peer's default seeds are every other
// peer, of this batch and started before: a peer keeps joining its seeds
// only while it sees no other member, so a seed list naming only earlier
// peers could leave the first one, not yet listening when the others tried
// it, in a cluster of its own.
func (c *Cluster) Start(specs ...Spec) ([]*Peer, error) {
	var batch []*Peer
	for _, s := range specs {
		p, err := c.prepare(s)
		if err != nil {
			return nil, err
		}
		batch = append(batch, p)
	}
	c.mu.Lock()
	if c.shutdown {
		c.mu.Unlock()
		return nil, ErrShutdown
	}
	all := append(slices.Clone(c.peers), batch...)
	c.mu.Unlock()
	for i, p := range batch {
		s := specs[i]
		if s.Seeds == nil {
			for _, o := range all {
				if o != p {
					s.Seeds = append(s.Seeds, o.GossipAddr)
				}
			}
		}
		if err := c.launch(p, s); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.peers = append(c.peers, p)
		c.mu.Unlock()
	}
	return batch, nil
}

// freePort finds a port free on 127.0.0.1 for TCP and UDP alike (gossip uses
// both), not handed out before.
func (c *Cluster) freePort() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last error
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("local: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err != nil {
			last = err
			continue
		}
		pc.Close()
		if c.ports[port] {
			continue
		}
		c.ports[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("local: no free port on 127.0.0.1: %v", last)
}

// prepare picks a peer's ports and paths.
func (c *Cluster) prepare(s Spec) (*Peer, error) {
	ports, host := HostPorts, s.Host
	if host == "" {
		host = "127.0.0.1"
		for i := range ports {
			var err error
			if ports[i], err = c.freePort(); err != nil {
				return nil, err
			}
		}
	}
	addr := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	p := &Peer{Name: s.Name, DataDir: filepath.Join(c.dir, s.Name), LogPath: filepath.Join(c.LogDir(), s.Name+".log"),
		GossipAddr: addr(ports[0]), P2PAddr: addr(ports[1]), HTTPAddr: addr(ports[2]), exited: make(chan struct{})}
	client, err := api.NewClient("http://"+p.HTTPAddr, api.WithTokenFile(s.TokenFile), api.WithHTTPClient(c.http))
	if err != nil {
		return nil, fmt.Errorf("local: peer %s: %w", s.Name, err)
	}
	p.API = client
	return p, nil
}

// launch starts the process of a prepared peer and its waiter.
func (c *Cluster) launch(p *Peer, s Spec) error {
	key, family := c.key, c.family
	if s.Key != "" {
		key = s.Key
	}
	if s.Family != "" {
		family = s.Family
	}
	args := []string{"peer", "--node-name", p.Name, "--data-dir", p.DataDir, "--cluster-key", key,
		"--gossip-addr", p.GossipAddr, "--p2p-addr", p.P2PAddr, "--http-addr", p.HTTPAddr}
	if family != "" {
		args = append(args, "--family", family)
	}
	if len(s.Seeds) > 0 {
		args = append(args, "--seeds", strings.Join(s.Seeds, ","))
	}
	args = append(args, s.Args...)
	exe := c.exe
	if len(s.Wrap) > 0 {
		exe, args = s.Wrap[0], append(append(slices.Clone(s.Wrap[1:]), c.exe), args...)
	}
	if err := p.start(exe, args, c.procAttr); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

// Peers are the peers started so far, in start order.
func (c *Cluster) Peers() []*Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.peers)
}

// Names are the peers' names, in start order.
func (c *Cluster) Names() []string {
	var out []string
	for _, p := range c.Peers() {
		out = append(out, p.Name)
	}
	return out
}

// ByName is the peer called name, or nil.
func (c *Cluster) ByName(name string) *Peer {
	for _, p := range c.Peers() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Shutdown stops every peer (SIGTERM, then SIGKILL after timeout) and
// removes the temporary directory, except the logs when keepLogs is set. It
// returns after every peer process has been waited for. Peers stop one at a
// time, so that each can tell live ones it is leaving (peers leaving all at
// once wait out their leave timeout). Calls after the first do nothing and
// return the first one's error.
func (c *Cluster) Shutdown(timeout time.Duration, keepLogs bool) error {
	c.mu.Lock()
	if c.shutdown {
		c.mu.Unlock()
		return c.shutErr
	}
	c.shutdown = true
	peers := slices.Clone(c.peers)
	c.mu.Unlock()
	var errs []error
	for _, p := range slices.Backward(peers) {
		errs = append(errs, p.Stop(timeout))
	}
	c.http.CloseIdleConnections()
	if keepLogs {
		entries, _ := os.ReadDir(c.dir)
		for _, e := range entries {
			if e.Name() != "logs" {
				errs = append(errs, os.RemoveAll(filepath.Join(c.dir, e.Name())))
			}
		}
	} else {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	err := errors.Join(errs...)
	c.mu.Lock()
	c.shutErr = err
	c.mu.Unlock()
	return err
}
