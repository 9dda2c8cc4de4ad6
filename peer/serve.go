package peer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/p2pnet/pb"
)

// server runs one variant for whoever asks: a bounded queue in front of one
// worker (the worker's forward passes use the peer's compute pool). When the
// queue cannot finish a request before its deadline, the request is answered
// BUSY at once instead of queueing, so the initiator can hedge elsewhere.
type server struct {
	id     string
	index  int // variant index in the family
	sha    string
	shaRaw []byte
	runner *nn.Runner
	queue  chan *job
	done   chan struct{}
	wg     sync.WaitGroup

	computeNS atomic.Int64 // moving average of one request's compute time
	queued    atomic.Int64 // requests waiting or running
	served    atomic.Int64
}

type job struct {
	ctx   context.Context
	img   image.Image
	k     int
	reply chan *pb.InferAnswer
}

func newServer(id string, index int, sha string, m *nn.Model, pool *nn.Pool, depth int) *server {
	raw, _ := hex.DecodeString(sha)
	s := &server{id: id, index: index, sha: sha, shaRaw: raw, runner: m.NewRunner(pool),
		queue: make(chan *job, depth), done: make(chan struct{})}
	// A first guess until requests are measured: 1 ms per 10M MACs.
	s.computeNS.Store(max(int64(200_000), m.Spec.MACs()/10))
	s.wg.Add(1)
	go s.work()
	return s
}

func (s *server) work() {
	defer s.wg.Done()
	classes := s.runner.Model().Classes()
	idx := make([]int32, classes)
	val := make([]float32, classes)
	for {
		select {
		case <-s.done:
			return
		case j := <-s.queue:
			if j.ctx.Err() != nil {
				s.queued.Add(-1)
				j.reply <- &pb.InferAnswer{VariantId: s.id, Error: pb.ErrorCode_DEADLINE, Message: "deadline passed while queued"}
				continue
			}
			start := time.Now()
			s.runner.TopK(j.img, idx[:j.k], val[:j.k])
			took := time.Since(start)
			// Exponential moving average, weight 1/8 for the newest.
			old := s.computeNS.Load()
			s.computeNS.Store(old + (took.Nanoseconds()-old)/8)
			s.queued.Add(-1)
			s.served.Add(1)
			j.reply <- &pb.InferAnswer{
				VariantId:   s.id,
				ModelSha256: s.shaRaw,
				Indices:     append([]int32(nil), idx[:j.k]...),
				Probs:       append([]float32(nil), val[:j.k]...),
				ComputeUs:   uint64(took.Microseconds()),
			}
		}
	}
}

// errBusy is returned by submit when the request cannot finish in time.
var errBusy = errors.New("busy")

// submit queues img and waits for the answer. It refuses at once when the
// expected wait (requests ahead times the average compute time) would pass the
// deadline, or when the queue is full.
func (s *server) submit(ctx context.Context, img image.Image, k int) (*pb.InferAnswer, error) {
	if dl, ok := ctx.Deadline(); ok {
		ahead := s.queued.Load() + 1
		if time.Now().Add(time.Duration(ahead * s.computeNS.Load())).After(dl) {
			return nil, errBusy
		}
	}
	j := &job{ctx: ctx, img: img, k: k, reply: make(chan *pb.InferAnswer, 1)}
	s.queued.Add(1)
	select {
	case s.queue <- j:
	default:
		s.queued.Add(-1)
		return nil, errBusy
	}
	select {
	case a := <-j.reply:
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err() // the worker will drop or finish it; reply is buffered
	}
}

// load reports the requests waiting or running.
func (s *server) load() int64 { return s.queued.Load() }

// stop ends the worker; queued requests are answered by their contexts.
func (s *server) stop() {
	close(s.done)
	s.wg.Wait()
}

// decodeInput turns a request's input into an image, within the budgets.
func decodeInput(req *pb.InferRequest, maxPixels int64) (image.Image, error) {
	if enc := req.GetEncodedImage(); enc != nil {
		return nn.DecodeImage(bytes.NewReader(enc), maxPixels)
	}
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
