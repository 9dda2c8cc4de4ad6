package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every node
// the tests start is shut down, and Shutdown must leave nothing behind.
func TestMain(m *testing.M) {
	zerolog.TimeFieldFormat = zerolog.TimeFormatUnixMs // for the test log's milliseconds
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

var testKey = []byte("varpar-test-key!") // 16 bytes: AES-128

// logSink sends a node's log lines to the test log, and keeps them so that a
// test can check what was logged. Lines that come after the test ended (from
// memberlist goroutines still winding down) are dropped: testing panics on
// them.
type logSink struct {
	mu    sync.Mutex
	tb    testing.TB
	done  bool
	lines []string
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := strings.TrimRight(string(p), "\n")
	s.lines = append(s.lines, line)
	if !s.done {
		s.tb.Log(line)
	}
	return len(p), nil
}

// find returns the logged lines that contain every one of parts.
func (s *logSink) find(parts ...string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

func testLogger(tb testing.TB, name string) (zerolog.Logger, *logSink) {
	tb.Helper()
	s := &logSink{tb: tb}
	tb.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	w := zerolog.ConsoleWriter{Out: s, NoColor: true, TimeFormat: "15:04:05.000"}
	return zerolog.New(w).Level(zerolog.DebugLevel).With().Timestamp().Str("node", name).Logger(), s
}

// Test timings: the LAN profile sped up about 5 times, still loose enough for
// the race detector on 2 cores. A dead node is suspected within a probe
// round or two and declared dead 0.6 s later (3.6 s at most, unconfirmed).
const (
	testProbeInterval = 200 * time.Millisecond
	testSuspicionMult = 3
)

func testConfig(tb testing.TB, name string) Config {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Key = testKey
	cfg.Logger, _ = testLogger(tb, name)
	cfg.ProbeInterval = testProbeInterval
	cfg.ProbeTimeout = 100 * time.Millisecond
	cfg.SuspicionMult = testSuspicionMult
	cfg.GossipInterval = 20 * time.Millisecond
	cfg.PushPullInterval = time.Second
	cfg.StreamTimeout = 2 * time.Second
	cfg.DeadRetention = 10 * time.Second
	cfg.JoinBackoff = 50 * time.Millisecond
	cfg.JoinMaxBackoff = 400 * time.Millisecond
	return cfg
}

// newNode returns a node, not started, that the test shuts down when it ends.
func newNode(tb testing.TB, cfg Config) *Gossip {
	tb.Helper()
	g, err := New(cfg)
	if err != nil {
		tb.Fatalf("New(%s): %v", cfg.Name, err)
	}
	tb.Cleanup(func() {
		if err := g.Shutdown(); err != nil {
			tb.Errorf("Shutdown(%s): %v", cfg.Name, err)
		}
	})
	return g
}

// startNode starts a node that the test shuts down when it ends.
func startNode(tb testing.TB, cfg Config) *Gossip {
	tb.Helper()
	g := newNode(tb, cfg)
	if err := g.Start(); err != nil {
		tb.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	return g
}

func addrOf(g *Gossip) string {
	host, port := g.LocalAddr()
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// startCluster starts n nodes named n0, n1, ...; all but n0 join n0. It
// returns once every node sees every other.
func startCluster(tb testing.TB, n int, edit func(i int, cfg *Config)) []*Gossip {
	tb.Helper()
	gs := make([]*Gossip, n)
	for i := range gs {
		cfg := testConfig(tb, fmt.Sprintf("n%d", i))
		if i > 0 {
			cfg.Seeds = []string{addrOf(gs[0])}
		}
		if edit != nil {
			edit(i, &cfg)
		}
		gs[i] = startNode(tb, cfg)
	}
	waitFor(tb, 5*time.Second, "all nodes see each other", func() error {
		return allSee(gs, gs...)
	})
	return gs
}

// allSee checks that each of observers lists exactly members, alive.
func allSee(observers []*Gossip, members ...*Gossip) error {
	want := make([]string, len(members))
	for i, g := range members {
		want[i] = g.cfg.Name + "@" + addrOf(g)
	}
	slices.Sort(want)
	for _, o := range observers {
		if got := names(o.Members()); !slices.Equal(got, want) {
			return fmt.Errorf("%s sees %v, want %v", o.cfg.Name, got, want)
		}
	}
	return nil
}

// names lists members as name@host:port, in Members' order.
func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name + "@" + m.Address()
	}
	return out
}

// waitFor polls cond until it returns nil, and fails the test if that takes
// longer than timeout, with cond's last complaint.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v, still not %s: %v", timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holds polls cond for d and fails the test as soon as it returns an error:
// for things that must not happen.
func holds(tb testing.TB, d time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			tb.Fatalf("not %s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// member returns the member called name in ms.
func member(ms []Member, name string) (Member, bool) {
	i := slices.IndexFunc(ms, func(m Member) bool { return m.Name == name })
	if i < 0 {
		return Member{}, false
	}
	return ms[i], true
}

// freePort returns a port free on 127.0.0.1 for both UDP and TCP, as
// memberlist needs, for a node that must be reachable before it starts.
func freePort(tb testing.TB) int {
	tb.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	tb.Fatal("no free port")
	return 0
}

func waitJoined(tb testing.TB, g *Gossip, timeout time.Duration) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return g.WaitJoined(ctx)
}

func mustBe(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("got error %v, want one that is %v", err, target)
	}
}
