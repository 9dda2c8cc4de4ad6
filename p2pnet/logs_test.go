package p2pnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestSlogHandlerWritesZerolog(t *testing.T) {
	var buf bytes.Buffer
	zl := zerolog.New(&buf).Level(zerolog.InfoLevel)
	log := slog.New(newSlogHandler(zl)).With("logger", "swarm2")

	log.Debug("never shown")
	log.Info("libp2p info is debug for us")
	if buf.Len() != 0 {
		t.Fatalf("records below warning were written at info level: %s", buf.String())
	}
	log.WithGroup("dial").Warn("dial failed", "peer", "12D3Koo", "attempt", 3, "took", 2*time.Second,
		"err", errors.New("connection refused"), slog.Group("addr", "port", 4001))
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	want := map[string]any{"level": "warn", "message": "dial failed", "logger": "swarm2", "dial.peer": "12D3Koo",
		"dial.attempt": float64(3), "dial.took": float64(2000), "dial.err": "connection refused", "dial.addr.port": float64(4001)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v (%T), want %v; line %s", k, got[k], got[k], v, buf.String())
		}
	}

	buf.Reset()
	debug := slog.New(newSlogHandler(zerolog.New(&buf).Level(zerolog.DebugLevel)))
	debug.Info("shown at debug")
	debug.Debug("libp2p debug never")
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 || !bytes.Contains(buf.Bytes(), []byte(`"level":"debug"`)) {
		t.Fatalf("at debug level: got %q, want the info record only, at debug", buf.String())
	}
}

// TestSlogHandlerRateLimits: a warning repeated (one per junk connection)
// is written logBurst times per window, not once per record; another
// message has its own window.
func TestSlogHandlerRateLimits(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newSlogHandler(zerolog.New(&buf).Level(zerolog.InfoLevel))).With("logger", "swarm2")
	for range 1000 {
		log.Warn("failed to negotiate security protocol", "err", "junk")
	}
	log.Error("another message")
	if n := bytes.Count(buf.Bytes(), []byte("failed to negotiate")); n != logBurst {
		t.Errorf("%d lines for 1000 repeated warnings, want %d", n, logBurst)
	}
	if !bytes.Contains(buf.Bytes(), []byte("another message")) {
		t.Errorf("another message was held back:\n%s", buf.String())
	}
}
