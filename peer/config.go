package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a peer's configuration: read from a YAML file (the yaml keys
// below), then overridden by the command-line flags that BindFlags makes
// from the flag and usage tags. Adding a key is adding a field here (and its
// default to DefaultConfig when it is not the zero value): the flag and its
// help follow from the tags, and config_test.go fails until
// deploy/peer.yaml documents the key.
type Config struct {
	// Unique in the cluster; default: the host name.
	NodeName string `yaml:"node_name" flag:"node-name" usage:"unique name of this peer in the cluster"`
	// Identity key, model store; default ~/.varpar.
	DataDir string `yaml:"data_dir" flag:"data-dir" usage:"identity key and model store"`
	// Memberlist host:port; default 0.0.0.0:7946.
	GossipAddr string `yaml:"gossip_addr" flag:"gossip-addr" usage:"gossip (memberlist) listen host:port"`
	// Address other peers reach this one at (default: picked by memberlist).
	AdvertiseAddr string `yaml:"advertise_addr" flag:"advertise-addr" usage:"address other peers reach this one at"`
	// libp2p TCP listen host:port; default 0.0.0.0:7947.
	P2PAddr string `yaml:"p2p_addr" flag:"p2p-addr" usage:"libp2p TCP listen host:port"`
	// Gossip host:port of peers to join.
	Seeds []string `yaml:"seeds" flag:"seeds" usage:"gossip host:port of peers to join (comma-separated)"`
	// File holding the cluster key (varpar keygen); required.
	ClusterKey string `yaml:"cluster_key" flag:"cluster-key" usage:"file holding the cluster key (varpar keygen)"`
	// Family directory; default: the family built into the binary.
	Family string `yaml:"family" flag:"family" usage:"family directory (default: the family built into the binary)"`
	// Variant ids this peer always serves.
	Pinned []string `yaml:"pinned" flag:"pinned" usage:"variant ids this peer always serves"`
	// Bytes of model weights this peer may hold in memory (0: unlimited).
	MemoryBudget int64 `yaml:"memory_budget" flag:"memory-budget" usage:"bytes of weights this peer may hold (0: unlimited)"`
	// Compute threads (0: all cores).
	Threads int `yaml:"threads" flag:"threads" usage:"compute threads (0: all cores)"`
	// API listen address; default 127.0.0.1:8080.
	HTTPAddr string `yaml:"http_addr" flag:"http-addr" usage:"HTTP API listen host:port"`
	// File holding the bearer token; required unless HTTPAddr is loopback.
	APIToken string `yaml:"api_token" flag:"api-token" usage:"file holding the API bearer token (required off loopback)"`
	// Default top-k per answer; 0: half the classes (the paper's maximum).
	K int `yaml:"k" flag:"k" usage:"default top-k per answer (0: half the classes)"`
	// Default minimum variants that must answer; default 1.
	Quorum int `yaml:"quorum" flag:"quorum" usage:"default number of variants that must answer"`
	// Default request deadline; default 2s.
	Deadline time.Duration `yaml:"deadline" flag:"deadline" usage:"default request deadline"`
	// Ask a second replica after this long; default 50ms.
	HedgeDelay time.Duration `yaml:"hedge_delay" flag:"hedge-delay" usage:"ask a second replica after this long"`
	// Requests queued per served variant; default 32.
	QueueDepth int `yaml:"queue_depth" flag:"queue-depth" usage:"requests queued per served variant"`
	// Largest accepted image; default 16 MiB.
	MaxImageBytes int64 `yaml:"max_image_bytes" flag:"max-image-bytes" usage:"largest accepted image in bytes"`
	// Pixel budget per image, and what decoding may hold at once (4 bytes a
	// pixel); default 16 megapixels.
	MaxPixels int64 `yaml:"max_pixels" flag:"max-pixels" usage:"pixel budget per image (decoding holds at most 4 bytes per pixel of it at once)"`
	// debug, info, warn, error; default info.
	LogLevel string `yaml:"log_level" flag:"log-level" usage:"debug, info, warn or error"`
}

// DefaultConfig returns the defaults a home-lab peer starts from.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	home, _ := os.UserHomeDir()
	return Config{
		NodeName:      host,
		DataDir:       home + "/.varpar",
		GossipAddr:    "0.0.0.0:7946",
		P2PAddr:       "0.0.0.0:7947",
		HTTPAddr:      "127.0.0.1:8080",
		Quorum:        1,                     // any variant gives a full-class answer
		Deadline:      2 * time.Second,       // a Pi answers in tens of milliseconds; leave room for slow links
		HedgeDelay:    50 * time.Millisecond, // about the p99 of one variant on a Pi 4
		QueueDepth:    32,                    // beyond this a request waits too long anyway
		MaxImageBytes: 16 << 20,              // a 12-megapixel JPEG is about 5 MiB
		MaxPixels:     16_000_000,            // a 12 MP photo fits; decoding holds 64 MB at most, room on a 1 GB Pi
		LogLevel:      "info",
	}
}

// LoadConfigFile reads a YAML config file over cfg. Unknown keys are errors.
func LoadConfigFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Validate checks the configuration and says which key is wrong.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.NodeName == "" || len(c.NodeName) > 64 || strings.ContainsAny(c.NodeName, " \t\n/") {
		return bad("node_name", "%q: want 1 to 64 characters without spaces or slashes", c.NodeName)
	}
	if c.DataDir == "" {
		return bad("data_dir", "is empty")
	}
	for key, addr := range map[string]string{"gossip_addr": c.GossipAddr, "p2p_addr": c.P2PAddr, "http_addr": c.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad(key, "%q is not host:port", addr)
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad("seeds", "%q is not host:port", s)
		}
	}
	if c.ClusterKey == "" {
		return bad("cluster_key", "is required (create one with varpar keygen)")
	}
	if !isLoopback(c.HTTPAddr) && c.APIToken == "" {
		return bad("api_token", "is required when http_addr (%s) is not a loopback address", c.HTTPAddr)
	}
	if c.K < 0 || c.Quorum < 0 || c.Threads < 0 || c.QueueDepth < 1 || c.MemoryBudget < 0 {
		return bad("k, quorum, threads, queue_depth, memory_budget", "must not be negative (queue_depth at least 1)")
	}
	if c.Deadline <= 0 || c.HedgeDelay < 0 {
		return bad("deadline, hedge_delay", "deadline must be positive, hedge_delay not negative")
	}
	if c.MaxImageBytes < 1 || c.MaxPixels < 1 {
		return bad("max_image_bytes, max_pixels", "must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// isLoopback reports whether a host:port listens only on loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
