package gossip

import (
	"log"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/varpar/varpar/internal/ratelog"
)

// memberlist logs through a *log.Logger, one Printf per line, each starting
// with a level in brackets ("[WARN] memberlist: ..."). logWriter turns those
// lines into zerolog events so that nothing is printed raw.
//
// Anyone who can send a datagram to the gossip port makes memberlist log a
// line (junk, or a node with another key: "Decrypt packet failed"), so those
// lines, the rejections, are counted (Config.OnRejected) and rate-limited:
// at most rejectLogBurst lines per reason per rejectLogEvery, the first line
// after a quiet spell saying how many were suppressed. An SD card then sees
// a few lines a minute, not thousands a second.
//
// Once the node shuts down (stopped closed), memberlist's lines are dropped:
// what its goroutines still say then ("use of closed network connection", a
// probe that outlived Shutdown) is about the shutdown itself.
type logWriter struct {
	log      zerolog.Logger
	rejected func(reason string) // nil: not counted
	limit    *ratelog.Limiter    // by reason
	stopped  <-chan struct{}     // nil: never
}

const (
	rejectLogBurst = 3                // rejection lines logged per reason per window
	rejectLogEvery = 10 * time.Second // the window
)

func newStdLogger(l zerolog.Logger, rejected func(reason string), stopped <-chan struct{}) *log.Logger {
	w := newLogWriter(l.With().Str("component", "memberlist").Logger(), rejected, time.Now)
	w.stopped = stopped
	return log.New(w, "", 0)
}

func newLogWriter(l zerolog.Logger, rejected func(reason string), now func() time.Time) *logWriter {
	return &logWriter{log: l, rejected: rejected, limit: ratelog.New(rejectLogBurst, rejectLogEvery, now)}
}

func (w *logWriter) Write(p []byte) (int, error) {
	select {
	case <-w.stopped:
		return len(p), nil
	default:
	}
	level, msg := parseLogLine(string(p))
	reason := rejectReason(msg)
	if reason == "" {
		w.log.WithLevel(level).Msg(msg)
		return len(p), nil
	}
	if w.rejected != nil {
		w.rejected(reason)
	}
	if suppressed, ok := w.limit.Admit(reason); ok {
		e := w.log.WithLevel(level).Str("rejected", reason)
		if suppressed > 0 {
			e = e.Int("suppressed", suppressed)
		}
		e.Msg(msg)
	}
	return len(p), nil
}

// rejectReason names why memberlist refused a packet or stream, from its log
// message, or returns "" for a line that is not such a refusal. Reasons:
// decrypt (not sealed with the cluster key), label, checksum, malformed (no
// message memberlist can decode), queue_full (dropped under load) and stream
// (a TCP stream that failed otherwise).
func rejectReason(msg string) string {
	has := func(s string) bool { return strings.Contains(msg, s) }
	switch {
	case has("Decrypt packet failed"), has("decrypt"), has("Failed to decrypt"):
		return "decrypt"
	case has("label"):
		return "label"
	case has("invalid checksum"):
		return "checksum"
	case has("handler queue full"):
		return "queue_full"
	case has("Failed to decode"), has("missing message type"), has("not supported"), has("invalid msgType"),
		has("Failed to decompress"), has("truncated messages"), has("Failed to receive user message"):
		return "malformed"
	case has("failed to receive"):
		return "stream"
	}
	return ""
}

// parseLogLine splits one memberlist log line into a level and a message.
// A line with no level we know is logged at info, whole.
func parseLogLine(line string) (zerolog.Level, string) {
	line = strings.TrimRight(line, "\r\n")
	level, rest := zerolog.InfoLevel, line
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			if l, ok := logLevels[line[1:end]]; ok {
				level, rest = l, strings.TrimLeft(line[end+1:], " ")
			}
		}
	} else if strings.HasPrefix(line, "Err: ") { // a few lines in net.go
		level, rest = zerolog.ErrorLevel, line[len("Err: "):]
	}
	return level, strings.TrimPrefix(rest, "memberlist: ")
}

var logLevels = map[string]zerolog.Level{
	"TRACE": zerolog.TraceLevel,
	"DEBUG": zerolog.DebugLevel,
	"INFO":  zerolog.InfoLevel,
	"WARN":  zerolog.WarnLevel,
	"ERR":   zerolog.ErrorLevel,
	"ERROR": zerolog.ErrorLevel,
}
