package p2pnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/varpar/varpar/p2pnet/pb"
)

func TestDerivePSK(t *testing.T) {
	// Computed independently: HKDF-SHA256(ikm = the key, salt = none,
	// info = pskLabel, L = 32), with Python's hmac module.
	const want = "e49ca45289937a026a6196a2973dd7549c026596f949095e37caba9ff3f24a61"
	got, err := DerivePSK(testClusterKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 32 {
		t.Fatalf("PSK is %d bytes, want 32", len(got))
	}
	if hex.EncodeToString(got) != want {
		t.Errorf("DerivePSK(test key) = %x, want %s", []byte(got), want)
	}
	other, _ := DerivePSK([]byte("another cluster key of 32 bytes!"))
	if string(other) == string(got) {
		t.Error("different cluster keys derive the same PSK")
	}
	if _, err := DerivePSK(make([]byte, MinClusterKeyLen-1)); err == nil {
		t.Error("15-byte cluster key: got nil error")
	}
}

func TestOtherClusterCannotConnect(t *testing.T) {
	var calls atomic.Int32
	server := newHost(t)
	server.SetInferHandler(func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer {
		calls.Add(1)
		return topK(ctx, from, req)
	})
	stranger := newHost(t, func(c *Config) { c.ClusterKey = []byte("a different cluster's secret key") })

	// A private network gives no explicit refusal: the handshake bytes are
	// noise to the other side, so each attempt fails at its deadline.
	try := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		// Forget earlier failed dials, so that this attempt dials again.
		stranger.host.Network().(*swarm.Swarm).Backoff().Clear(server.host.ID())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := call(ctx); err == nil {
			t.Fatalf("a host with another cluster key could %s", what)
		} else {
			t.Logf("%s: refused after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		}
	}
	try("connect", func(ctx context.Context) error { return stranger.host.Connect(ctx, server.AddrInfo()) })
	try("open a stream", func(ctx context.Context) error {
		stranger.host.Peerstore().AddAddrs(server.host.ID(), server.Addrs(), time.Minute)
		s, err := stranger.host.NewStream(ctx, server.host.ID(), InferProtocol)
		if err == nil {
			s.Reset()
		}
		return err
	})
	try("infer", func(ctx context.Context) error {
		_, err := stranger.Infer(ctx, server.Remote(), testRequest("x", "v"))
		return err
	})
	if got := len(server.host.Network().ConnsToPeer(stranger.host.ID())); got != 0 {
		t.Errorf("server has %d connections to the stranger", got)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("handler ran %d times for a stranger", n)
	}
	// The same server still serves its own cluster.
	friend := newHost(t)
	if _, err := friend.Infer(testCtx(t, 10*time.Second), server.Remote(), testRequest("y", "v")); err != nil {
		t.Fatalf("Infer from the cluster after a stranger tried: %v", err)
	}
}

func TestIdentityPersists(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "sub", "peer.key")
	start := func() peer.ID {
		h, err := New(withKey(testConfig(t), keyFile))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer h.Close()
		return h.host.ID()
	}
	first := start()
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %v, want 0600", mode)
	}
	if second := start(); second != first {
		t.Fatalf("restart changed the peer ID: %s, then %s", first, second)
	}

	// A damaged key file is an error, never a new identity.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(withKey(testConfig(t), keyFile)); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("corrupt key file: got %v, want ErrKeyFile", err)
	}
	if b, _ := os.ReadFile(keyFile); string(b) != "not a key" {
		t.Error("New overwrote the corrupt key file")
	}

	// So is a key of another type.
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := crypto.MarshalPrivateKey(k)
	if err := os.WriteFile(keyFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(keyFile); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("secp256k1 key file: got %v, want ErrKeyFile", err)
	}
}

func withKey(c Config, file string) Config {
	c.KeyFile = file
	return c
}

func TestCloseIsIdempotentAndWaits(t *testing.T) {
	client, server := newHost(t), newHost(t)
	started, done := make(chan struct{}, 1), make(chan struct{})
	server.SetInferHandler(blockingHandler(started, done))
	errc := make(chan error, 1)
	go func() {
		_, err := client.Infer(context.Background(), server.Remote(), testRequest("c", "v"))
		errc <- err
	}()
	<-started
	// Close must cancel the running handler and wait for it.
	if err := server.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the handler did")
	}
	if err := server.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Infer to a closing host succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Infer did not fail after the server closed")
	}
	if _, err := server.Infer(context.Background(), client.Remote(), testRequest("c", "v")); !errors.Is(err, ErrClosed) {
		t.Errorf("Infer on a closed host: got %v, want ErrClosed", err)
	}
	if err := server.FetchWeights(context.Background(), client.Remote(), "00", 1, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("FetchWeights on a closed host: got %v, want ErrClosed", err)
	}
}

func TestPortAndConfig(t *testing.T) {
	h := newHost(t)
	if h.Port() <= 0 {
		t.Fatalf("Port() = %d for a listening host", h.Port())
	}
	found := false
	for _, a := range h.Addrs() {
		if v, err := a.ValueForProtocol(4 /* ip4 */); err == nil && v == "127.0.0.1" {
			found = true
		}
	}
	if !found {
		t.Errorf("Addrs() = %v, want a 127.0.0.1 address", h.Addrs())
	}
	dialOnly := newHost(t, func(c *Config) { c.ListenAddrs = nil })
	if dialOnly.Port() != 0 {
		t.Errorf("Port() = %d for a host that listens on nothing", dialOnly.Port())
	}
	// A dial-only host can still call others.
	h.SetInferHandler(topK)
	if _, err := dialOnly.Infer(testCtx(t, 10*time.Second), h.Remote(), testRequest("d", "v")); err != nil {
		t.Fatalf("Infer from a dial-only host: %v", err)
	}

	// A port already in use is an error, and leaks nothing (TestMain checks).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken, err := manet.FromNetAddr(l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.ClusterKey = nil },
		func(c *Config) { c.MaxInferBytes = 100 },
		func(c *Config) { c.MaxInferBytes = 64 << 20 },
		func(c *Config) { c.ChunkSize = 4 << 20 },
		func(c *Config) { c.StreamTimeout = 0 },
		func(c *Config) { c.MaxInferTime = -1 },
		func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"} },
		func(c *Config) { c.ListenAddrs = []string{"not a multiaddr"} },
		func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", taken.String()} },
	}
	for i, modify := range bad {
		cfg := testConfig(t)
		modify(&cfg)
		if h, err := New(cfg); err == nil {
			h.Close()
			t.Errorf("bad config %d: New succeeded", i)
		}
	}
}
