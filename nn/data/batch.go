package data

// Batches for (joint) training and evaluation of the variants of a family.
//
// All variants of a family train on the same images in the same step, each
// at its own resolution, so a batch is built once on 8-bit pixels
// (augmentation) and then resized for every variant by Resizer.ToTensor,
// the very function serving uses: a variant never trains on a resampling
// it will not see in production.

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// Batcher builds training and evaluation batches for a set of variant
// specs. For each batch it writes, for every spec i, the batch's images
// resized by Resizer.ToTensor to spec i's resolution and normalised with
// its mean and std into inputs[i] (Batch×R_i×R_i×3 floats, NHWC), and for
// training the soft targets (Batch×classes) into targets.
//
// A Batcher holds scratch buffers (the augmented image, one Resizer per
// spec, the epoch permutation) and is not safe for concurrent use: give
// each goroutine its own. After the first batches have sized the buffers,
// building a batch allocates nothing. Datasets are only read, so any
// number of Batchers may share one.
type Batcher struct {
	specs   []nn.Spec
	classes int
	cfg     format.TrainConfig

	rz      []nn.Resizer
	img     image.NRGBA // the augmented image handed to ToTensor
	pcg     rand.PCG
	mixed   [][]float32 // per spec, the batch before mixing
	partner []int       // mixup partner of each image of the last batch
	lambda  float64     // mixup weight of the last batch (1 without mixup)
	rowLbl  []int       // labels of the last batch before mixing
	fill    [3]uint8    // cutout's colour: the first spec's mean, in 8-bit pixels

	drawIdx  []int  // the samples of the last training batch
	drawFlip []bool // and whether each was mirrored

	// The permutation of the epoch last asked for, kept because
	// recomputing 50,000 swaps per batch would cost more than the batch.
	perm               []int
	permData           *Dataset
	permLen, permEpoch int
	permValid          bool
	permSeed           int64
}

// NewBatcher returns a Batcher for the given variants, whose classifiers
// have classes outputs, training with cfg (Batch, PadCrop, Flip, Mixup,
// LabelSmoothing and Seed are used). The specs are copied.
//
// Out-of-range settings are clamped rather than refused, since the
// trainer validates its configuration before getting here: PadCrop < 0
// counts as 0, LabelSmoothing is clamped to [0, 1], and a Mixup alpha
// that is not a positive number turns mixup off (alphas above 1e6 act as
// 1e6, where λ is 1/2 within 1e-3).
func NewBatcher(specs []nn.Spec, classes int, cfg format.TrainConfig) *Batcher {
	cfg.PadCrop = max(cfg.PadCrop, 0)
	if !(cfg.LabelSmoothing > 0) {
		cfg.LabelSmoothing = 0
	}
	cfg.LabelSmoothing = min(cfg.LabelSmoothing, 1)
	if !(cfg.Mixup > 0) {
		cfg.Mixup = 0
	}
	bt := &Batcher{
		specs:   append([]nn.Spec(nil), specs...),
		classes: classes,
		cfg:     cfg,
		rz:      make([]nn.Resizer, len(specs)),
		mixed:   make([][]float32, len(specs)),
		lambda:  1,
	}
	if len(specs) > 0 {
		for c, m := range specs[0].Mean {
			bt.fill[c] = uint8(min(255, max(0, math.Round(float64(m)*255))))
		}
	}
	return bt
}

// BatchesPerEpoch is the number of full batches of size batch in d: an
// incomplete last batch is dropped (the epoch's permutation changes every
// epoch, so every image is still seen about equally often), which keeps
// batch-norm statistics off tiny batches and every step the same shape.
// It is 0 if batch < 1.
func BatchesPerEpoch(d *Dataset, batch int) int {
	if batch < 1 {
		return 0
	}
	return len(d.Samples) / batch
}

// epochPermutation returns the order in which epoch visits d's samples: a
// uniform random permutation depending only on (Seed, epoch, len(d.Samples)).
// The last one is cached; a Dataset whose samples change in place between
// calls with the same length is not noticed.
func (bt *Batcher) epochPermutation(d *Dataset, epoch int) []int {
	n := len(d.Samples)
	if bt.permValid && bt.permData == d && bt.permLen == n && bt.permEpoch == epoch && bt.permSeed == bt.cfg.Seed {
		return bt.perm
	}
	bt.perm = slices.Grow(bt.perm[:0], n)[:n]
	seedRNG(&bt.pcg, bt.cfg.Seed, epoch, 0, streamPermutation)
	permute(&bt.pcg, bt.perm)
	bt.permData, bt.permLen, bt.permEpoch, bt.permSeed, bt.permValid = d, n, epoch, bt.cfg.Seed, true
	return bt.perm
}

// checkBuffers panics, as an index out of range would but with a message
// saying which buffer, if the caller's buffers cannot hold batch images.
func (bt *Batcher) checkBuffers(who string, batch int, inputs [][]float32, labels []int) {
	if len(inputs) != len(bt.specs) {
		panic(fmt.Sprintf("data: Batcher.%s: %d input buffers for %d specs", who, len(inputs), len(bt.specs)))
	}
	for i, s := range bt.specs {
		if need := batch * s.Resolution * s.Resolution * 3; len(inputs[i]) < need {
			panic(fmt.Sprintf("data: Batcher.%s: inputs[%d] has %d floats, %d images at %d×%d need %d",
				who, i, len(inputs[i]), batch, s.Resolution, s.Resolution, need))
		}
	}
	if len(labels) < batch {
		panic(fmt.Sprintf("data: Batcher.%s: labels has room for %d, batch is %d", who, len(labels), batch))
	}
}

// load puts sample s, augmented if asked, into bt.img and converts it for
// every spec into slot k of inputs.
func (bt *Batcher) load(s *Sample, k int, inputs [][]float32, pad, ox, oy int, flip bool, cut cutout) {
	if s.W < 0 || s.H < 0 || len(s.Pix) < s.W*s.H*3 {
		panic(fmt.Sprintf("data: Batcher: sample %s is %dx%d but has %d bytes", s.Path, s.W, s.H, len(s.Pix)))
	}
	padCropFlip(&bt.img, s, pad, ox, oy, flip)
	if cut.size > 0 {
		cut.apply(&bt.img, bt.fill)
	}
	for i := range bt.specs {
		sp := &bt.specs[i]
		n := sp.Resolution * sp.Resolution * 3
		bt.rz[i].ToTensor(&bt.img, sp.Resolution, sp.Mean, sp.Std, inputs[i][k*n:(k+1)*n])
	}
}

// cutout is one image's erased square: side size centred at (cx, cy).
type cutout struct{ size, cx, cy int }

// apply sets the square's pixels inside img to fill (alpha stays opaque).
func (c cutout) apply(img *image.NRGBA, fill [3]uint8) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	x0, y0 := max(0, c.cx-c.size/2), max(0, c.cy-c.size/2)
	x1, y1 := min(w, c.cx-c.size/2+c.size), min(h, c.cy-c.size/2+c.size)
	for y := y0; y < y1; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+w*4]
		for x := x0; x < x1; x++ {
			row[x*4], row[x*4+1], row[x*4+2] = fill[0], fill[1], fill[2]
		}
	}
}

// Train writes batch b of epoch e into inputs, targets and labels[:B]
// (B = cfg.Batch): each image's label, or with mixup its dominant one (the
// image's own if λ ≥ 1/2, its partner's otherwise), to count correct
// predictions.
//
// The images are samples perm[b·B : (b+1)·B] of the epoch's permutation,
// b in [0, BatchesPerEpoch(d, B)); the incomplete last batch is never
// built. Every random choice (the permutation, each image's crop offsets
// and flip, mixup's λ and partners) derives only from (cfg.Seed, e, b), so
// any batch can be rebuilt independently, in any order, on any goroutine.
//
// Each image is augmented on its 8-bit pixels: zero-padded by cfg.PadCrop
// on every side and cropped back to its own size at a uniformly random
// offset, then mirrored left to right with probability 1/2 if cfg.Flip;
// with cfg.Cutout = s > 0, a square of side s centred on a uniformly random
// pixel (clipped at the edges) is then painted in the first spec's mean
// colour, which normalises to about 0; the result is resized for every
// spec by Resizer.ToTensor. The target row
// of an image with label y is (1-ε)·onehot(y) + ε/classes, ε being
// cfg.LabelSmoothing.
//
// Mixup (cfg.Mixup = α > 0) draws one λ ~ Beta(α, α) per batch, as the
// mixup paper's reference code does, and pairs image k with image p(k) for
// a uniformly random permutation p of the batch (an image may draw itself);
// inputs and targets become λ·x_k + (1-λ)·x_p(k), the inputs mixed in
// normalised tensor space after resizing.
//
// Buffers too small for the batch, b out of range, or a label outside
// [0, classes) are caller bugs and panic with a message saying which.
func (bt *Batcher) Train(d *Dataset, epoch, b int, inputs [][]float32, targets []float32, labels []int) {
	B, C := bt.cfg.Batch, bt.classes
	if nb := BatchesPerEpoch(d, B); b < 0 || b >= nb {
		panic(fmt.Sprintf("data: Batcher.Train: batch %d of an epoch of %d (%d samples, batch size %d)", b, nb, len(d.Samples), B))
	}
	bt.checkBuffers("Train", B, inputs, labels)
	if len(targets) < B*C {
		panic(fmt.Sprintf("data: Batcher.Train: targets has %d floats, %d images × %d classes need %d", len(targets), B, C, B*C))
	}
	idx := bt.epochPermutation(d, epoch)[b*B : (b+1)*B]

	seedRNG(&bt.pcg, bt.cfg.Seed, epoch, b, streamBatch)
	pad := bt.cfg.PadCrop
	bt.drawIdx = append(bt.drawIdx[:0], idx...)
	bt.drawFlip = slices.Grow(bt.drawFlip[:0], B)[:B]
	for k, si := range idx {
		s := &d.Samples[si]
		if s.Label < 0 || s.Label >= C {
			panic(fmt.Sprintf("data: Batcher.Train: sample %s has label %d, want [0, %d)", s.Path, s.Label, C))
		}
		ox, oy, flip := pad, pad, false
		if pad > 0 {
			ox = int(uintN(&bt.pcg, uint64(2*pad+1)))
			oy = int(uintN(&bt.pcg, uint64(2*pad+1)))
		}
		if bt.cfg.Flip {
			flip = bt.pcg.Uint64()>>63 == 1
		}
		var cut cutout
		if c := bt.cfg.Cutout; c > 0 { // drawn only when on: recipes without it keep their batches
			cut = cutout{size: c, cx: int(uintN(&bt.pcg, uint64(s.W))), cy: int(uintN(&bt.pcg, uint64(s.H)))}
		}
		bt.drawFlip[k] = flip
		bt.load(s, k, inputs, pad, ox, oy, flip, cut)
		labels[k] = s.Label
	}

	eps := float32(bt.cfg.LabelSmoothing)
	off, on := eps/float32(C), 1-eps+eps/float32(C)
	bt.rowLbl = slices.Grow(bt.rowLbl[:0], B)[:B]
	copy(bt.rowLbl, labels[:B])
	bt.partner = slices.Grow(bt.partner[:0], B)[:B]
	if bt.cfg.Mixup == 0 {
		bt.lambda = 1
		for k := range bt.partner[:B] {
			bt.partner[k] = k
		}
		for k := 0; k < B; k++ {
			row := targets[k*C : (k+1)*C]
			for j := range row {
				row[j] = off
			}
			row[labels[k]] = on
		}
		return
	}

	lam := betaSample(&bt.pcg, bt.cfg.Mixup, bt.cfg.Mixup)
	permute(&bt.pcg, bt.partner[:B])
	bt.lambda = lam
	l1, l2 := float32(lam), float32(1-lam)
	for i := range bt.specs {
		n := bt.specs[i].Resolution * bt.specs[i].Resolution * 3
		bt.mixed[i] = slices.Grow(bt.mixed[i][:0], B*n)[:B*n]
		src := bt.mixed[i]
		copy(src, inputs[i][:B*n])
		for k := 0; k < B; k++ {
			x := src[k*n : (k+1)*n]
			y := src[bt.partner[k]*n : (bt.partner[k]+1)*n]
			o := inputs[i][k*n : (k+1)*n]
			for j := range o {
				o[j] = l1*x[j] + l2*y[j]
			}
		}
	}
	for k := 0; k < B; k++ {
		row := targets[k*C : (k+1)*C]
		for j := range row {
			row[j] = off
		}
		// Both terms carry ε/classes everywhere and λ, 1-λ of the rest.
		row[bt.rowLbl[k]] += l1 * (1 - eps)
		row[bt.rowLbl[bt.partner[k]]] += l2 * (1 - eps)
		if lam < 0.5 {
			labels[k] = bt.rowLbl[bt.partner[k]]
		}
	}
}

// Eval writes the images d.Samples[idx[k]] without augmentation (the
// serving path: Resizer.ToTensor of the image as loaded) into slot k of
// every inputs[i], and their labels into labels; the batch is len(idx)
// images. An index out of range, or buffers too small, panic.
func (bt *Batcher) Eval(d *Dataset, idx []int, inputs [][]float32, labels []int) {
	bt.View(d, idx, false, inputs, labels)
}

// View is Eval with the images mirrored left to right if flip: the two
// views of an image that training's flip draws from, with no crop offset.
func (bt *Batcher) View(d *Dataset, idx []int, flip bool, inputs [][]float32, labels []int) {
	bt.checkBuffers("Eval", len(idx), inputs, labels)
	for k, si := range idx {
		s := &d.Samples[si]
		bt.load(s, k, inputs, 0, 0, 0, flip, cutout{})
		labels[k] = s.Label
	}
}

// Drawn reports, for image k of the last training batch, the sample it
// was (its index in the dataset), whether it was mirrored, and with mixup
// its partner image in the batch and the batch's λ (partner k and λ 1
// without mixup).
func (bt *Batcher) Drawn(k int) (sample int, flip bool, partner int, lambda float64) {
	return bt.drawIdx[k], bt.drawFlip[k], bt.partner[k], bt.lambda
}

// mixInfo reports the last training batch's mixup weight and partners,
// for tests.
func (bt *Batcher) mixInfo() (lambda float64, partner []int) {
	return bt.lambda, bt.partner
}
