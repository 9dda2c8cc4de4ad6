package p2pnet

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/rs/zerolog"

	"github.com/varpar/varpar/internal/ratelog"
)

// RouteLibp2pLogs sends go-libp2p's own log records (log/slog, one logger per
// subsystem) to log, with component=libp2p and the subsystem as "logger".
// libp2p is chatty below warning level, so its info records appear only when
// log is at debug level and its debug records never do. Records with the
// same message are rate-limited (anyone can open connections to the libp2p
// port): at most logBurst per logEvery, the next one saying how many were
// suppressed.
//
// Call it once, early in main: go-libp2p's loggers choose their handler the
// first time they log, and keep it.
func RouteLibp2pLogs(log zerolog.Logger) {
	gologshim.SetDefaultHandler(newSlogHandler(log.With().Str("component", "libp2p").Logger()))
}

// slogHandler is a log/slog handler writing to a zerolog logger.
type slogHandler struct {
	log    zerolog.Logger
	limit  *ratelog.Limiter // by message; shared by the handler's copies
	attrs  []slog.Attr      // from WithAttrs, already qualified by their group
	prefix string           // the open groups, "a.b."
}

const (
	logBurst = 3                // records with one message written per window
	logEvery = 10 * time.Second // the window
)

func newSlogHandler(log zerolog.Logger) *slogHandler {
	return &slogHandler{log: log, limit: ratelog.New(logBurst, logEvery, nil)}
}

// level maps a slog level to the zerolog level it is logged at, and to
// zerolog.Disabled for the records left out.
func (h *slogHandler) level(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.DebugLevel
	}
	return zerolog.Disabled
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	zl := h.level(l)
	return zl != zerolog.Disabled && zl >= h.log.GetLevel() && zl >= zerolog.GlobalLevel()
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	zl := h.level(r.Level)
	if zl == zerolog.Disabled {
		return nil
	}
	if zl < h.log.GetLevel() || zl < zerolog.GlobalLevel() {
		return nil // not to be written: not to be counted against the limit either
	}
	suppressed, ok := h.limit.Admit(r.Message)
	if !ok {
		return nil
	}
	e := h.log.WithLevel(zl)
	if e == nil {
		return nil
	}
	if suppressed > 0 {
		e = e.Int("suppressed", suppressed)
	}
	for _, a := range h.attrs {
		e = addAttr(e, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		e = addAttr(e, h.prefix, a)
		return true
	})
	e.Msg(r.Message)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		a.Key = h.prefix + a.Key
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// addAttr adds a, resolved, to e; groups flatten into dotted keys.
func addAttr(e *zerolog.Event, prefix string, a slog.Attr) *zerolog.Event {
	v := a.Value.Resolve()
	key := prefix + a.Key
	switch v.Kind() {
	case slog.KindGroup:
		p := prefix
		if a.Key != "" {
			p = key + "."
		}
		for _, g := range v.Group() {
			e = addAttr(e, p, g)
		}
		return e
	case slog.KindString:
		return e.Str(key, v.String())
	case slog.KindInt64:
		return e.Int64(key, v.Int64())
	case slog.KindUint64:
		return e.Uint64(key, v.Uint64())
	case slog.KindFloat64:
		return e.Float64(key, v.Float64())
	case slog.KindBool:
		return e.Bool(key, v.Bool())
	case slog.KindDuration:
		return e.Dur(key, v.Duration())
	case slog.KindTime:
		return e.Time(key, v.Time())
	}
	if a.Key == "" {
		return e
	}
	if err, ok := v.Any().(error); ok {
		return e.AnErr(key, err)
	}
	return e.Str(key, strings.TrimSpace(v.String()))
}
