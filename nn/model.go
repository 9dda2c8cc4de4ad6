package nn

import (
	"fmt"
	"math"
	"sync"

	"github.com/varpar/varpar/nn/internal/kernels"
	"gorgonia.org/tensor"
)

// BatchNormEps is torch.nn.BatchNorm2d's default epsilon, which torchvision's
// mobilenet_v2 uses.
const BatchNormEps = 1e-5

// Model is a MobileNetV2 ready for inference: batch norm folded into the
// convolutions, weights packed for the kernels. A Model is immutable and safe
// for concurrent use; each goroutine runs it through its own Session.
type Model struct {
	Spec    Spec
	ops     []op
	maxAct  int // largest activation of one image, in floats
	maxCol  int // im2col buffer of one image, in floats
	last    int // channels into the classifier
	classes int
}

// op is one compiled layer.
type op struct {
	Layer
	pw   *kernels.PackedB // 1x1 convolutions, the stem (as im2col) and the classifier
	dw   []float32        // depthwise weights, packed
	bias []float32        // folded batch-norm shift (or the classifier's bias)
	act  kernels.Activation
}

// Weights are a model's named tensors, as a weights file holds them (package
// nn/format decodes safetensors files into this form); nn reads no files.
type Weights struct {
	// Names lists the tensors in file order; errors about unexpected tensors
	// name the first in this order.
	Names []string
	// Tensors holds each tensor as float32, with the shape stored in the file.
	Tensors map[string]*tensor.Dense
	// DTypes is each tensor's dtype as stored ("F32", "F16", "BF16", ...), so
	// that integer weights are refused.
	DTypes map[string]string
}

// NewModel checks weights against spec, folds batch norm and packs the weights.
// file names the weights in errors. Every tensor the spec wants must be present
// with the right shape; any other tensor is an error.
func NewModel(spec Spec, w Weights, file string) (*Model, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := checkTensors(spec, w, file); err != nil {
		return nil, err
	}
	get := func(name string) []float32 { return w.Tensors[name].Data().([]float32) }
	m := &Model{Spec: spec, classes: spec.NumClasses}
	for _, l := range spec.Layers() {
		o := op{Layer: l}
		act := l.Area() * l.Out
		if act > m.maxAct {
			m.maxAct = act
		}
		switch l.Kind {
		case LayerClassifier:
			// Linear: y = x W^T + b, W is [out][in]; B[k][j] = W[j][k].
			wt := get(l.Name + ".weight")
			b := make([]float32, l.In*l.Out)
			for j := 0; j < l.Out; j++ {
				for k := 0; k < l.In; k++ {
					b[k*l.Out+j] = wt[j*l.In+k]
				}
			}
			o.pw = kernels.PackB(l.In, l.Out, b)
			o.bias = append([]float32(nil), get(l.Name+".bias")...)
			m.last = l.In
			m.ops = append(m.ops, o)
			continue
		}
		scale, shift := foldBN(get(l.BN+".weight"), get(l.BN+".bias"), get(l.BN+".running_mean"), get(l.BN+".running_var"))
		o.bias = shift
		o.act = kernels.ActReLU6
		wt := get(l.Name + ".weight")
		switch l.Kind {
		case LayerStem:
			// im2col column k = (ky*3+kx)*3 + ci, matching an NHWC patch.
			b := make([]float32, 27*l.Out)
			for co := 0; co < l.Out; co++ {
				for ci := 0; ci < 3; ci++ {
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							b[((ky*3+kx)*3+ci)*l.Out+co] = float32(float64(wt[((co*3+ci)*3+ky)*3+kx]) * scale[co])
						}
					}
				}
			}
			o.pw = kernels.PackB(27, l.Out, b)
			if c := l.OutH * l.OutW * 27; c > m.maxCol {
				m.maxCol = c
			}
		case LayerDepthwise:
			f := make([]float32, l.Out*9)
			for c := 0; c < l.Out; c++ {
				for t := 0; t < 9; t++ {
					f[c*9+t] = float32(float64(wt[c*9+t]) * scale[c])
				}
			}
			o.dw = kernels.PackDepthwise(l.Out, f)
		default: // 1x1: weight [out][in][1][1]; B[k][j] = W[j][k].
			b := make([]float32, l.In*l.Out)
			for j := 0; j < l.Out; j++ {
				for k := 0; k < l.In; k++ {
					b[k*l.Out+j] = float32(float64(wt[j*l.In+k]) * scale[j])
				}
			}
			o.pw = kernels.PackB(l.In, l.Out, b)
			if l.Kind == LayerProject {
				o.act = kernels.ActNone
			}
		}
		m.ops = append(m.ops, o)
	}
	return m, nil
}

// Area is the number of output pixels of the layer.
func (l *Layer) Area() int { return l.OutH * l.OutW }

// foldBN turns batch norm (gamma, beta, mean, var) into a per-channel scale
// for the convolution weights and a shift that becomes the bias, in float64 so
// that folding adds no error beyond the final rounding.
func foldBN(gamma, beta, mean, variance []float32) (scale []float64, shift []float32) {
	scale = make([]float64, len(gamma))
	shift = make([]float32, len(gamma))
	for i := range gamma {
		s := float64(gamma[i]) / math.Sqrt(float64(variance[i])+BatchNormEps)
		scale[i] = s
		shift[i] = float32(float64(beta[i]) - float64(mean[i])*s)
	}
	return scale, shift
}

// checkTensors compares the file's tensors with what the spec wants.
func checkTensors(spec Spec, w Weights, file string) error {
	want := spec.Tensors()
	seen := make(map[string]bool, len(want))
	for _, t := range want {
		seen[t.Name] = true
		got, ok := w.Tensors[t.Name]
		if !ok {
			if t.Optional {
				continue
			}
			return &TensorError{File: file, Tensor: t.Name, Field: "missing", Want: fmt.Sprint(t.Shape)}
		}
		if t.Optional {
			continue // num_batches_tracked: any shape and dtype, unused
		}
		switch dt := w.DTypes[t.Name]; dt {
		case "F32", "F16", "BF16":
		default:
			return &TensorError{File: file, Tensor: t.Name, Field: "dtype", Found: dt, Want: "F32 (or F16, BF16)"}
		}
		if !SameShape(got.Shape(), t.Shape) {
			return &TensorError{File: file, Tensor: t.Name, Field: "shape", Found: fmt.Sprint([]int(got.Shape())), Want: fmt.Sprint(t.Shape)}
		}
		for _, v := range got.Data().([]float32) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return &TensorError{File: file, Tensor: t.Name, Field: "data", Found: "a non-finite value", Want: "finite values"}
			}
		}
	}
	for _, name := range w.Names {
		if !seen[name] {
			return &TensorError{File: file, Tensor: name, Field: "unexpected", Found: fmt.Sprint([]int(w.Tensors[name].Shape()))}
		}
	}
	return nil
}

// SameShape reports whether a stored tensor has the shape a spec wants; a
// scalar may be stored as shape [] or [1]. Checkpoint checks in nn/train use
// it too.
func SameShape(got tensor.Shape, want []int) bool {
	if len(want) == 0 { // a scalar may be stored as shape [] or [1]
		return got.TotalSize() == 1
	}
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// Classes reports the number of outputs.
func (m *Model) Classes() int { return m.classes }

// InputSize reports the number of floats of one input image (R*R*3).
func (m *Model) InputSize() int { return m.Spec.Resolution * m.Spec.Resolution * 3 }

// Session holds the buffers to run a Model on batches of a fixed size. It is
// not safe for concurrent use; after the first call, Forward allocates nothing.
type Session struct {
	m      *Model
	batch  int
	pool   *Pool
	x      [2][]float32 // block inputs and outputs, alternating
	e, d   []float32    // expanded and depthwise activations
	col    []float32    // stem im2col
	pooled []float32
	logits []float32
	out    *tensor.Dense

	// The layer being split across the pool (see runPart).
	cur      *op
	src, dst []float32
	res      []float32
	done     sync.WaitGroup
}

// NewSession prepares buffers for batches of batch images. pool may be nil
// (everything on the caller's goroutine).
func (m *Model) NewSession(batch int, pool *Pool) *Session {
	if batch < 1 {
		panic("nn: NewSession with batch < 1")
	}
	s := &Session{m: m, batch: batch, pool: pool}
	n := m.maxAct * batch
	s.x[0] = make([]float32, n)
	s.x[1] = make([]float32, n)
	s.e = make([]float32, n)
	s.d = make([]float32, n)
	s.col = make([]float32, m.maxCol*batch)
	s.pooled = make([]float32, m.last*batch)
	s.logits = make([]float32, m.classes*batch)
	s.out = tensor.New(tensor.WithShape(batch, m.classes), tensor.WithBacking(s.logits))
	return s
}

// Batch reports the batch size the session was made for.
func (s *Session) Batch() int { return s.batch }

// Run checks that in is a float32 tensor of shape [batch, R, R, 3] (NHWC) and
// returns the logits, shape [batch, classes]. The result is owned by the session
// and overwritten by the next call.
func (s *Session) Run(in *tensor.Dense) (*tensor.Dense, error) {
	r := s.m.Spec.Resolution
	if in.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("nn: input dtype %v, want float32", in.Dtype())
	}
	if !SameShape(in.Shape(), []int{s.batch, r, r, 3}) {
		return nil, fmt.Errorf("nn: input shape %v, want (%d, %d, %d, 3)", in.Shape(), s.batch, r, r)
	}
	s.Forward(in.Data().([]float32))
	return s.out, nil
}

// Forward runs the network on in (batch*R*R*3 floats, NHWC, normalised) and
// returns the logits (batch*classes floats), owned by the session.
func (s *Session) Forward(in []float32) []float32 {
	if len(in) < s.batch*s.m.InputSize() {
		panic("nn: Forward input too short")
	}
	cur, alt := s.x[0], s.x[1]
	var blockIn []float32
	for i := range s.m.ops {
		o := &s.m.ops[i]
		switch o.Kind {
		case LayerStem:
			s.layer(o, in, cur, nil)
		case LayerExpand:
			blockIn = cur
			s.layer(o, cur, s.e, nil)
		case LayerDepthwise:
			src := s.e
			if s.m.ops[i-1].Kind != LayerExpand { // t == 1: no expansion
				blockIn = cur
				src = cur
			}
			s.layer(o, src, s.d, nil)
		case LayerProject:
			var res []float32
			if o.Residual {
				res = blockIn
			}
			s.layer(o, s.d, alt, res)
			cur, alt = alt, cur
		case LayerLast:
			s.layer(o, cur, s.e, nil)
		case LayerClassifier:
			avgPool(s.e, s.batch, o.InH*o.InW, o.In, s.pooled)
			kernels.Gemm(s.batch, s.pooled, o.In, o.pw, o.bias, kernels.ActNone, nil, 0, s.logits, o.Out)
		}
	}
	return s.logits
}

// layer runs one convolution over the whole batch, split across the pool.
func (s *Session) layer(o *op, src, dst, res []float32) {
	s.cur, s.src, s.dst, s.res = o, src, dst, res
	macs := o.Area() * o.Out * s.batch
	switch o.Kind {
	case LayerDepthwise:
		macs *= 9
	case LayerStem:
		macs *= 27
	default:
		macs *= o.In
	}
	parts := 1
	if macs >= kernels.ParallelMACs {
		parts = s.pool.Threads()
	}
	s.pool.Run((*sessionTask)(s), parts, &s.done)
	s.cur, s.src, s.dst, s.res = nil, nil, nil, nil
}

// sessionTask runs a Session's current layer as a pool Task, without making
// runPart part of Session's API; the conversion does not allocate.
type sessionTask Session

func (t *sessionTask) RunPart(i, n int) { (*Session)(t).runPart(i, n) }

// runPart computes part i of n of the current layer. Parts split output rows
// (pixels for 1x1 convolutions, image rows for depthwise), so each writes a
// disjoint range of dst (and of col for the stem): race-free.
func (s *Session) runPart(i, n int) {
	o := s.cur
	switch o.Kind {
	case LayerDepthwise:
		// Units are (image, output row) pairs.
		units := s.batch * o.OutH
		u0, u1 := units*i/n, units*(i+1)/n
		inSize, outSize := o.InH*o.InW*o.In, o.OutH*o.OutW*o.Out
		for u := u0; u < u1; {
			img, row := u/o.OutH, u%o.OutH
			end := o.OutH
			if rem := u1 - u; row+rem < end {
				end = row + rem
			}
			kernels.Depthwise3x3(s.src[img*inSize:(img+1)*inSize], o.InH, o.InW, o.In, o.Stride, o.dw, o.bias, o.act,
				s.dst[img*outSize:(img+1)*outSize], row, end)
			u += end - row
		}
	default:
		rows := s.batch * o.Area()
		r0, r1 := kernels.SplitRows(rows, i, n)
		if r0 >= r1 {
			return
		}
		a, lda := s.src, o.In
		if o.Kind == LayerStem {
			im2col(s.src, o, s.col, r0, r1)
			a, lda = s.col, 27
		}
		var res []float32
		if s.res != nil {
			res = s.res[r0*o.Out:]
		}
		kernels.Gemm(r1-r0, a[r0*lda:], lda, o.pw, o.bias, o.act, res, o.Out, s.dst[r0*o.Out:], o.Out)
	}
}

// im2col writes rows [r0, r1) (over the batch) of the stem's 27-column patch
// matrix at their own place in col (row r at col[r*27:]); see StemCols.
func im2col(in []float32, o *op, col []float32, r0, r1 int) {
	StemCols(in, &o.Layer, col[r0*27:], r0, r1)
}

// avgPool averages each image's area pixels of c channels into out[img*c:].
func avgPool(in []float32, batch, area, c int, out []float32) {
	inv := 1 / float32(area)
	for img := 0; img < batch; img++ {
		o := out[img*c : (img+1)*c]
		for j := range o {
			o[j] = 0
		}
		for p := 0; p < area; p++ {
			px := in[(img*area+p)*c : (img*area+p+1)*c]
			for j, v := range px {
				o[j] += v
			}
		}
		for j := range o {
			o[j] *= inv
		}
	}
}

// StemCols writes rows [r0, r1) (over the batch) of the stem's 27-column
// patch matrix, row r at col[(r-r0)*27:]: column (ky*3+kx)*3+c of output
// pixel (oy, ox) is in[oy*s+ky-1][ox*s+kx-1][c], zero outside the image.
func StemCols(in []float32, l *Layer, col []float32, r0, r1 int) {
	h, w, s := l.InH, l.InW, l.Stride
	area := l.OutH * l.OutW
	for r := r0; r < r1; r++ {
		img, p := r/area, r%area
		oy, ox := p/l.OutW, p%l.OutW
		base := in[img*h*w*3 : (img+1)*h*w*3]
		dst := col[(r-r0)*27 : (r-r0)*27+27]
		for ky := 0; ky < 3; ky++ {
			y := oy*s + ky - 1
			for kx := 0; kx < 3; kx++ {
				x := ox*s + kx - 1
				d := dst[(ky*3+kx)*3 : (ky*3+kx)*3+3]
				if y < 0 || y >= h || x < 0 || x >= w {
					d[0], d[1], d[2] = 0, 0, 0
					continue
				}
				src := base[(y*w+x)*3 : (y*w+x)*3+3]
				d[0], d[1], d[2] = src[0], src[1], src[2]
			}
		}
	}
}
