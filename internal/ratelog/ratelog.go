// Package ratelog decides which of many similar log lines to write: at most
// Burst per key per window, and the first line written after some were left
// out says how many. Anything that logs a line per packet an outsider can
// send (gossip, libp2p) goes through it, so that a flood of junk costs an SD
// card a few lines a minute, not thousands a second.
package ratelog

import (
	"sync"
	"time"
)

// Limiter admits log lines by key. The zero value is not usable: use New.
// It is safe for concurrent use.
type Limiter struct {
	burst int
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	windows map[string]*window
}

type window struct {
	start      time.Time
	logged     int // lines admitted in this window
	suppressed int // lines left out since the last one admitted
}

// maxKeys bounds the keys remembered: past it, the windows start again (a
// flood of distinct keys then logs a burst per key, still bounded by the
// keys' count per window).
const maxKeys = 1024

// New admits burst lines per key per every; now is the clock (nil:
// time.Now).
func New(burst int, every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{burst: burst, every: every, now: now, windows: map[string]*window{}}
}

// Admit reports whether a line of key may be written now and, if so, how
// many lines of key were left out before it.
func (l *Limiter) Admit(key string) (suppressed int, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if w == nil {
		if len(l.windows) >= maxKeys {
			clear(l.windows)
		}
		w = &window{start: now}
		l.windows[key] = w
	}
	if now.Sub(w.start) >= l.every {
		w.start, w.logged = now, 0
	}
	if w.logged >= l.burst {
		w.suppressed++
		return 0, false
	}
	w.logged++
	n := w.suppressed
	w.suppressed = 0
	return n, true
}
