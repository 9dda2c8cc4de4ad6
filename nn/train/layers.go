package train

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/internal/kernels"
)

// One model of a Trainer: its parameters, what the forward pass keeps for the
// backward pass, and the phases both passes are made of.
//
// # What is kept
//
// For every convolution the forward pass stores its pre-BN output z; the
// backward pass needs it for the batch-norm gradient and recomputes the ReLU6
// mask from it. The post-BN output y is stored only for block outputs (the
// stem and every projection: the residual stream, small); the wide expand and
// depthwise outputs are recomputed from z, chunk by chunk, when the next
// layer's weight gradient needs them. That halves the activation memory and,
// since the recomputation reads z while it is in cache for the batch-norm
// reduction anyway, costs little.
//
// # Phases
//
// Each pass is a sequence of phases, one per layer, each split across the
// pool. Between two phases the trainer combines the parts' partial sums
// (batch statistics, weight gradients) in part order, so the result depends on
// the thread count but not on scheduling. A phase walks its share of the
// batch in chunks (rows for 1x1 convolutions, images for depthwise ones)
// and does all it can with a chunk while it is in cache:
//
//	forward,  layer L:  y(L-1) = act(BN(z(L-1)))  ->  z(L) = conv(y(L-1))  ->  sum z, z^2
//	backward, layer L:  dz(L) from dy(L), z(L)  ->  dW(L) += dz·y(L-1)
//	                    ->  dy(L-1) = dz·W (+ residual)  ->  sum g, g·z of layer L-1
//
// so every activation is read about twice per pass and dz never goes to
// memory. Depthwise phases go through an image in bands of output rows, so
// that a band's input, output and gradients stay in L1/L2 too.
//
// Tensors much larger than the caches that a phase writes for a later phase
// (z for the backward pass, large output gradients for the next phase) are
// computed into scratch, summed there, and copied out with non-temporal
// stores, which spares DRAM the read of every line a plain store would fetch
// first; memory bandwidth, not arithmetic, is what limits the elementwise
// work and the scaling to a second core.

// Gradient buffers: which holds the gradient of a layer's output.
const (
	gradX = iota // block outputs (stem, projections): the residual stream
	gradD        // depthwise outputs and the last convolution
	gradE        // expand outputs
)

// trainChunkFloats bounds one chunk of a row-split phase, rows × (in + out)
// channels, so that its input, output and gradient stay in L2 while the
// phase works on them.
const trainChunkFloats = 32 << 10

// Tensors at least this large are written with non-temporal stores: ntZBytes
// for pre-BN outputs, which the whole rest of the forward pass evicts from
// cache before the backward pass reads them; ntGBytes for output gradients,
// which the very next phase reads and which may still be in L3 if they are
// small. (Variables so that tests can send every layer down that path.)
var (
	ntZBytes = 2 << 20
	ntGBytes = 16 << 20
)

// bnMomentum is torch.nn.BatchNorm2d's default running-statistics momentum.
const bnMomentum = 0.1

// tconv is one convolution with its batch norm.
type tconv struct {
	nn.Layer
	act kernels.Activation // after batch norm: ReLU6, or none for projections

	// Parameters, their gradients (views into tnet.params and tnet.grads)
	// and running statistics (views into tnet.stats). w is in PyTorch
	// layout: [out][3][3][3] (stem), [c][9] (depthwise), [out][in] (1x1).
	w, dw                      []float32
	gamma, beta, dgamma, dbeta []float32
	rmean, rvar                []float32

	// The weights as the kernels read them, refreshed after every update:
	// fwd is W^T (K = in or 27, N = out) for the forward kernels.Gemm, bwd is W
	// (K = out, N = in or 27) for the input gradient; dwp is the depthwise
	// packing.
	fwd, bwd *kernels.PackedB
	dwp      []float32

	z []float32 // pre-BN output of the last forward pass
	y []float32 // post-BN output, kept for block outputs only (else nil)

	res    int  // projection with a residual: the conv whose y is added; else -1
	addRes bool // first conv of a residual block: its input gradient adds the block's output gradient
	grad   int  // gradX, gradD or gradE
	chunk  int  // rows per chunk in row-split phases

	// Batch norm of the current pass: mean and invstd of the batch (train)
	// and y = act(z*scale + shift); the backward coefficients
	// dz = ga*g + gb*z + gc.
	mean, invstd []float64
	scale, shift []float32
	ga, gb, gc   []float32

	swapATB      bool // weight-gradient partials are W (out×in), not W^T: see weightGradPart
	weightFloats int  // elements of w

	// Large tensors are computed into cached scratch, summed there, and
	// written out with non-temporal stores (see kernels.NTCopy): ntZ for z, which
	// is read back only by the backward pass, ntG for the gradient of the
	// output, read back by the next phase.
	ntZ, ntG bool
}

// tparam is one named tensor of a model, as in torchvision's state_dict.
type tparam struct {
	name  string
	shape []int
	off   int  // offset in params (and grads, mom), or in stats
	n     int  // elements
	stat  bool // running statistic (stats), not a learnable parameter
	decay bool // weight decay applies (conv and linear weights)
}

// tnet is one model of a Trainer.
type tnet struct {
	spec    nn.Spec
	convs   []tconv
	classes int
	last    int // channels into the classifier

	clsW, clsB, clsDW, clsDB []float32
	clsFwd, clsBwd           *kernels.PackedB

	params, grads, mom []float32 // learnable parameters: decayed ones first
	nDecay             int       // params[:nDecay] are conv and linear weights
	stats              []float32 // running means and variances
	tensors            []tparam  // in Spec.Tensors() order (num_batches_tracked left out)

	grad [3][]float32 // see gradX, gradD, gradE

	in                     []float32 // the current batch, during a step only
	pooled, dropped, mask  []float32 // batch × last
	logits, probs, dlogits []float32 // batch × classes
	dpooled                []float32 // batch × last
	dinput                 []float32 // input gradient, only when asked for (tests)
}

// newTnet lays out the parameters and buffers of spec for batches of up to
// batch images and initialises the weights as torchvision does, from rng.
func newTnet(spec nn.Spec, batch int, rng *rand.Rand) *tnet {
	n := &tnet{spec: spec, classes: spec.NumClasses}
	layers := spec.Layers()

	// Parameter layout: every weight, then every batch-norm parameter and the
	// classifier bias; the update applies weight decay to params[:nDecay].
	var nw, nb, ns int
	for _, l := range layers {
		switch l.Kind {
		case nn.LayerClassifier:
			nw += l.In * l.Out
			nb += l.Out
		default:
			nw += convWeightFloats(&l)
			nb += 2 * l.Out
			ns += 2 * l.Out
		}
	}
	n.params = make([]float32, nw+nb)
	n.grads = make([]float32, nw+nb)
	n.mom = make([]float32, nw+nb)
	n.nDecay = nw
	n.stats = make([]float32, ns)
	byName := map[string]tparam{}
	wOff, bOff, sOff := 0, nw, 0
	param := func(name string, shape []int, decay bool) (p, g []float32) {
		sz := 1
		for _, d := range shape {
			sz *= d
		}
		off := &bOff
		if decay {
			off = &wOff
		}
		byName[name] = tparam{name: name, shape: shape, off: *off, n: sz, decay: decay}
		p, g = n.params[*off:*off+sz:*off+sz], n.grads[*off:*off+sz:*off+sz]
		*off += sz
		return p, g
	}
	stat := func(name string, c int) []float32 {
		byName[name] = tparam{name: name, shape: []int{c}, off: sOff, n: c, stat: true}
		s := n.stats[sOff : sOff+c : sOff+c]
		sOff += c
		return s
	}

	var sizes [3]int
	for _, l := range layers {
		if l.Kind == nn.LayerClassifier {
			n.last = l.In
			n.clsW, n.clsDW = param(l.Name+".weight", []int{l.Out, l.In}, true)
			n.clsB, n.clsDB = param(l.Name+".bias", []int{l.Out}, false)
			n.clsFwd = kernels.PackB(l.In, l.Out, make([]float32, l.In*l.Out))
			n.clsBwd = kernels.PackB(l.Out, l.In, make([]float32, l.In*l.Out))
			continue
		}
		c := tconv{Layer: l, act: kernels.ActReLU6, res: -1}
		var shape []int
		switch l.Kind {
		case nn.LayerStem:
			shape = []int{l.Out, 3, 3, 3}
			c.fwd = kernels.PackB(27, l.Out, make([]float32, 27*l.Out))
			c.bwd = kernels.PackB(l.Out, 27, make([]float32, 27*l.Out))
			c.grad = gradX
		case nn.LayerDepthwise:
			shape = []int{l.Out, 1, 3, 3}
			c.dwp = make([]float32, 9*kernels.PadChannels(l.Out))
			c.grad = gradD
		default:
			shape = []int{l.Out, l.In, 1, 1}
			c.fwd = kernels.PackB(l.In, l.Out, make([]float32, l.In*l.Out))
			c.bwd = kernels.PackB(l.Out, l.In, make([]float32, l.In*l.Out))
			switch l.Kind {
			case nn.LayerExpand:
				c.grad = gradE
			case nn.LayerProject:
				c.act = kernels.ActNone
				c.grad = gradX
			default:
				c.grad = gradD
			}
		}
		c.weightFloats = convWeightFloats(&l)
		c.w, c.dw = param(l.Name+".weight", shape, true)
		c.gamma, c.dgamma = param(l.BN+".weight", []int{l.Out}, false)
		c.beta, c.dbeta = param(l.BN+".bias", []int{l.Out}, false)
		c.rmean = stat(l.BN+".running_mean", l.Out)
		c.rvar = stat(l.BN+".running_var", l.Out)

		rows := batch * l.Area()
		c.z = make([]float32, rows*l.Out)
		if l.Kind == nn.LayerStem || l.Kind == nn.LayerProject {
			c.y = make([]float32, rows*l.Out)
		}
		sizes[c.grad] = max(sizes[c.grad], rows*l.Out)
		c.chunk = chunkRows(l.In, l.Out)
		if l.Kind == nn.LayerStem {
			c.chunk = chunkRows(27, l.Out)
		}
		c.swapATB = l.In > l.Out
		c.ntZ = rows*l.Out*4 >= ntZBytes
		c.ntG = rows*l.Out*4 >= ntGBytes
		c.mean, c.invstd = make([]float64, l.Out), make([]float64, l.Out)
		c.scale, c.shift = make([]float32, l.Out), make([]float32, l.Out)
		c.ga, c.gb, c.gc = make([]float32, l.Out), make([]float32, l.Out), make([]float32, l.Out)
		n.convs = append(n.convs, c)
	}
	for i := range sizes {
		n.grad[i] = make([]float32, sizes[i])
	}

	// Residual wiring: a residual projection adds the input of its block,
	// the output of the conv before the block's first conv.
	for j := range n.convs {
		c := &n.convs[j]
		if c.Kind != nn.LayerProject || !c.Residual {
			continue
		}
		f := j
		for f > 0 && n.convs[f-1].Block == c.Block {
			f--
		}
		c.res = f - 1
		n.convs[f].addRes = true
	}

	n.pooled = make([]float32, batch*n.last)
	n.dropped = make([]float32, batch*n.last)
	n.mask = make([]float32, batch*n.last)
	n.dpooled = make([]float32, batch*n.last)
	n.logits = make([]float32, batch*n.classes)
	n.probs = make([]float32, batch*n.classes)
	n.dlogits = make([]float32, batch*n.classes)

	for _, t := range spec.Tensors() {
		if t.Optional {
			continue
		}
		n.tensors = append(n.tensors, byName[t.Name])
	}
	n.init(rng)
	return n
}

func convWeightFloats(l *nn.Layer) int {
	switch l.Kind {
	case nn.LayerStem:
		return 27 * l.Out
	case nn.LayerDepthwise:
		return 9 * l.Out
	default:
		return l.In * l.Out
	}
}

// chunkRows is the chunk of a row-split phase for a layer of in and out
// channels: a multiple of 16 rows (the kernels.Gemm row tile), at least 32.
func chunkRows(in, out int) int {
	r := trainChunkFloats / (in + out)
	return max(32, r&^15)
}

// init sets the weights as torchvision's mobilenet_v2 does: convolutions
// kaiming_normal_(mode="fan_out") (std sqrt(2/fan_out), fan_out = out
// channels × kernel area; C×9 for a depthwise [C,1,3,3]), batch norm weight 1
// and bias 0, running mean 0 and variance 1, the linear layer normal(0, 0.01)
// with bias 0. Tensors are filled in state_dict order.
func (n *tnet) init(rng *rand.Rand) {
	for _, t := range n.tensors {
		var data []float32
		if t.stat {
			data = n.stats[t.off : t.off+t.n]
		} else {
			data = n.params[t.off : t.off+t.n]
		}
		switch {
		case strings.HasSuffix(t.name, ".running_var"):
			fillFloats(data, 1)
		case t.decay && len(t.shape) == 4:
			fanOut := t.shape[0] * t.shape[2] * t.shape[3]
			std := math.Sqrt(2 / float64(fanOut))
			for i := range data {
				data[i] = float32(rng.NormFloat64() * std)
			}
		case t.decay: // the linear layer
			for i := range data {
				data[i] = float32(rng.NormFloat64() * 0.01)
			}
		case strings.HasSuffix(t.name, ".weight"): // batch-norm gamma
			fillFloats(data, 1)
		default:
			fillFloats(data, 0)
		}
	}
}

func fillFloats(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// scratchNeeds reports how much per-part scratch the phases of n need at
// batch images: floats for the three buffers a (layer inputs, im2col, repack
// transposes), b (dz) and c (depthwise input gradients, im2col gradients),
// float64 per-channel sums, and floats of one weight-gradient partial.
func (n *tnet) scratchNeeds() (a, b, c, ch, w int) {
	for i := range n.convs {
		l := &n.convs[i]
		in := l.InH * l.InW * l.In
		out := l.Area() * l.Out
		switch l.Kind {
		case nn.LayerStem:
			a = max(a, l.chunk*27, 2*l.weightFloats) // repack: W^T and W
			b = max(b, l.chunk*l.Out)
			c = max(c, l.chunk*27)
		case nn.LayerDepthwise:
			a = max(a, in)
			b = max(b, out)
			c = max(c, in)
		default:
			a = max(a, l.chunk*l.In)
			b = max(b, l.chunk*l.Out)
			c = max(c, l.chunk*l.In)
		}
		if l.Kind == nn.LayerLast {
			a = max(a, out)
		}
		a = max(a, l.weightFloats)
		ch = max(ch, l.Out, l.In)
		w = max(w, l.weightFloats)
	}
	a = max(a, len(n.clsW))
	ch = max(ch, n.last)
	return a, b, c, ch, w
}

// tscratch is the private scratch of one part of a phase.
type tscratch struct {
	a, b, c []float32
	s, q    []float64 // per-channel partial sums
	dw      []float32 // weight-gradient partial
}

// phase names the step of a pass that the pool is running.
type phase uint8

const (
	phStemFwd  phase = iota // stem conv and its batch statistics
	phFwd                   // BN of layer L-1, conv L, statistics of L
	phPool                  // BN of the last conv, global average pool
	phPoolBack              // pool gradient, batch-norm reduction of the last conv
	phBwd                   // BN gradient of L, weight and input gradients of L, reduction of L-1
	phStemBwd               // BN gradient and weight gradient of the stem
	phSGD                   // parameter update
	phRepack                // pack the updated weights for the kernels
)

// runPhase runs phase ph for layer L of t.net across the pool and then
// combines its parts' sums.
func (t *Trainer) runPhase(ph phase, L int) {
	n := t.net
	t.ph, t.li = ph, L
	parts := t.threads
	switch ph {
	case phStemFwd, phFwd, phStemBwd, phBwd:
		l := &n.convs[L]
		macs := t.batch * l.Area() * l.Out
		switch l.Kind {
		case nn.LayerStem:
			macs *= 27
		case nn.LayerDepthwise:
			macs *= 9
		default:
			macs *= l.In
		}
		if macs < kernels.ParallelMACs || t.inputGrad && ph == phStemBwd {
			parts = 1 // the input gradient's col2im overlaps between rows
		}
		if l.Kind == nn.LayerDepthwise {
			parts = min(parts, t.batch)
		}
	case phPool, phPoolBack:
		l := &n.convs[L]
		if t.batch*l.Area()*l.Out < kernels.ParallelMACs/8 {
			parts = 1
		}
		parts = min(parts, t.batch)
	case phSGD:
		if len(n.params) < kernels.ParallelMACs/4 {
			parts = 1
		}
	}
	t.parts = parts
	t.pool.Run((*trainerTask)(t), parts, &t.done)

	switch ph {
	case phStemFwd, phFwd:
		if t.train {
			t.finishStats(&n.convs[L])
		}
	case phPoolBack:
		t.finishBack(&n.convs[L])
	case phBwd:
		t.finishWeightGrad(&n.convs[L])
		t.finishBack(&n.convs[L-1])
	case phStemBwd:
		t.finishWeightGrad(&n.convs[L])
	}
}

// trainerTask runs the current phase as a pool Task, without making runPart
// part of Trainer's API; the conversion does not allocate.
type trainerTask Trainer

func (t *trainerTask) RunPart(i, n int) { (*Trainer)(t).runPart(i, n) }

// runPart computes part i of n of the current phase. Parts split the rows
// (or images) of the batch and write disjoint ranges of every activation and
// gradient buffer, their own scratch and their own partial sums: race-free.
func (t *Trainer) runPart(i, n int) {
	switch t.ph {
	case phStemFwd:
		t.stemFwd(i, n)
	case phFwd:
		if t.net.convs[t.li].Kind == nn.LayerDepthwise {
			t.dwFwd(i, n)
		} else {
			t.pointFwd(i, n)
		}
	case phPool:
		t.poolFwd(i, n)
	case phPoolBack:
		t.poolBack(i, n)
	case phBwd:
		if t.net.convs[t.li].Kind == nn.LayerDepthwise {
			t.dwBwd(i, n)
		} else {
			t.pointBwd(i, n)
		}
	case phStemBwd:
		t.stemBwd(i, n)
	case phSGD:
		t.sgdPart(i, n)
	case phRepack:
		t.repackPart(i, n)
	}
}

// imageRange is part i of n of the batch's images.
func (t *Trainer) imageRange(i, n int) (int, int) {
	return t.batch * i / n, t.batch * (i + 1) / n
}

// applyRows computes y = act(BN(z)) of conv p for its output rows [r0, r1):
// into p.y if p keeps its output (adding the residual), else into scr. It
// returns the rows of y.
func (t *Trainer) applyRows(p *tconv, r0, r1 int, scr []float32) []float32 {
	c := p.Out
	z := p.z[r0*c : r1*c]
	var y, res []float32
	if p.y != nil {
		y = p.y[r0*c : r1*c]
	} else {
		y = scr[:(r1-r0)*c]
	}
	if p.res >= 0 {
		res = t.net.convs[p.res].y[r0*c : r1*c]
	}
	kernels.BNApply(z, y, c, p.scale, p.shift, p.act == kernels.ActReLU6, res)
	return y
}

// inputRows returns the rows [r0, r1) of conv p's output as the backward pass
// needs them: stored, or recomputed into scr.
func (t *Trainer) inputRows(p *tconv, r0, r1 int, scr []float32) []float32 {
	if p.y != nil {
		return p.y[r0*p.Out : r1*p.Out]
	}
	return t.applyRows(p, r0, r1, scr)
}

func (t *Trainer) clearSums(sc *tscratch, c int) {
	if t.train {
		clear(sc.s[:c])
		clear(sc.q[:c])
	}
}

func (t *Trainer) stemFwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l := &net.convs[0]
	t.clearSums(sc, l.Out)
	r0, r1 := kernels.SplitRows(t.batch*l.Area(), i, n)
	for c0 := r0; c0 < r1; c0 += l.chunk {
		c1 := min(c0+l.chunk, r1)
		col := sc.a[:(c1-c0)*27]
		nn.StemCols(net.in, &l.Layer, col, c0, c1)
		z := t.zRows(l, sc, c0, c1)
		kernels.Gemm(c1-c0, col, 27, l.fwd, nil, kernels.ActNone, nil, 0, z, l.Out)
		t.zDone(l, sc, z, c0, c1)
	}
}

// zRows returns where conv l's rows [r0, r1) of z are to be computed: in z,
// or in scratch if z is written out with non-temporal stores.
func (t *Trainer) zRows(l *tconv, sc *tscratch, r0, r1 int) []float32 {
	if l.ntZ {
		return sc.b[:(r1-r0)*l.Out]
	}
	return l.z[r0*l.Out : r1*l.Out]
}

// zDone adds the rows just computed to the batch statistics and, if they
// are in scratch, writes them to z.
func (t *Trainer) zDone(l *tconv, sc *tscratch, z []float32, r0, r1 int) {
	if t.train {
		kernels.BNStats(z, l.Out, sc.s, sc.q)
	}
	if l.ntZ {
		kernels.NTCopy(l.z[r0*l.Out:r1*l.Out], z)
	}
}

func (t *Trainer) pointFwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l, p := &net.convs[t.li], &net.convs[t.li-1]
	t.clearSums(sc, l.Out)
	r0, r1 := kernels.SplitRows(t.batch*l.Area(), i, n)
	for c0 := r0; c0 < r1; c0 += l.chunk {
		c1 := min(c0+l.chunk, r1)
		x := t.applyRows(p, c0, c1, sc.a)
		z := t.zRows(l, sc, c0, c1)
		kernels.Gemm(c1-c0, x, l.In, l.fwd, nil, kernels.ActNone, nil, 0, z, l.Out)
		t.zDone(l, sc, z, c0, c1)
	}
}

// dwBand is the number of output rows of a depthwise layer of w pixels and c
// channels that a phase handles at a time: about 64 KB of output.
func dwBand(w, c int) int { return max(1, (16<<10)/(w*c)) }

// dwFwd runs the depthwise conv of its images band by band: the input rows a
// band needs (act(BN) of the previous layer, recomputed into an image-sized
// scratch, or stored) are filled in as the bands advance, each computed once,
// and each band's output is summed for the batch statistics while in cache.
func (t *Trainer) dwFwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l, p := &net.convs[t.li], &net.convs[t.li-1]
	t.clearSums(sc, l.Out)
	inRows, inSz, outSz := l.InH*l.InW, l.InH*l.InW*l.In, l.Area()*l.Out
	rowSz := l.OutW * l.Out
	band := dwBand(l.OutW, l.Out)
	b0, b1 := t.imageRange(i, n)
	for b := b0; b < b1; b++ {
		x := sc.a[:inSz]
		if p.y != nil {
			x = p.y[b*inSz : (b+1)*inSz]
		}
		zimg := l.z[b*outSz : (b+1)*outSz]
		z := zimg
		if l.ntZ {
			z = sc.b[:outSz]
		}
		filled := 0 // input rows ready
		for oy0 := 0; oy0 < l.OutH; oy0 += band {
			oy1 := min(oy0+band, l.OutH)
			if need := min(l.InH, (oy1-1)*l.Stride+2); need > filled {
				t.applyRows(p, b*inRows+filled*l.InW, b*inRows+need*l.InW, sc.a[filled*l.InW*l.In:])
				filled = need
			}
			kernels.Depthwise3x3(x, l.InH, l.InW, l.In, l.Stride, l.dwp, nil, kernels.ActNone, z, oy0, oy1)
			if t.train {
				kernels.BNStats(z[oy0*rowSz:oy1*rowSz], l.Out, sc.s, sc.q)
			}
			if l.ntZ {
				kernels.NTCopy(zimg[oy0*rowSz:oy1*rowSz], z[oy0*rowSz:oy1*rowSz])
			}
		}
	}
}

// poolFwd applies the last conv's batch norm and averages each image.
func (t *Trainer) poolFwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l := &net.convs[t.li]
	area, c := l.Area(), l.Out
	b0, b1 := t.imageRange(i, n)
	for b := b0; b < b1; b++ {
		y := t.applyRows(l, b*area, (b+1)*area, sc.a)
		s := sc.s[:c]
		clear(s)
		for p := 0; p < area; p++ {
			row := y[p*c : (p+1)*c]
			for j, v := range row {
				s[j] += float64(v)
			}
		}
		out := net.pooled[b*c : (b+1)*c]
		for j := range out {
			out[j] = float32(s[j] / float64(area))
		}
	}
}

// poolBack spreads the pooled gradient over the last conv's pixels and starts
// that conv's batch-norm reduction.
func (t *Trainer) poolBack(i, n int) {
	net, sc := t.net, &t.scr[i]
	l := &net.convs[t.li]
	area, c := l.Area(), l.Out
	clear(sc.s[:c])
	clear(sc.q[:c])
	dy := net.grad[l.grad]
	inv := 1 / float32(area)
	b0, b1 := t.imageRange(i, n)
	for b := b0; b < b1; b++ {
		g := net.dpooled[b*c : (b+1)*c]
		img := dy[b*area*c : (b+1)*area*c]
		for p := 0; p < area; p++ {
			row := img[p*c : (p+1)*c]
			for j, v := range g {
				row[j] = v * inv
			}
		}
		kernels.BNBackReduce(img, l.z[b*area*c:(b+1)*area*c], c, l.scale, l.shift, l.act == kernels.ActReLU6, sc.s, sc.q)
	}
}

// weightGradPart is how a part accumulates the weight gradient of a 1x1
// conv from rows of its input x (in channels) and dz (out channels). kernels.GemmATB
// vectorises over its n; the wider of in and out is made n: dw is [in][out]
// (W^T) unless l.swapATB, then [out][in] (W itself).
func weightGradPart(l *tconv, m int, x, dz, dw []float32) {
	if l.swapATB {
		kernels.GemmATB(m, l.Out, l.In, dz, l.Out, x, l.In, dw)
	} else {
		kernels.GemmATB(m, l.In, l.Out, x, l.In, dz, l.Out, dw)
	}
}

func (t *Trainer) pointBwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l, p := &net.convs[t.li], &net.convs[t.li-1]
	clear(sc.s[:p.Out])
	clear(sc.q[:p.Out])
	clear(sc.dw[:l.weightFloats])
	dy, dx := net.grad[l.grad], net.grad[p.grad]
	relu, prelu := l.act == kernels.ActReLU6, p.act == kernels.ActReLU6
	r0, r1 := kernels.SplitRows(t.batch*l.Area(), i, n)
	for c0 := r0; c0 < r1; c0 += l.chunk {
		c1 := min(c0+l.chunk, r1)
		m := c1 - c0
		dz := sc.b[:m*l.Out]
		kernels.BNBackApply(dy[c0*l.Out:c1*l.Out], l.z[c0*l.Out:c1*l.Out], dz, l.Out, l.scale, l.shift, relu, l.ga, l.gb, l.gc)
		x := t.inputRows(p, c0, c1, sc.a)
		weightGradPart(l, m, x, dz, sc.dw)
		g := dx[c0*l.In : c1*l.In]
		var res []float32
		if l.addRes {
			res = g // dx of the block input adds the block output's gradient
		}
		out := g
		if p.ntG {
			out = sc.c[:m*l.In]
		}
		kernels.Gemm(m, dz, l.Out, l.bwd, nil, kernels.ActNone, res, l.In, out, l.In)
		kernels.BNBackReduce(out, p.z[c0*p.Out:c1*p.Out], p.Out, p.scale, p.shift, prelu, sc.s, sc.q)
		if p.ntG {
			kernels.NTCopy(g, out)
		}
	}
}

// dwBwd runs the backward pass of a depthwise layer band by band of output
// rows: dz of the band, the input rows it needs (recomputed or stored), its
// weight gradient, then the input gradient of every input row whose output
// rows are all done, and the batch-norm reduction of those rows.
func (t *Trainer) dwBwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l, p := &net.convs[t.li], &net.convs[t.li-1]
	clear(sc.s[:p.Out])
	clear(sc.q[:p.Out])
	clear(sc.dw[:l.weightFloats])
	dy, dx := net.grad[l.grad], net.grad[p.grad]
	h, w, s := l.InH, l.InW, l.Stride
	inRows, inSz, outSz := h*w, h*w*l.In, l.Area()*l.Out
	inRow, outRow := w*l.In, l.OutW*l.Out
	band := dwBand(l.OutW, l.Out)
	b0, b1 := t.imageRange(i, n)
	for b := b0; b < b1; b++ {
		dz := sc.b[:outSz]
		x := sc.a[:inSz]
		if p.y != nil {
			x = p.y[b*inSz : (b+1)*inSz]
		}
		g := dx[b*inSz : (b+1)*inSz]
		gi := g
		if l.addRes || p.ntG {
			gi = sc.c[:inSz] // finished in scratch, then written to g
		}
		zp := p.z[b*inSz : (b+1)*inSz]
		filled, done := 0, 0 // input rows recomputed; input rows whose gradient is complete
		for oy0 := 0; oy0 < l.OutH; oy0 += band {
			oy1 := min(oy0+band, l.OutH)
			kernels.BNBackApply(dy[b*outSz+oy0*outRow:b*outSz+oy1*outRow], l.z[b*outSz+oy0*outRow:b*outSz+oy1*outRow],
				dz[oy0*outRow:], l.Out, l.scale, l.shift, true, l.ga, l.gb, l.gc)
			if need := min(h, (oy1-1)*s+2); need > filled {
				if p.y == nil {
					t.applyRows(p, b*inRows+filled*w, b*inRows+need*w, sc.a[filled*inRow:])
				}
				filled = need
			}
			kernels.Depthwise3x3BackWeight(x, h, w, l.In, s, dz, sc.dw, oy0, oy1)
			// Input row iy takes from output rows up to (iy+1)/s.
			upTo := h
			if oy1 < l.OutH {
				upTo = min(h, oy1*s-1)
			}
			if upTo <= done {
				continue
			}
			kernels.Depthwise3x3BackInput(dz, h, w, l.In, s, l.w, gi, done, upTo)
			rows := gi[done*inRow : upTo*inRow]
			if l.addRes { // the block input's gradient adds the block output's
				for j, v := range g[done*inRow : upTo*inRow] {
					rows[j] += v
				}
			}
			kernels.BNBackReduce(rows, zp[done*inRow:upTo*inRow], p.Out, p.scale, p.shift, p.act == kernels.ActReLU6, sc.s, sc.q)
			switch {
			case p.ntG:
				kernels.NTCopy(g[done*inRow:upTo*inRow], rows)
			case l.addRes:
				copy(g[done*inRow:upTo*inRow], rows)
			}
			done = upTo
		}
	}
}

func (t *Trainer) stemBwd(i, n int) {
	net, sc := t.net, &t.scr[i]
	l := &net.convs[0]
	clear(sc.dw[:l.weightFloats])
	dy := net.grad[l.grad]
	r0, r1 := kernels.SplitRows(t.batch*l.Area(), i, n)
	for c0 := r0; c0 < r1; c0 += l.chunk {
		c1 := min(c0+l.chunk, r1)
		m := c1 - c0
		dz := sc.b[:m*l.Out]
		kernels.BNBackApply(dy[c0*l.Out:c1*l.Out], l.z[c0*l.Out:c1*l.Out], dz, l.Out, l.scale, l.shift, true, l.ga, l.gb, l.gc)
		col := sc.a[:m*27]
		nn.StemCols(net.in, &l.Layer, col, c0, c1)
		kernels.GemmATB(m, 27, l.Out, col, 27, dz, l.Out, sc.dw) // [27][out]
		if t.inputGrad {
			dcol := sc.c[:m*27]
			kernels.Gemm(m, dz, l.Out, l.bwd, nil, kernels.ActNone, nil, 0, dcol, 27)
			stemColsAdd(dcol, &l.Layer, net.dinput, c0, c1)
		}
	}
}

// finishStats turns the parts' sums into conv l's batch statistics, its
// forward scale and shift, and updates its running statistics as PyTorch
// does (momentum 0.1, unbiased variance).
func (t *Trainer) finishStats(l *tconv) {
	rows := t.batch * l.Area()
	for j := 0; j < l.Out; j++ {
		var s, q float64
		for p := 0; p < t.parts; p++ {
			s += t.scr[p].s[j]
			q += t.scr[p].q[j]
		}
		mean, invstd, unbiased := bnForwardCoeffs(s, q, rows)
		l.mean[j], l.invstd[j] = mean, invstd
		sc := float64(l.gamma[j]) * invstd
		l.scale[j] = float32(sc)
		l.shift[j] = float32(float64(l.beta[j]) - mean*sc)
		l.rmean[j] = float32(bnMomentum*mean + (1-bnMomentum)*float64(l.rmean[j]))
		l.rvar[j] = float32(bnMomentum*unbiased + (1-bnMomentum)*float64(l.rvar[j]))
	}
}

// evalCoeffs sets conv l's scale and shift from its running statistics.
func evalCoeffs(l *tconv) {
	for j := 0; j < l.Out; j++ {
		invstd := 1 / math.Sqrt(float64(l.rvar[j])+nn.BatchNormEps)
		sc := float64(l.gamma[j]) * invstd
		l.scale[j] = float32(sc)
		l.shift[j] = float32(float64(l.beta[j]) - float64(l.rmean[j])*sc)
	}
}

// finishBack turns the parts' backward sums of conv l into its gamma and
// beta gradients and the coefficients of its dz.
func (t *Trainer) finishBack(l *tconv) {
	rows := t.batch * l.Area()
	for j := 0; j < l.Out; j++ {
		var sg, sgz float64
		for p := 0; p < t.parts; p++ {
			sg += t.scr[p].s[j]
			sgz += t.scr[p].q[j]
		}
		dgamma, dbeta, a, b, c := bnBackCoeffs(sg, sgz, l.mean[j], l.invstd[j], float64(l.gamma[j]), rows)
		l.dgamma[j], l.dbeta[j] = float32(dgamma), float32(dbeta)
		l.ga[j], l.gb[j], l.gc[j] = float32(a), float32(b), float32(c)
	}
}

// finishWeightGrad adds the parts' weight-gradient partials, in part order,
// into conv l's gradient in PyTorch layout.
func (t *Trainer) finishWeightGrad(l *tconv) {
	dw := l.dw
	switch {
	case l.Kind == nn.LayerDepthwise:
		copy(dw, t.scr[0].dw[:len(dw)])
		for p := 1; p < t.parts; p++ {
			for j, v := range t.scr[p].dw[:len(dw)] {
				dw[j] += v
			}
		}
	case l.Kind == nn.LayerStem: // partials are [27][out], k = (ky*3+kx)*3+ci
		for co := 0; co < l.Out; co++ {
			for ci := 0; ci < 3; ci++ {
				for t9 := 0; t9 < 9; t9++ {
					k := t9*3 + ci
					var s float32
					for p := 0; p < t.parts; p++ {
						s += t.scr[p].dw[k*l.Out+co]
					}
					dw[(co*3+ci)*9+t9] = s
				}
			}
		}
	case l.swapATB: // partials are [out][in], PyTorch's layout
		copy(dw, t.scr[0].dw[:len(dw)])
		for p := 1; p < t.parts; p++ {
			for j, v := range t.scr[p].dw[:len(dw)] {
				dw[j] += v
			}
		}
	default: // partials are [in][out]
		for ci := 0; ci < l.In; ci++ {
			for co := 0; co < l.Out; co++ {
				s := t.scr[0].dw[ci*l.Out+co]
				for p := 1; p < t.parts; p++ {
					s += t.scr[p].dw[ci*l.Out+co]
				}
				dw[co*l.In+ci] = s
			}
		}
	}
}

// stemColsAdd is the adjoint of StemCols: it adds each patch value of dcol
// to the input pixel it came from.
func stemColsAdd(dcol []float32, l *nn.Layer, din []float32, r0, r1 int) {
	h, w, s := l.InH, l.InW, l.Stride
	area := l.OutH * l.OutW
	for r := r0; r < r1; r++ {
		img, p := r/area, r%area
		oy, ox := p/l.OutW, p%l.OutW
		base := din[img*h*w*3 : (img+1)*h*w*3]
		src := dcol[(r-r0)*27 : (r-r0)*27+27]
		for ky := 0; ky < 3; ky++ {
			y := oy*s + ky - 1
			for kx := 0; kx < 3; kx++ {
				x := ox*s + kx - 1
				if y < 0 || y >= h || x < 0 || x >= w {
					continue
				}
				d := base[(y*w+x)*3 : (y*w+x)*3+3]
				v := src[(ky*3+kx)*3 : (ky*3+kx)*3+3]
				d[0] += v[0]
				d[1] += v[1]
				d[2] += v[2]
			}
		}
	}
}
