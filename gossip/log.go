package gossip

import (
	"log"
	"strings"

	"github.com/rs/zerolog"
)

// memberlist logs through a *log.Logger, one Printf per line, each starting
// with a level in brackets ("[WARN] memberlist: ..."). logWriter turns those
// lines into zerolog events so that nothing is printed raw.
type logWriter struct {
	log zerolog.Logger
}

func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(logWriter{log: l.With().Str("component", "memberlist").Logger()}, "", 0)
}

func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseLogLine(string(p))
	w.log.WithLevel(level).Msg(msg)
	return len(p), nil
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
