package api

import (
	"net/url"
	"strconv"
	"time"
)

// Params are the optional query parameters of POST /v1/classify; zero values
// leave them to the serving peer.
type Params struct {
	K        int           // classes each variant answers with
	Quorum   int           // variants that must answer
	Deadline time.Duration // time the serving peer may take
}

// MaxDeadline is the longest deadline_ms a peer takes.
const MaxDeadline = 60 * time.Second

// Query encodes p as the request's query string ("" for all zero). The
// deadline is rounded up to whole milliseconds: never ask for less.
func (p Params) Query() string {
	q := url.Values{}
	if p.K > 0 {
		q.Set("k", strconv.Itoa(p.K))
	}
	if p.Quorum > 0 {
		q.Set("quorum", strconv.Itoa(p.Quorum))
	}
	if p.Deadline > 0 {
		ms := (p.Deadline + time.Millisecond - 1) / time.Millisecond
		q.Set("deadline_ms", strconv.FormatInt(int64(ms), 10))
	}
	return q.Encode()
}

// Timeout bounds a whole HTTP exchange of a classify with p: the peer's
// deadline plus room for the upload and the answer.
func (p Params) Timeout() time.Duration {
	if p.Deadline > 0 {
		return p.Deadline + 10*time.Second
	}
	return MaxDeadline + 10*time.Second
}
