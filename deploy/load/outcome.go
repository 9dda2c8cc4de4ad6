package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// Outcome is what became of one scheduled request.
type Outcome struct {
	Dropped  bool // never sent: too many requests in flight
	Start    time.Time
	Latency  time.Duration
	Status   int    // HTTP status; 0 when no answer came
	ErrKind  string // "" for a success
	ErrMsg   string
	Class    string                       // the answer's class (successes)
	Label    string                       // the image's class name, "" if unknown
	Answered int                          // variants that answered (successes)
	InPeerMS float64                      // ms the initiating peer took (its latency_ms)
	Timings  map[string]api.VariantTiming // per answering variant
}

// Classifier sends classify requests: an *api.Client (one peer), or an
// *api.Pool or api.Entry (several peers, failing over when one cannot be
// reached).
type Classifier interface {
	Classify(ctx context.Context, img []byte, p api.Params) (*api.ClassifyResponse, error)
}

// Getter sends GET requests, as Classifier's implementations do.
type Getter interface {
	Get(ctx context.Context, path string) (int, []byte, error)
}

// SendClassify sends one image whose class name is label ("" if unknown)
// and records its outcome.
func SendClassify(ctx context.Context, c Classifier, img []byte, label string, p api.Params) Outcome {
	o := Outcome{Start: time.Now(), Label: label}
	resp, err := c.Classify(ctx, img, p)
	o.Latency = time.Since(o.Start)
	switch {
	case err != nil:
		o.ErrKind, o.ErrMsg = ErrorKind(err), err.Error()
	case resp.Status != http.StatusOK:
		o.Status = resp.Status
		o.ErrKind, o.ErrMsg = fmt.Sprintf("HTTP %d", resp.Status), resp.Err().Error()
	default:
		r := resp.Answer.Result
		o.Status = resp.Status
		o.Class, o.Answered = r.Class, len(r.Answered)
		o.InPeerMS, o.Timings = r.LatencyMS, r.Timings
	}
	return o
}

// SendHealthz sends one GET /healthz and records its outcome.
func SendHealthz(ctx context.Context, c Getter) Outcome {
	o := Outcome{Start: time.Now()}
	status, body, err := c.Get(ctx, "/healthz")
	o.Latency = time.Since(o.Start)
	switch {
	case err != nil:
		o.ErrKind, o.ErrMsg = ErrorKind(err), err.Error()
	case status != http.StatusOK:
		o.Status = status
		o.ErrKind, o.ErrMsg = fmt.Sprintf("HTTP %d", status), strings.TrimSpace(string(body))
	default:
		o.Status = status
	}
	return o
}

// ErrorKind names the kind of a failure to get an HTTP answer.
func ErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	}
	return "transport"
}
