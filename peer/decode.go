package peer

// Decoding a client's image is the one step whose cost the client chooses:
// a 38 KB PNG can declare 6300x6300 pixels, which take 160 MB and most of a
// second to decode. So the peer that receives the image decodes it once,
// resizes it to every resolution the family needs and sends each variant
// only that (a ResizedImage: 12 KB at 32x32), and the decoding is bounded:
// images over smallImagePixels take one of a few slots and share a memory
// budget, each waits for its turn only as long as its deadline allows, and
// the caller hears at the deadline even when a decode is still running.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varpar/varpar/nn"
)

// ErrBusy is wrapped by Classify when the peer cannot take the image now:
// the decode slots and memory are taken until the deadline.
var ErrBusy = errors.New("peer: busy")

// ErrDeadline is wrapped by Classify when the request cannot be answered
// before its deadline, and is refused early (or at the deadline) for it.
var ErrDeadline = errors.New("peer: deadline")

// smallImagePixels is the size under which an image decodes in a few
// milliseconds (1 MP: about 20 ms here, 4 MB decoded): such images do not
// wait for a slot behind large ones, so that a burst of huge images does not
// hold up ordinary ones; they have a budget of their own.
const smallImagePixels = 1 << 20

// smallImageBudget is the decoded bytes of small images in flight at once.
const smallImageBudget = 32 << 20

// initialPSPerPixel is the guess at decode-and-resize time before any is
// measured, in picoseconds a pixel: 20 ns (this machine took 17.6 to decode
// a 40 MP PNG, and 35 to decode a 16 MP one and resize it to 4 sizes).
const initialPSPerPixel = 20_000

// decoder decodes and resizes client images within budgets. The zero value
// is not usable; see newDecoder.
type decoder struct {
	maxPixels  int64 // per image, refused from the header over it
	big, small *budget
	// psPerPixel is a moving average of decode-and-resize time, in
	// picoseconds a pixel, for the early refusal of images that cannot be
	// decoded before their deadline.
	psPerPixel atomic.Int64
	// wg counts decodes; a decode outlives its request when the deadline
	// passes first (the memory stays counted until it ends).
	wg sync.WaitGroup
}

// newDecoder: images of up to maxPixels; large ones share slots (one per
// compute thread, since decoding is CPU-bound; threads 0: one per core) and
// 4*maxPixels decoded bytes, so that one 8-bit image of the largest size
// decodes at a time, or several smaller ones.
func newDecoder(maxPixels int64, threads int) *decoder {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	d := &decoder{maxPixels: maxPixels,
		big:   newBudget(4*maxPixels, threads),
		small: newBudget(smallImageBudget, 0)}
	d.psPerPixel.Store(initialPSPerPixel)
	return d
}

// wait returns once no decode is running.
func (d *decoder) wait() { d.wg.Wait() }

// prepare decodes the encoded image and resizes it to each resolution in
// res (nn's Resize: RGB on a [0, 255] scale, not normalised), within ctx's
// deadline. Errors: a bad image wraps ErrBadRequest; no room to decode
// before the deadline wraps ErrBusy; no time left wraps ErrDeadline.
func (d *decoder) prepare(ctx context.Context, data []byte, res []int) (map[int][]float32, error) {
	cfg, err := nn.DecodeImageConfig(bytes.NewReader(data), d.maxPixels)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	cost := px * bytesPerPixel(cfg.ColorModel, data)
	est := time.Duration(px * d.psPerPixel.Load() / 1000)
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Hour)
	}
	if left := time.Until(dl); est > left {
		return nil, fmt.Errorf("%w: a %dx%d image takes about %v to decode here, %v left",
			ErrDeadline, cfg.Width, cfg.Height, est.Round(time.Millisecond), max(0, left).Round(time.Millisecond))
	}
	b := d.big
	if px <= smallImagePixels {
		b = d.small
	}
	// Wait for room only as long as the decode can still finish in time.
	wctx, cancel := context.WithDeadline(ctx, dl.Add(-est))
	err = b.acquire(wctx, cost)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: passed while waiting to decode", ErrDeadline)
		}
		return nil, fmt.Errorf("%w: decoding other images (%s), no room for a %dx%d image before the deadline",
			ErrBusy, b, cfg.Width, cfg.Height)
	}

	type result struct {
		out map[int][]float32
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned decode never blocks
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer b.release(cost)
		start := time.Now()
		// The reader fails once ctx ends, which stops the decoder at its
		// next read: an abandoned decode frees its memory soon.
		img, err := nn.DecodeImage(ctxReader{ctx, bytes.NewReader(data)}, d.maxPixels)
		if err != nil {
			if ctx.Err() != nil {
				// Abandoned: what it took so far is a lower bound, and the
				// estimate must learn from it, or a peer whose decodes all
				// time out would never refuse them early.
				d.learn(time.Since(start), px, true)
				err = fmt.Errorf("%w: passed while decoding", ErrDeadline)
			} else {
				err = fmt.Errorf("%w: %w", ErrBadRequest, err)
			}
			done <- result{err: err}
			return
		}
		out := map[int][]float32{}
		for _, r := range res {
			if ctx.Err() != nil {
				done <- result{err: fmt.Errorf("%w: passed while resizing", ErrDeadline)}
				return
			}
			if out[r] == nil {
				out[r] = make([]float32, r*r*3)
				nn.ResizeImage(img, r, out[r])
			}
		}
		d.learn(time.Since(start), px, false)
		done <- result{out: out}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: passed while decoding a %dx%d image", ErrDeadline, cfg.Width, cfg.Height)
	}
}

// learn updates the decode-time estimate (only large images count) with a
// decode of px pixels that took took (at least took, when partial): a
// moving average, weight 1/4 for the newest.
func (d *decoder) learn(took time.Duration, px int64, partial bool) {
	if px <= smallImagePixels {
		// Fixed costs dominate a small image's time per pixel: a 45x37
		// PNG measured 180 ns a pixel, which would make every large image
		// look ten times slower than it is.
		return
	}
	ps := took.Nanoseconds() * 1000 / px
	old := d.psPerPixel.Load()
	if partial && ps <= old {
		return
	}
	d.psPerPixel.Store(old + (ps-old)/4)
}

// bytesPerPixel is what decoding takes in memory per pixel, by the colour
// model the header declares (JPEG's YCbCr counted as 4:4:4). A progressive
// JPEG also holds its DCT coefficients while it decodes, 4 bytes a pixel per
// component; it is recognised by its SOF2 marker anywhere in the file (it
// cannot occur in entropy-coded data; one in a thumbnail only overcounts).
func bytesPerPixel(m color.Model, data []byte) int64 {
	coeffs := int64(0)
	if bytes.HasPrefix(data, []byte{0xff, 0xd8}) && bytes.Contains(data, []byte{0xff, 0xc2}) {
		coeffs = 4
	}
	switch m {
	case color.GrayModel:
		return 1 + coeffs
	case color.Gray16Model:
		return 2
	case color.YCbCrModel:
		return 3 + 3*coeffs
	case color.CMYKModel:
		return 4 + 4*coeffs
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// ctxReader fails with ctx's error once ctx ends. It hands out at most
// ctxReadSize bytes a read, so that the decoder asks again often: a bomb's
// few KB inflate to megabytes of pixels, and the decoder notices the end of
// ctx only when it reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// ctxReadSize bounds a read: at PNG's best compression ratio (about 1000:1
// for a blank image) 256 bytes are 256 KB of pixels, a millisecond or so.
const ctxReadSize = 256

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) > ctxReadSize {
		p = p[:ctxReadSize]
	}
	return c.r.Read(p)
}

// budget is a counting semaphore over bytes, with at most slots holders at
// once (0: no limit). A request for more than the whole budget is let in
// alone, when nothing else holds any.
type budget struct {
	mu          sync.Mutex
	size, used  int64
	slots, held int
	freed       chan struct{} // closed and replaced at every release
}

func newBudget(size int64, slots int) *budget {
	return &budget{size: size, slots: slots, freed: make(chan struct{})}
}

// acquire takes n bytes and a slot, waiting until both are free or ctx ends.
func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		fits := b.used+n <= b.size || b.used == 0
		if fits && (b.slots == 0 || b.held < b.slots) {
			b.used += n
			b.held++
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back n bytes and a slot.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.held--
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// String describes what is in use, for error messages.
func (b *budget) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%d running, %d of %d MB taken", b.held, b.used>>20, b.size>>20)
}
