// Package apitest has test peers for the clients of peer/api: HTTP servers
// that stand for a peer in a state a test needs.
package apitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Stalled is a peer that accepts a request and never answers (frozen, or
// behind a dead link): its handler blocks until the request is cancelled or
// the test ends.
type Stalled struct {
	Got       atomic.Int32  // requests received
	Cancelled chan struct{} // one value per request cancelled by its client (buffered: 16)
	end       chan struct{}
}

// NewStalled starts a Stalled peer, stopped when tb's test ends.
func NewStalled(tb testing.TB) (*Stalled, *httptest.Server) {
	s := &Stalled{Cancelled: make(chan struct{}, 16), end: make(chan struct{})}
	srv := httptest.NewServer(s)
	tb.Cleanup(func() { close(s.end); srv.Close() })
	return s, srv
}

func (s *Stalled) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Got.Add(1)
	io.Copy(io.Discard, r.Body) // the server sees the client go only once the body is read
	select {
	case <-r.Context().Done():
		select {
		case s.Cancelled <- struct{}{}:
		default: // a test that does not count them
		}
	case <-s.end:
	}
}
