package gossip

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		level zerolog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4:5\n", zerolog.DebugLevel, "Stream connection from=1.2.3.4:5"},
		{"[INFO] memberlist: Marking b as failed\n", zerolog.InfoLevel, "Marking b as failed"},
		{"[WARN] memberlist: Refuting a suspect message (from: a)\n", zerolog.WarnLevel, "Refuting a suspect message (from: a)"},
		{"[ERR] memberlist: Conflicting address for a\n", zerolog.ErrorLevel, "Conflicting address for a"},
		{"[ERROR] memberlist: Failed to compress payload: x\n", zerolog.ErrorLevel, "Failed to compress payload: x"},
		{"Err: Could not set the deadline: x\n", zerolog.ErrorLevel, "Could not set the deadline: x"},
		{"[BOGUS] something\n", zerolog.InfoLevel, "[BOGUS] something"},
		{"no level at all", zerolog.InfoLevel, "no level at all"},
		{"[", zerolog.InfoLevel, "["},
		{"", zerolog.InfoLevel, ""},
	} {
		level, msg := parseLogLine(tc.line)
		if level != tc.level || msg != tc.msg {
			t.Errorf("parseLogLine(%q) = %v, %q; want %v, %q", tc.line, level, msg, tc.level, tc.msg)
		}
	}
}

// What memberlist prints reaches zerolog, at its level, and nothing else.
func TestStdLoggerGoesToZerolog(t *testing.T) {
	var buf bytes.Buffer
	l := newStdLogger(zerolog.New(&buf).Level(zerolog.InfoLevel), nil, nil)
	l.Printf("[DEBUG] memberlist: dropped at info level")
	l.Printf("[WARN] memberlist: Got ping for unexpected node %s", "x")
	got := strings.TrimSpace(buf.String())
	want := `{"level":"warn","component":"memberlist","message":"Got ping for unexpected node x"}`
	if got != want {
		t.Errorf("zerolog got\n%s\nwant\n%s", got, want)
	}
}

// Once the node is stopped, memberlist's lines are dropped.
func TestStdLoggerQuietAfterShutdown(t *testing.T) {
	var buf bytes.Buffer
	stopped := make(chan struct{})
	l := newStdLogger(zerolog.New(&buf), nil, stopped)
	l.Printf("[WARN] memberlist: before")
	close(stopped)
	l.Printf("[ERR] memberlist: Failed to send gossip: use of closed network connection")
	if got := strings.TrimSpace(buf.String()); got != `{"level":"warn","component":"memberlist","message":"before"}` {
		t.Errorf("got %s; want only the line from before the stop", got)
	}
}
