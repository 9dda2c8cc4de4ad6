package peer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/p2pnet/pb"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.NodeName = "pi-1"
	good.ClusterKey = "k"
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"ok", func(c *Config) {}, ""},
		{"name", func(c *Config) { c.NodeName = "a b" }, "node_name"},
		{"key", func(c *Config) { c.ClusterKey = "" }, "cluster_key: is required"},
		{"addr", func(c *Config) { c.GossipAddr = "7946" }, "gossip_addr"},
		{"seed", func(c *Config) { c.Seeds = []string{"pi-2"} }, "seeds"},
		{"token off loopback", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" }, "api_token: is required"},
		{"token on loopback", func(c *Config) { c.HTTPAddr = "[::1]:8080" }, ""},
		{"deadline", func(c *Config) { c.Deadline = 0 }, "deadline"},
		{"queue", func(c *Config) { c.QueueDepth = 0 }, "queue_depth"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		err := c.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadConfigFileRejectsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "peer.yaml")
	os.WriteFile(path, []byte("node_name: pi-7\nseeds: [\"10.0.0.1:7946\"]\ndeadline: 750ms\n"), 0o644)
	c := DefaultConfig()
	if err := LoadConfigFile(path, &c); err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "pi-7" || len(c.Seeds) != 1 || c.Deadline.Milliseconds() != 750 {
		t.Fatalf("read %+v", c)
	}
	os.WriteFile(path, []byte("node_nmae: x\n"), 0o644)
	if err := LoadConfigFile(path, &c); err == nil || !strings.Contains(err.Error(), "node_nmae") {
		t.Fatalf("unknown key: got %v", err)
	}
}

func TestStoreChecksHashes(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("weights")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	fill := func(b []byte) func(w io.Writer) error {
		return func(w io.Writer) error { _, err := w.Write(b); return err }
	}
	var hm *HashMismatchError
	if err := s.Put(sha, "liar", fill([]byte("weighty"))); !errors.As(err, &hm) || hm.Source != "liar" {
		t.Fatalf("wrong bytes: got %v, want a HashMismatchError", err)
	}
	if s.Has(sha) {
		t.Fatal("wrong bytes were stored")
	}
	if err := s.Put(sha, "honest", fill(data)); err != nil {
		t.Fatal(err)
	}
	r, n, err := s.Open(sha)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Open: %v, size %d", err, n)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %q", got)
	}
	if _, _, err := s.Open(strings.Repeat("0", 64)); !errors.Is(err, ErrNotStored) {
		t.Fatalf("missing: got %v", err)
	}
	if _, _, err := s.Open("../../etc/passwd"); !errors.Is(err, ErrNotStored) {
		t.Fatalf("path escape: got %v", err)
	}
	if entries, _ := os.ReadDir(s.dir); len(entries) != 1 {
		t.Fatalf("store holds %d files, want 1 (temporary files left behind?)", len(entries))
	}
}

func TestQuantizeSpeed(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{{1, 1}, {1.3, 1}, {1.5, 2}, {17.6, 16}, {0.4, 0.5}, {0, 1}, {-3, 1}} {
		if got := quantizeSpeed(tt.in); got != tt.want {
			t.Errorf("quantizeSpeed(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecodeRaw(t *testing.T) {
	req := &pb.InferRequest{Input: &pb.InferRequest_Raw{Raw: &pb.RawImage{Width: 2, Height: 1, Channels: 3, Pixels: []byte{1, 2, 3, 4, 5, 6}}}}
	img, err := decodeRaw(req, 100)
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := img.At(1, 0).RGBA(); r>>8 != 4 || g>>8 != 5 || b>>8 != 6 {
		t.Fatalf("pixel (1,0) = %d %d %d", r>>8, g>>8, b>>8)
	}
	if _, err := decodeRaw(req, 1); err == nil {
		t.Fatal("pixel budget not enforced for raw input")
	}
	req.Input = &pb.InferRequest_Raw{Raw: &pb.RawImage{Width: 2, Height: 2, Channels: 3, Pixels: []byte{1}}}
	if _, err := decodeRaw(req, 100); err == nil {
		t.Fatal("short raw pixels accepted")
	}
	if _, err := newDecoder(100, 1).prepare(context.Background(), []byte("nope"), []int{8}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("garbage image: got %v, want ErrBadRequest", err)
	}
}
