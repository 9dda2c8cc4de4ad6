package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	valid := func() Config {
		cfg := DefaultConfig()
		cfg.Name = "pi-1"
		cfg.Key = make([]byte, 32)
		cfg.Seeds = []string{"192.168.1.10:7946", "[fd00::1]:7946", "seed.lan:7946"}
		return cfg
	}
	if _, err := New(valid()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	v6 := valid()
	v6.BindAddr, v6.AdvertiseAddr = "::", "fd00::7"
	if _, err := New(v6); err != nil {
		t.Fatalf("IPv6 config refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // in the error
	}{
		{"no name", func(c *Config) { c.Name = "" }, "Name is empty"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("n", maxNameLen+1) }, "Name is 129 bytes"},
		{"bind addr", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		{"bind port", func(c *Config) { c.BindPort = 70000 }, "BindPort"},
		{"advertise addr", func(c *Config) { c.AdvertiseAddr = "pi.lan" }, "AdvertiseAddr"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0" }, "no address a node can reach"},
		{"advertise unspecified ipv6", func(c *Config) { c.AdvertiseAddr = "::" }, "no address a node can reach"},
		{"any ipv6 without advertise", func(c *Config) { c.BindAddr = "::" }, `BindAddr "::" needs Config.AdvertiseAddr`},
		{"advertise port", func(c *Config) { c.AdvertisePort = -1 }, "AdvertisePort = -1"},
		{"advertise port, free bind port", func(c *Config) { c.AdvertisePort = 7000; c.BindPort = 0 }, "fixed Config.BindPort"},
		{"no key", func(c *Config) { c.Key = nil }, "Key is 0 bytes"},
		{"short key", func(c *Config) { c.Key = make([]byte, 20) }, "Key is 20 bytes"},
		{"probe interval", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval"},
		{"probe timeout", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "ProbeTimeout"},
		{"suspicion", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult"},
		{"gossip interval", func(c *Config) { c.GossipInterval = 0 }, "GossipInterval"},
		{"push/pull", func(c *Config) { c.PushPullInterval = 0 }, "PushPullInterval"},
		{"stream timeout", func(c *Config) { c.StreamTimeout = -time.Second }, "StreamTimeout"},
		{"retention", func(c *Config) { c.DeadRetention = 0 }, "DeadRetention"},
		{"backoff", func(c *Config) { c.JoinBackoff = 0 }, "JoinBackoff"},
		{"max backoff", func(c *Config) { c.JoinMaxBackoff = c.JoinBackoff / 2 }, "JoinMaxBackoff"},
		{"retries", func(c *Config) { c.JoinRetries = -1 }, "JoinRetries"},
		{"seed without port", func(c *Config) { c.Seeds = []string{"192.168.1.10"} }, `"192.168.1.10" is not host:port`},
		{"seed without host", func(c *Config) { c.Seeds = []string{":7946"} }, "is not host:port"},
		{"seed port", func(c *Config) { c.Seeds = []string{"pi:0"} }, "no valid port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.edit(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalidConfig saying %q", err, tc.want)
			}
		})
	}
}

func TestNewCopiesTheConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Name = "pi-1"
	cfg.Key = []byte("0123456789abcdef")
	cfg.Seeds = []string{"pi-2:7946"}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Key[0], cfg.Seeds[0] = 'X', "evil:1"
	if g.cfg.Key[0] != '0' || g.cfg.Seeds[0] != "pi-2:7946" {
		t.Errorf("New kept the caller's slices: key %q, seeds %v", g.cfg.Key, g.cfg.Seeds)
	}
}
