package gossip

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestJunkFloodIsCountedNotLogged sends 2,000 datagrams no node can decrypt
// to a real node on loopback: each is counted (OnRejected, reason decrypt),
// and only a few lines are logged. Each used to log an error line.
func TestJunkFloodIsCountedNotLogged(t *testing.T) {
	const sent = 2000
	cfg := testConfig(t, "a")
	var decrypt, other atomic.Int64
	cfg.OnRejected = func(reason string) {
		if reason == "decrypt" {
			decrypt.Add(1)
		} else {
			other.Add(1)
		}
	}
	var sink *logSink
	cfg.Logger, sink = testLogger(t, "a")
	g := startNode(t, cfg)

	conn, err := net.Dial("udp", addrOf(g))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	junk := bytes.Repeat([]byte("junk"), 64) // 'j' is no label header: memberlist tries to decrypt it
	start := time.Now()
	for i := range sent {
		if _, err := conn.Write(junk); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if i%100 == 99 {
			// Let the node read: loopback drops what overflows its buffer.
			waitFor(t, 5*time.Second, "the node reading the junk", func() error {
				if n := decrypt.Load(); n < int64(i+1)*9/10 {
					return fmt.Errorf("%d of %d counted", n, i+1)
				}
				return nil
			})
		}
	}
	waitFor(t, 5*time.Second, "every datagram counted", func() error {
		if n := decrypt.Load(); n < sent {
			return fmt.Errorf("%d of %d counted", n, sent)
		}
		return nil
	})
	took := time.Since(start)
	lines := sink.find("Decrypt packet failed")
	t.Logf("%d datagrams in %v: %d counted as decrypt, %d otherwise, %d lines logged", sent, took.Round(time.Millisecond), decrypt.Load(), other.Load(), len(lines))
	if n := decrypt.Load(); n != sent {
		t.Errorf("counted %d decrypt rejections, want %d", n, sent)
	}
	if max := (int(took/rejectLogEvery) + 1) * (rejectLogBurst + 1); len(lines) > max {
		t.Errorf("%d lines logged for %d junk datagrams in %v, want at most %d", len(lines), sent, took, max)
	}
}

// TestRejectLogWindow: per reason, rejectLogBurst lines per window; the
// first line of the next window carries the count suppressed; other lines
// are never held back.
func TestRejectLogWindow(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	counted := map[string]int{}
	w := newLogWriter(zerolog.New(&buf), func(r string) { counted[r]++ }, clock)
	write := func(line string, n int) {
		for range n {
			w.Write([]byte(line + "\n"))
		}
	}
	write("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=1.2.3.4:5", 10)
	write("[WARN] memberlist: Got invalid checksum for UDP packet: 1, 2", 5)
	write("[INFO] memberlist: Marking b as failed", 5)
	mu.Lock()
	now = now.Add(rejectLogEvery)
	mu.Unlock()
	write("[ERR] memberlist: Decrypt packet failed: x from=1.2.3.4:5", 1)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	count := func(part string) (n int) {
		for _, l := range lines {
			if strings.Contains(l, part) {
				n++
			}
		}
		return n
	}
	if got := count("Decrypt packet failed"); got != rejectLogBurst+1 {
		t.Errorf("%d decrypt lines, want %d (a window's burst, then the next window's first)", got, rejectLogBurst+1)
	}
	if got := count(`"suppressed":7`); got != 1 || !strings.Contains(lines[len(lines)-1], `"suppressed":7`) {
		t.Errorf("the next window's first line should say 7 suppressed:\n%s", buf.String())
	}
	if got := count("invalid checksum"); got != rejectLogBurst {
		t.Errorf("%d checksum lines, want %d: each reason has its own window", got, rejectLogBurst)
	}
	if got := count("Marking b as failed"); got != 5 {
		t.Errorf("%d lines of a failure, want all 5: only rejections are rate-limited", got)
	}
	if counted["decrypt"] != 11 || counted["checksum"] != 5 || len(counted) != 2 {
		t.Errorf("counted %v, want decrypt 11, checksum 5", counted)
	}
}

func TestRejectReason(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"Decrypt packet failed: no installed keys could decrypt the message from=1.2.3.4:5", "decrypt"},
		{"failed to receive: no installed keys could decrypt the message from=1.2.3.4:5", "decrypt"},
		{"discarding packet with unacceptable label \"x\": from=1.2.3.4:5", "label"},
		{"Got invalid checksum for UDP packet: 1, 2", "checksum"},
		{"Failed to decode ping request: EOF from=1.2.3.4:5", "malformed"},
		{"msg type (99) not supported from=1.2.3.4:5", "malformed"},
		{"handler queue full, dropping message (3) from=1.2.3.4:5", "queue_full"},
		{"failed to receive: EOF from=1.2.3.4:5", "stream"},
		{"Marking b as failed, suspect timeout reached (0 peer confirmations)", ""},
		{"Stream connection from=1.2.3.4:5", ""},
	} {
		if got := rejectReason(tc.msg); got != tc.want {
			t.Errorf("rejectReason(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}
