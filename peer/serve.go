package peer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync/atomic"
	"time"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/p2pnet/pb"
)

// server runs one variant for whoever asks. Requests take turns on the
// variant's runner (its forward passes use the peer's compute pool) on their
// own goroutines, in arrival order: no hand-off to a worker, so an idle
// server starts computing at once. At most depth requests wait; when the
// wait cannot end before a request's deadline, it is answered BUSY at once
// instead, so the initiator can hedge elsewhere.
type server struct {
	id     string
	res    int // the variant's input resolution
	shaRaw []byte
	runner *nn.Runner
	depth  int64
	turn   chan struct{} // holds one token while a request computes
	done   chan struct{} // closed by stop
	idx    []int32       // top-k scratch, used by the turn holder
	val    []float32

	computeNS atomic.Int64 // moving average of one request's compute time
	queued    atomic.Int64 // requests waiting or running
}

func newServer(id string, sha []byte, m *nn.Model, pool *nn.Pool, depth int) *server {
	classes := m.Classes()
	s := &server{id: id, res: m.Spec.Resolution, shaRaw: sha, runner: m.NewRunner(pool), depth: int64(depth),
		turn: make(chan struct{}, 1), done: make(chan struct{}),
		idx: make([]int32, classes), val: make([]float32, classes)}
	// A first guess until requests are measured: 1 ms per 10M MACs.
	s.computeNS.Store(max(int64(200_000), m.Spec.MACs()/10))
	return s
}

// errBusy is returned by submit when the request cannot finish in time.
var errBusy = errors.New("busy")

// errStopped is returned by submit once the server is stopped.
var errStopped = errors.New("variant no longer served here")

// input is what a server computes on: an image resized to its resolution
// (nn's Resize), or an image of any size that it resizes itself.
type input struct {
	rgb []float32
	img image.Image
}

// submit waits for its turn, runs in through the variant and returns the
// top-k answer. It refuses at once when the expected wait (requests ahead
// times the average compute time) would pass the deadline, or when depth
// requests are already waiting.
func (s *server) submit(ctx context.Context, in input, k int) (*pb.InferAnswer, error) {
	ahead := s.queued.Add(1)
	defer s.queued.Add(-1)
	if ahead > s.depth+1 {
		return nil, errBusy
	}
	if dl, ok := ctx.Deadline(); ok && time.Now().Add(time.Duration(ahead*s.computeNS.Load())).After(dl) {
		return nil, errBusy
	}
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("deadline passed while queued: %w", ctx.Err())
	case <-s.done:
		return nil, errStopped
	}
	defer func() { <-s.turn }()
	select {
	case <-s.done: // the turn and stop were both ready
		return nil, errStopped
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("deadline passed while queued: %w", err)
	}
	start := time.Now()
	if in.rgb != nil {
		s.runner.TopKResized(in.rgb, s.idx[:k], s.val[:k])
	} else {
		s.runner.TopK(in.img, s.idx[:k], s.val[:k])
	}
	took := time.Since(start)
	// Exponential moving average, weight 1/8 for the newest.
	old := s.computeNS.Load()
	s.computeNS.Store(old + (took.Nanoseconds()-old)/8)
	return &pb.InferAnswer{
		VariantId:   s.id,
		ModelSha256: s.shaRaw,
		Indices:     append([]int32(nil), s.idx[:k]...),
		Probs:       append([]float32(nil), s.val[:k]...),
		ComputeUs:   uint64(took.Microseconds()),
	}, nil
}

// load reports the requests waiting or running.
func (s *server) load() int64 { return s.queued.Load() }

// stop refuses new work, fails the waiting requests and returns once the
// running one (if any) has finished; the runner is never used again.
func (s *server) stop() {
	close(s.done)
	s.turn <- struct{}{}
}

// decodeRaw turns a request's raw image into an image, within the budget.
func decodeRaw(req *pb.InferRequest, maxPixels int64) (image.Image, error) {
	raw := req.GetRaw()
	if raw == nil {
		return nil, errors.New("no input")
	}
	if err := pb.ValidateRawImage(raw); err != nil {
		return nil, err
	}
	w, h := int(raw.Width), int(raw.Height)
	if int64(w)*int64(h) > maxPixels {
		return nil, fmt.Errorf("%dx%d raw image: %w", w, h, nn.ErrPixelBudget)
	}
	switch raw.Channels {
	case 1:
		return &image.Gray{Pix: raw.Pixels, Stride: w, Rect: image.Rect(0, 0, w, h)}, nil
	case 3:
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for p := 0; p < w*h; p++ {
			copy(img.Pix[p*4:p*4+3], raw.Pixels[p*3:p*3+3])
			img.Pix[p*4+3] = 255
		}
		return img, nil
	case 4:
		return &image.NRGBA{Pix: raw.Pixels, Stride: w * 4, Rect: image.Rect(0, 0, w, h)}, nil
	}
	return nil, fmt.Errorf("raw image with %d channels, want 1, 3 or 4", raw.Channels)
}
