package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/internal/kernels"
)

// Trainer trains N MobileNetV2 models jointly on the same batches, with
//
//	loss = LossA * sum_i CE(model_i) + LossB * CE(fused)
//
// where fused is consensus.Fuse over the models' full softmax vectors (every
// model answers with all classes), weighted by the fusion weights and divided
// by their sum, so that CE(fused) = -sum_c target[c]*log(fused[c]/sum(w)).
// N = 1 with LossB = 0 trains a single model.
//
// Training-mode batch norm (batch statistics, running statistics updated as
// PyTorch does), classifier dropout (cfg.Dropout, as torchvision's
// classifier.0), SGD with momentum, Nesterov and weight decay as
// torch.optim.SGD. Everything is deterministic for a given seed and thread
// count: each parallel sum is split the same way every time and its parts
// added in order.
//
// A Trainer is not safe for concurrent use. It allocates all its buffers in
// NewTrainer; Step allocates nothing.
type Trainer struct {
	cfg       format.TrainConfig
	fusion    []float64
	fusionSum float64
	nets      []*tnet
	pool      *nn.Pool
	threads   int
	steps     int
	classes   int

	// The phase being run across the pool (see runPhase).
	ph        phase
	net       *tnet
	li        int // layer index
	batch     int // images in the current batch
	train     bool
	parts     int
	inputGrad bool // compute the input gradient (tests)
	lr        float32
	scr       []tscratch // one per part
	done      sync.WaitGroup

	// Loss of the current step.
	answers []consensus.Answer
	fused   []float64
	rowR    []float64 // models × classes: w_i p_i[c] / fused[c]
	stats   StepStats
	drop    rand.PCG

	// Distillation (cfg.KD > 0): the teacher's softened probabilities for
	// the next Step (batch × classes), set by SetTeacher and used once.
	teacher []float32
}

// NewTrainer builds a trainer for the models specs, all with the same number
// of classes, fused with weights fusion (one per model, non-negative, not all
// zero; nil means equal weights). pool may be nil (one thread).
func NewTrainer(specs []nn.Spec, fusion []float64, cfg format.TrainConfig, pool *nn.Pool) (*Trainer, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("train: NewTrainer: no models")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: NewTrainer: %w", err)
	}
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return nil, fmt.Errorf("train: NewTrainer: model %d: %w", i, err)
		}
		if specs[i].NumClasses != specs[0].NumClasses {
			return nil, fmt.Errorf("train: NewTrainer: model %d has %d classes, model 0 has %d", i, specs[i].NumClasses, specs[0].NumClasses)
		}
		l := specs[i].Layers()
		if a := l[len(l)-1].InH * l[len(l)-1].InW; cfg.Batch*a < 2 {
			return nil, fmt.Errorf("train: NewTrainer: model %d: batch norm needs more than one value per channel; batch %d of %dx%d final maps has %d",
				i, cfg.Batch, l[len(l)-1].InH, l[len(l)-1].InW, cfg.Batch*a)
		}
	}
	if fusion == nil {
		fusion = make([]float64, len(specs))
		fillFloat64s(fusion, 1)
	}
	if len(fusion) != len(specs) {
		return nil, fmt.Errorf("train: NewTrainer: %d fusion weights for %d models", len(fusion), len(specs))
	}
	sum := 0.0
	for i, w := range fusion {
		if !(w >= 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("train: NewTrainer: fusion weight %d is %v, want a finite non-negative number", i, w)
		}
		sum += w
	}
	if !(sum > 0) {
		return nil, fmt.Errorf("train: NewTrainer: fusion weights are all zero")
	}

	t := &Trainer{
		cfg:       cfg,
		fusion:    append([]float64(nil), fusion...),
		fusionSum: sum,
		pool:      pool,
		threads:   pool.Threads(),
		classes:   specs[0].NumClasses,
	}
	var a, b, c, ch, w int
	for i, s := range specs {
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7261696e+uint64(i))) // "rain"
		n := newTnet(s, cfg.Batch, rng)
		t.nets = append(t.nets, n)
		na, nb, nc, nch, nw := n.scratchNeeds()
		a, b, c, ch, w = max(a, na), max(b, nb), max(c, nc), max(ch, nch), max(w, nw)
	}
	t.scr = make([]tscratch, t.threads)
	for i := range t.scr {
		t.scr[i] = tscratch{
			a: make([]float32, a), b: make([]float32, b), c: make([]float32, c),
			s: make([]float64, ch), q: make([]float64, ch),
			dw: make([]float32, w),
		}
	}
	k := t.classes
	idx := make([]int32, k)
	for j := range idx {
		idx[j] = int32(j)
	}
	t.answers = make([]consensus.Answer, len(specs))
	for i := range t.answers {
		t.answers[i] = consensus.Answer{Variant: i, Indices: idx}
	}
	t.fused = make([]float64, k)
	t.rowR = make([]float64, len(specs)*k)
	t.stats.VariantLoss = make([]float64, len(specs))
	t.stats.Correct = make([]int, len(specs))
	for _, n := range t.nets {
		t.repack(n)
	}
	return t, nil
}

func fillFloat64s(s []float64, v float64) {
	for i := range s {
		s[i] = v
	}
}

// Models reports how many models the trainer trains.
func (t *Trainer) Models() int { return len(t.nets) }

// Steps reports how many steps have been taken (restored by LoadCheckpoint).
func (t *Trainer) Steps() int { return t.steps }

// SetTeacher gives the next Step the teacher's probabilities at the recipe's
// distillation temperature T, softmax(teacher logits / T), one row of
// classes per image of the batch. The slice is read during that Step only
// and must not change until it returns. With cfg.KD = 0 it is ignored; with
// cfg.KD > 0 a Step without a teacher panics.
func (t *Trainer) SetTeacher(probs []float32) { t.teacher = probs }

// Step runs the forward pass (training-mode batch norm), the backward pass and
// one SGD update with learning rate lr on one batch. inputs[i] is the batch
// for model i at its resolution: n×R_i×R_i×3 floats, NHWC, normalised;
// targets is n×classes soft labels, each row summing to 1 (one-hot, smoothed
// or mixed). n is cfg.Batch, or fewer for a last partial batch. Step panics
// if the slices do not fit. The returned statistics' slices belong to the
// trainer and are overwritten by the next Step.
func (t *Trainer) Step(inputs [][]float32, targets []float32, lr float64) StepStats {
	b := t.checkBatch(inputs, targets)
	t.forwardBackward(inputs, targets, b)
	t.lr = float32(lr)
	for _, n := range t.nets {
		t.net = n
		t.runPhase(phSGD, 0)
		t.repack(n)
	}
	t.net = nil
	t.steps++
	return t.stats
}

// checkBatch returns the number of images in the batch, or panics if the
// inputs and targets do not describe the same batch for these models.
func (t *Trainer) checkBatch(inputs [][]float32, targets []float32) int {
	k := t.classes
	if len(targets) == 0 || len(targets)%k != 0 {
		panic(fmt.Sprintf("train: Trainer.Step: %d target floats is not a positive multiple of %d classes", len(targets), k))
	}
	b := len(targets) / k
	if b > t.cfg.Batch {
		panic(fmt.Sprintf("train: Trainer.Step: batch of %d images, trainer made for %d", b, t.cfg.Batch))
	}
	if len(inputs) != len(t.nets) {
		panic(fmt.Sprintf("train: Trainer.Step: %d inputs for %d models", len(inputs), len(t.nets)))
	}
	for i, n := range t.nets {
		r := n.spec.Resolution
		if len(inputs[i]) != b*r*r*3 {
			panic(fmt.Sprintf("train: Trainer.Step: input %d has %d floats, want %d×%d×%d×3", i, len(inputs[i]), b, r, r))
		}
		l := &n.convs[len(n.convs)-1]
		if b*l.Area() < 2 {
			panic(fmt.Sprintf("train: Trainer.Step: model %d: batch norm needs more than one value per channel (batch of %d)", i, b))
		}
	}
	if t.cfg.KD > 0 && len(t.teacher) != b*k {
		panic(fmt.Sprintf("train: Trainer.Step: distillation needs the teacher's %d×%d probabilities (SetTeacher), have %d", b, k, len(t.teacher)))
	}
	return b
}

// forwardBackward runs every model forward, the joint loss, and every model
// backward, leaving the gradients in each tnet's grads.
func (t *Trainer) forwardBackward(inputs [][]float32, targets []float32, b int) {
	t.batch, t.train = b, true
	for i, n := range t.nets {
		t.net = n
		n.in = inputs[i]
		t.forward(i)
	}
	t.loss(targets)
	t.teacher = nil
	for _, n := range t.nets {
		t.net = n
		t.backward()
		n.in = nil
	}
	t.net = nil
}

// forward runs t.net on its input: training mode if t.train, else with the
// running statistics and no dropout. The logits end in t.net.logits.
func (t *Trainer) forward(model int) {
	n := t.net
	if !t.train {
		for i := range n.convs {
			evalCoeffs(&n.convs[i])
		}
	}
	t.runPhase(phStemFwd, 0)
	for L := 1; L < len(n.convs); L++ {
		t.runPhase(phFwd, L)
	}
	t.runPhase(phPool, len(n.convs)-1)

	x := n.pooled[:t.batch*n.last]
	if t.train && t.cfg.Dropout > 0 {
		t.dropout(model)
		x = n.dropped[:t.batch*n.last]
	}
	kernels.Gemm(t.batch, x, n.last, n.clsFwd, n.clsB, kernels.ActNone, nil, 0, n.logits, n.classes)
}

// dropout draws the classifier-input mask of this step for model (from the
// seed, the step and the model, so a resumed run draws the same masks) and
// applies it: dropped = pooled * mask, mask 0 or 1/(1-p).
func (t *Trainer) dropout(model int) {
	n := t.net
	p := t.cfg.Dropout
	t.drop.Seed(uint64(t.cfg.Seed)^0x64726f706f7574, uint64(t.steps)*uint64(len(t.nets))+uint64(model))
	thresh := uint64(p * (1 << 64))
	keep := float32(1 / (1 - p))
	for j := range n.mask[:t.batch*n.last] {
		m := keep
		if t.drop.Uint64() < thresh {
			m = 0
		}
		n.mask[j] = m
		n.dropped[j] = n.pooled[j] * m
	}
}

// backward runs t.net backward from its dlogits.
func (t *Trainer) backward() {
	n := t.net
	b, k, c := t.batch, n.classes, n.last

	// Classifier: dW = dlogits^T x, db = sum dlogits, dx = dlogits W.
	x := n.pooled[:b*c]
	if t.cfg.Dropout > 0 {
		x = n.dropped[:b*c]
	}
	clear(n.clsDW)
	kernels.GemmATB(b, k, c, n.dlogits, k, x, c, n.clsDW)
	for j := 0; j < k; j++ {
		var s float64
		for i := 0; i < b; i++ {
			s += float64(n.dlogits[i*k+j])
		}
		n.clsDB[j] = float32(s)
	}
	kernels.Gemm(b, n.dlogits, k, n.clsBwd, nil, kernels.ActNone, nil, 0, n.dpooled, c)
	if t.cfg.Dropout > 0 {
		for j, m := range n.mask[:b*c] {
			n.dpooled[j] *= m
		}
	}

	last := len(n.convs) - 1
	t.runPhase(phPoolBack, last)
	for L := last; L >= 1; L-- {
		t.runPhase(phBwd, L)
	}
	if t.inputGrad {
		clear(n.dinput)
	}
	t.runPhase(phStemBwd, 0)
}

// loss computes the joint loss of the current batch, the statistics, and
// every model's dlogits.
func (t *Trainer) loss(targets []float32) {
	b, k := t.batch, t.classes
	st := &t.stats
	st.Images = b
	st.Loss, st.FusedLoss, st.FusedCorrect = 0, 0, 0
	for i := range st.VariantLoss {
		st.VariantLoss[i], st.Correct[i] = 0, 0
	}
	kd, temp := t.cfg.KD, t.cfg.KDTemperature
	sa := float32(t.cfg.LossA / float64(b))
	sce := sa * float32(1-kd)    // each variant's label term
	skd := sa * float32(kd*temp) // and its distillation term, through the 1/T of its logits
	sb := t.cfg.LossB / float64(b)
	for img := 0; img < b; img++ {
		tg := targets[img*k : (img+1)*k]
		label := argmaxF32(tg)
		var q []float32
		if kd > 0 {
			q = t.teacher[img*k : (img+1)*k]
		}
		for i, n := range t.nets {
			lg := n.logits[img*k : (img+1)*k]
			pr := n.probs[img*k : (img+1)*k]
			lse := logSumExp(lg, 1)
			ce := 0.0
			for c, v := range lg {
				pr[c] = float32(math.Exp(float64(v) - lse))
				ce -= float64(tg[c]) * (float64(v) - lse)
			}
			if argmaxF32(lg) == label {
				st.Correct[i]++
			}
			dl := n.dlogits[img*k : (img+1)*k]
			if kd == 0 {
				st.VariantLoss[i] += ce
				for c := range dl {
					dl[c] = sa * (pr[c] - tg[c])
				}
			} else {
				// T^2 KL(q || softmax(lg/T)); its gradient with respect
				// to lg is T (softmax(lg/T) - q).
				lseT := logSumExp(lg, temp)
				kl := 0.0
				for c, v := range lg {
					lpT := float64(v)/temp - lseT
					if q[c] > 0 {
						kl += float64(q[c]) * (math.Log(float64(q[c])) - lpT)
					}
					dl[c] = sce*(pr[c]-tg[c]) + skd*(float32(math.Exp(lpT))-q[c])
				}
				st.VariantLoss[i] += (1-kd)*ce + kd*temp*temp*kl
			}
			t.answers[i].Probs = pr
		}

		// The fused term: F = Fuse(p_i, w), loss -sum_c t_c log(F_c / W). Its
		// gradient with respect to p_i[c] is -t_c w_i / F_c; through the
		// softmax, dlogit_i[j] = -t_j r_i[j] + p_i[j] sum_c t_c r_i[c] with
		// r_i[c] = w_i p_i[c] / F_c, each model's share of F_c, in [0, 1].
		fused := t.fused
		if err := consensus.Fuse(t.answers, t.fusion, fused); err != nil {
			st.FusedLoss = math.NaN() // a NaN probability: training has diverged
			continue
		}
		if consensus.Argmax(fused) == label {
			st.FusedCorrect++
		}
		ce := 0.0
		for c, f := range fused {
			if tg[c] != 0 {
				ce -= float64(tg[c]) * math.Log(max(f/t.fusionSum, math.SmallestNonzeroFloat64))
			}
		}
		st.FusedLoss += ce
		if sb == 0 {
			continue
		}
		for i, n := range t.nets {
			pr := n.probs[img*k : (img+1)*k]
			r := t.rowR[i*k : (i+1)*k]
			var tr float64
			for c, f := range fused {
				r[c] = 0
				if f > 0 {
					r[c] = t.fusion[i] * float64(pr[c]) / f
				}
				tr += float64(tg[c]) * r[c]
			}
			dl := n.dlogits[img*k : (img+1)*k]
			for c := range dl {
				dl[c] += float32(sb * (float64(pr[c])*tr - float64(tg[c])*r[c]))
			}
		}
	}
	inv := 1 / float64(b)
	for i := range st.VariantLoss {
		st.VariantLoss[i] *= inv
		st.Loss += t.cfg.LossA * st.VariantLoss[i]
	}
	st.FusedLoss *= inv
	st.Loss += t.cfg.LossB * st.FusedLoss
}

// logSumExp returns log(sum_c exp(lg[c]/temp)), computed stably.
func logSumExp(lg []float32, temp float64) float64 {
	mx := lg[0]
	for _, v := range lg {
		mx = max(mx, v)
	}
	var sum float64
	if temp == 1 { // the differences in float32, as always before distillation
		for _, v := range lg {
			sum += math.Exp(float64(v - mx))
		}
		return float64(mx) + math.Log(sum)
	}
	m := float64(mx) / temp
	for _, v := range lg {
		sum += math.Exp(float64(v)/temp - m)
	}
	return m + math.Log(sum)
}

// argmax32 returns the index of the largest value, the lowest on ties.
func argmaxF32(s []float32) int {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return best
}

// gradients runs forward and backward on a batch without updating anything
// but the running statistics, for tests: the gradients are left in each
// model's grads (and the input gradients in dinput if inputGrad).
func (t *Trainer) gradients(inputs [][]float32, targets []float32, inputGrad bool) StepStats {
	b := t.checkBatch(inputs, targets)
	t.inputGrad = inputGrad
	if inputGrad {
		for i, n := range t.nets {
			if len(n.dinput) < len(inputs[i]) {
				n.dinput = make([]float32, len(inputs[i]))
			}
		}
	}
	t.forwardBackward(inputs, targets, b)
	t.inputGrad = false
	return t.stats
}

// evalLogits runs model i in evaluation mode (running statistics, no dropout)
// on b images and returns its logits, owned by the trainer.
func (t *Trainer) evalLogits(i int, in []float32, b int) []float32 {
	n := t.nets[i]
	t.net, t.batch, t.train = n, b, false
	n.in = in
	t.forward(i)
	n.in = nil
	t.net = nil
	return n.logits[:b*n.classes]
}
