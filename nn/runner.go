package nn

import (
	"fmt"
	"image"
)

// Runner classifies single images with one model: the preprocessing that
// training and evaluation share, the forward pass, softmax and top-k. It reuses
// its buffers; not safe for concurrent use (make one per goroutine).
type Runner struct {
	m     *Model
	sess  *Session
	rs    Resizer
	in    []float32
	probs []float32
}

// NewRunner prepares a Runner for m; pool may be nil.
func (m *Model) NewRunner(pool *Pool) *Runner {
	return &Runner{
		m:     m,
		sess:  m.NewSession(1, pool),
		in:    make([]float32, m.InputSize()),
		probs: make([]float32, m.classes),
	}
}

// Model returns the model the runner runs.
func (r *Runner) Model() *Model { return r.m }

// Probs returns the class probabilities for img, owned by the runner and
// overwritten by the next call.
func (r *Runner) Probs(img image.Image) []float32 {
	s := &r.m.Spec
	r.rs.ToTensor(img, s.Resolution, s.Mean, s.Std, r.in)
	return r.ProbsTensor(r.in)
}

// ProbsTensor is Probs for an input already preprocessed (R*R*3 floats, NHWC).
func (r *Runner) ProbsTensor(in []float32) []float32 {
	Softmax(r.sess.Forward(in), r.probs)
	return r.probs
}

// TopK classifies img and writes its len(idx) most likely classes and their
// probabilities into idx and val, most likely first.
func (r *Runner) TopK(img image.Image, idx []int32, val []float32) {
	TopK(r.Probs(img), idx, val)
}

// TopKResized is TopK for an image already resized to the model's resolution
// (Resize's output, res*res*3 RGB values on a [0, 255] scale): it normalises
// a copy and gives exactly what TopK gives for the image Resize was given.
// A rgb of another length is a caller bug and panics.
func (r *Runner) TopKResized(rgb []float32, idx []int32, val []float32) {
	s := &r.m.Spec
	if len(rgb) != len(r.in) {
		panic(fmt.Sprintf("nn: Runner.TopKResized: %d values, the model takes %d", len(rgb), len(r.in)))
	}
	copy(r.in, rgb)
	Normalize(r.in, s.Mean, s.Std)
	TopK(r.ProbsTensor(r.in), idx, val)
}
