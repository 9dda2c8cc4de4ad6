package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/internal/kernels"
)

// A float64 reference of the training forward pass and loss, written from
// the definitions with plain loops and sharing no code with the trainer, and
// finite-difference checks of the trainer's gradients against it.

// refModel is one model for the reference: its spec and float64 parameters
// by state_dict name.
type refModel struct {
	spec   nn.Spec
	params map[string][]float64
	mask   []float64 // dropout mask of the classifier input (batch × last), or nil
}

// refBN records one batch norm's batch statistics.
type refBN struct {
	mean, unbiased []float64
}

// refForward runs m in training mode on b images (NHWC float64) and returns
// the logits, b × classes; bn, if not nil, receives each batch norm's
// statistics by name.
func refForward(m *refModel, in []float64, b int, bn map[string]refBN) []float64 {
	s := &m.spec
	p := m.params
	var cur, blockIn []float64
	h := s.Resolution
	prevKind := nn.LayerClassifier
	for _, l := range s.Layers() {
		var z []float64
		switch l.Kind {
		case nn.LayerStem:
			z = refConv3x3(in, b, h, h, 3, l.Out, l.Stride, p[l.Name+".weight"])
		case nn.LayerDepthwise:
			if prevKind != nn.LayerExpand {
				blockIn = cur
			}
			z = refDepthwise(cur, b, l.InH, l.InW, l.In, l.Stride, p[l.Name+".weight"])
		case nn.LayerExpand:
			blockIn = cur
			z = refPointwise(cur, l.In, l.Out, p[l.Name+".weight"])
		case nn.LayerProject, nn.LayerLast:
			z = refPointwise(cur, l.In, l.Out, p[l.Name+".weight"])
		case nn.LayerClassifier:
			x := refAvgPool(cur, b, l.InH*l.InW, l.In)
			if m.mask != nil {
				for i := range x {
					x[i] *= m.mask[i]
				}
			}
			return refLinear(x, b, l.In, l.Out, p[l.Name+".weight"], p[l.Name+".bias"])
		}
		y := refBatchNorm(z, l.Out, p[l.BN+".weight"], p[l.BN+".bias"], bn, l.BN)
		if l.Kind == nn.LayerProject {
			if l.Residual {
				for i := range y {
					y[i] += blockIn[i]
				}
			}
		} else {
			for i, v := range y {
				y[i] = math.Min(math.Max(v, 0), 6)
			}
		}
		cur = y
		prevKind = l.Kind
	}
	panic("no classifier")
}

// refConv3x3 is a dense 3x3 convolution, padding 1, weights [out][in][3][3].
func refConv3x3(in []float64, b, h, w, cin, cout, stride int, wt []float64) []float64 {
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	out := make([]float64, b*oh*ow*cout)
	for n := 0; n < b; n++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for co := 0; co < cout; co++ {
					var s float64
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							iy, ix := oy*stride+ky-1, ox*stride+kx-1
							if iy < 0 || iy >= h || ix < 0 || ix >= w {
								continue
							}
							for ci := 0; ci < cin; ci++ {
								s += in[((n*h+iy)*w+ix)*cin+ci] * wt[((co*cin+ci)*3+ky)*3+kx]
							}
						}
					}
					out[((n*oh+oy)*ow+ox)*cout+co] = s
				}
			}
		}
	}
	return out
}

// refDepthwise is a depthwise 3x3 convolution, padding 1, weights [c][1][3][3].
func refDepthwise(in []float64, b, h, w, c, stride int, wt []float64) []float64 {
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	out := make([]float64, b*oh*ow*c)
	for n := 0; n < b; n++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for ch := 0; ch < c; ch++ {
					var s float64
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							iy, ix := oy*stride+ky-1, ox*stride+kx-1
							if iy >= 0 && iy < h && ix >= 0 && ix < w {
								s += in[((n*h+iy)*w+ix)*c+ch] * wt[ch*9+ky*3+kx]
							}
						}
					}
					out[((n*oh+oy)*ow+ox)*c+ch] = s
				}
			}
		}
	}
	return out
}

// refPointwise is a 1x1 convolution, weights [out][in].
func refPointwise(in []float64, cin, cout int, wt []float64) []float64 {
	rows := len(in) / cin
	out := make([]float64, rows*cout)
	for r := 0; r < rows; r++ {
		for o := 0; o < cout; o++ {
			var s float64
			for i := 0; i < cin; i++ {
				s += in[r*cin+i] * wt[o*cin+i]
			}
			out[r*cout+o] = s
		}
	}
	return out
}

// refBatchNorm normalises each channel by its batch mean and biased variance.
func refBatchNorm(z []float64, c int, gamma, beta []float64, bn map[string]refBN, name string) []float64 {
	n := len(z) / c
	out := make([]float64, len(z))
	st := refBN{mean: make([]float64, c), unbiased: make([]float64, c)}
	for ch := 0; ch < c; ch++ {
		var mean float64
		for r := 0; r < n; r++ {
			mean += z[r*c+ch]
		}
		mean /= float64(n)
		var v float64
		for r := 0; r < n; r++ {
			d := z[r*c+ch] - mean
			v += d * d
		}
		st.mean[ch], st.unbiased[ch] = mean, v/float64(n-1)
		v /= float64(n)
		for r := 0; r < n; r++ {
			out[r*c+ch] = (z[r*c+ch]-mean)/math.Sqrt(v+1e-5)*gamma[ch] + beta[ch]
		}
	}
	if bn != nil {
		bn[name] = st
	}
	return out
}

func refAvgPool(in []float64, b, area, c int) []float64 {
	out := make([]float64, b*c)
	for n := 0; n < b; n++ {
		for p := 0; p < area; p++ {
			for ch := 0; ch < c; ch++ {
				out[n*c+ch] += in[(n*area+p)*c+ch] / float64(area)
			}
		}
	}
	return out
}

func refLinear(x []float64, b, in, out int, wt, bias []float64) []float64 {
	y := make([]float64, b*out)
	for n := 0; n < b; n++ {
		for o := 0; o < out; o++ {
			s := bias[o]
			for i := 0; i < in; i++ {
				s += x[n*in+i] * wt[o*in+i]
			}
			y[n*out+o] = s
		}
	}
	return y
}

// refLogSumExp is log(sum_c exp(row[c]/temp)) in float64.
func refLogSumExp(row []float64, temp float64) float64 {
	mx := row[0]
	for _, v := range row {
		mx = math.Max(mx, v)
	}
	var s float64
	for _, v := range row {
		s += math.Exp((v - mx) / temp)
	}
	return mx/temp + math.Log(s)
}

// refLoss is the joint loss: a * sum_i CE(softmax(logits_i)) + bw * CE(fused),
// fused = sum_i w_i softmax_i / sum w, all averaged over the batch.
func refLoss(logits [][]float64, targets []float64, k int, w []float64, a, bw float64) float64 {
	b := len(targets) / k
	var wsum float64
	for _, v := range w {
		wsum += v
	}
	var loss float64
	for n := 0; n < b; n++ {
		fused := make([]float64, k)
		for i, lg := range logits {
			row := lg[n*k : (n+1)*k]
			lse := refLogSumExp(row, 1)
			for c, v := range row {
				loss -= a * targets[n*k+c] * (v - lse)
				fused[c] += w[i] * math.Exp(v-lse)
			}
		}
		for c := range fused {
			loss -= bw * targets[n*k+c] * math.Log(fused[c]/wsum)
		}
	}
	return loss / float64(b)
}

// gcSpecs are the two tiny models of the gradient checks: a stride-1 and a
// stride-2 stem, a block without expansion, a stride-2 block and a residual
// block, odd and even map sizes.
func gcSpecs() []nn.Spec {
	setting := [][4]int{{1, 16, 1, 1}, {2, 16, 2, 2}}
	a := nn.Spec{WidthMult: 0.35, RoundNearest: 8, Setting: setting, StemStride: 1, LastChannel: 24,
		NumClasses: 3, Resolution: 8, Std: [3]float32{1, 1, 1}}
	b := a
	b.WidthMult, b.Resolution, b.StemStride, b.LastChannel = 0.5, 6, 2, 16
	return []nn.Spec{a, b}
}

// tParam returns the parameter (or running statistic) and gradient slices
// of model i's tensor name.
func tParam(tb testing.TB, tr *Trainer, i int, name string) (p, g []float32) {
	tb.Helper()
	n := tr.nets[i]
	for _, tp := range n.tensors {
		if tp.name == name {
			if tp.stat {
				return n.tensorData(tp, nil), nil
			}
			return n.tensorData(tp, n.params), n.tensorData(tp, n.grads)
		}
	}
	tb.Fatalf("model %d has no tensor %s", i, name)
	return nil, nil
}

// gcSetup builds a trainer for the gradient checks with parameters moved off
// their initial values (batch-norm gammas in [0.5, 2.5] and betas in [-1, 3],
// so that ReLU6 clamps at both ends; a classifier large enough that the loss
// depends on it), random inputs and soft targets.
func gcSetup(tb testing.TB, cfg format.TrainConfig, specs []nn.Spec, fusion []float64) (*Trainer, [][]float32, []float32) {
	tb.Helper()
	tr, err := NewTrainer(specs, fusion, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for i, n := range tr.nets {
		for _, tp := range n.tensors {
			p, _ := tParam(tb, tr, i, tp.name)
			switch {
			case tp.stat:
			case strings.HasSuffix(tp.name, ".weight") && len(tp.shape) == 1: // gamma
				for j := range p {
					p[j] = float32(0.5 + 2*rng.Float64())
				}
			case len(tp.shape) == 1: // beta, classifier bias
				for j := range p {
					p[j] = float32(-1 + 4*rng.Float64())
				}
			case len(tp.shape) == 2: // classifier weight
				for j := range p {
					p[j] = float32(0.3 * rng.NormFloat64())
				}
			}
		}
		tr.repack(n)
	}
	b := cfg.Batch
	inputs := make([][]float32, len(specs))
	for i, s := range specs {
		inputs[i] = make([]float32, b*s.Resolution*s.Resolution*3)
		for j := range inputs[i] {
			inputs[i][j] = float32(rng.NormFloat64())
		}
	}
	k := specs[0].NumClasses
	targets := make([]float32, b*k)
	for n := 0; n < b; n++ {
		var s float64
		row := make([]float64, k)
		for c := range row {
			row[c] = 0.05 + rng.Float64()
			s += row[c]
		}
		for c := range row {
			targets[n*k+c] = float32(row[c] / s)
		}
	}
	return tr, inputs, targets
}

// refModels copies the trainer's parameters (and this step's dropout masks)
// into reference models.
func refModels(tr *Trainer) []*refModel {
	var ms []*refModel
	for _, n := range tr.nets {
		m := &refModel{spec: n.spec, params: map[string][]float64{}}
		for _, tp := range n.tensors {
			if !tp.stat {
				m.params[tp.name] = trainTo64(n.tensorData(tp, n.params))
			}
		}
		if tr.cfg.Dropout > 0 {
			m.mask = trainTo64(n.mask[:tr.cfg.Batch*n.last])
		}
		ms = append(ms, m)
	}
	return ms
}

func trainTo64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

// centralDiff estimates d f / d x[i] by central differences, halving the step
// until two successive estimates agree (a ReLU6 kink inside the interval
// makes them disagree).
func trainCentralDiff(x []float64, i int, f func() float64) float64 {
	x0 := x[i]
	h := 1e-5 * math.Max(1, math.Abs(x0))
	est := func(h float64) float64 {
		x[i] = x0 + h
		fp := f()
		x[i] = x0 - h
		fm := f()
		x[i] = x0
		return (fp - fm) / (2 * h)
	}
	prev := est(h)
	for k := 0; k < 4; k++ {
		h /= 4
		cur := est(h)
		if math.Abs(cur-prev) <= 1e-4*math.Max(math.Abs(cur), 1e-6) {
			return cur
		}
		prev = cur
	}
	return prev
}

// gcCompare checks analytic gradients against numeric ones for one tensor:
// each must agree to 1e-2 relative, measured against the larger of the two
// and of a floor: 1e-2 × the tensor's largest analytic gradient, or 1e-5 ×
// the model's (global), whichever is larger. Float32 values tiny next to the
// rest carry more relative rounding; the floor on the model's scale is for
// gradients that are zero in exact arithmetic, as a projection's batch-norm
// bias is when the next layer's batch norm subtracts every constant shift.
func gcCompare(t *testing.T, what string, idx []int, got []float32, want []float64, global float64) {
	t.Helper()
	var big float64
	for _, v := range got {
		big = math.Max(big, math.Abs(float64(v)))
	}
	for k, j := range idx {
		a, n := float64(got[j]), want[k]
		den := math.Max(math.Max(math.Abs(a), math.Abs(n)), math.Max(1e-2*big, 1e-5*global))
		if e := math.Abs(a-n) / den; e > 1e-2 || math.IsNaN(e) {
			t.Errorf("%s[%d]: analytic %.6g, numeric %.6g (error %.3g)", what, j, a, n, e)
		}
	}
}

func trainMaxAbs(s []float32) float64 {
	var m float64
	for _, v := range s {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// sampleIdx picks up to k indices of [0, n), always including the index of
// the largest |g|.
func trainSampleIdx(rng *rand.Rand, n, k int, g []float32) []int {
	if n <= k {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	seen := map[int]bool{}
	best := 0
	for i, v := range g[:n] {
		if math.Abs(float64(v)) > math.Abs(float64(g[best])) {
			best = i
		}
	}
	seen[best] = true
	for len(seen) < k {
		seen[rng.IntN(n)] = true
	}
	idx := make([]int, 0, k)
	for i := range seen {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// TestTrainerGradients checks the analytic gradients of every parameter
// tensor (stem, 1x1 and depthwise convolutions, batch norm in training mode,
// classifier) and of the inputs of two jointly trained models against
// central differences of the float64 reference loss, which includes ReLU6 at
// both clamps, a residual block, average pooling, dropout, cross-entropy on
// soft targets and the fused term.
func TestTrainerGradients(t *testing.T) {
	for _, i := range kernels.Available() {
		t.Run(i.String(), func(t *testing.T) {
			defer kernels.Force(i)()
			testTrainerGradients(t)
		})
	}
}

func testTrainerGradients(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 3
	cfg.LossA, cfg.LossB = 1, 0.7
	specs := gcSpecs()
	fusion := []float64{1, 0.6}
	tr, inputs, targets := gcSetup(t, cfg, specs, fusion)
	st := tr.gradients(inputs, targets, true)

	models := refModels(tr)
	in64 := make([][]float64, len(inputs))
	for i := range inputs {
		in64[i] = trainTo64(inputs[i])
	}
	tg := trainTo64(targets)
	loss := func() float64 {
		lg := make([][]float64, len(models))
		for i, m := range models {
			lg[i] = refForward(m, in64[i], cfg.Batch, nil)
		}
		return refLoss(lg, tg, specs[0].NumClasses, fusion, cfg.LossA, cfg.LossB)
	}
	want := loss()
	if math.Abs(st.Loss-want) > 1e-4*math.Abs(want) {
		t.Fatalf("loss %.7g, reference %.7g", st.Loss, want)
	}

	rng := rand.New(rand.NewPCG(3, 5))
	samples := 5
	if testing.Short() {
		samples = 2
	}
	for i, m := range models {
		for _, tp := range tr.nets[i].tensors {
			if tp.stat {
				continue
			}
			_, g := tParam(t, tr, i, tp.name)
			idx := trainSampleIdx(rng, len(g), samples, g)
			num := make([]float64, len(idx))
			for k, j := range idx {
				num[k] = trainCentralDiff(m.params[tp.name], j, loss)
			}
			gcCompare(t, fmt.Sprintf("model %d %s", i, tp.name), idx, g, num, trainMaxAbs(tr.nets[i].grads))
		}
		g := tr.nets[i].dinput[:len(inputs[i])]
		idx := trainSampleIdx(rng, len(g), 4*samples, g)
		num := make([]float64, len(idx))
		for k, j := range idx {
			num[k] = trainCentralDiff(in64[i], j, loss)
		}
		gcCompare(t, fmt.Sprintf("model %d input", i), idx, g, num, trainMaxAbs(g))
	}
}

// TestTrainerGradientsSingle checks a single model trained alone (LossB = 0,
// no dropout): the family's base-model recipe.
func TestTrainerGradientsSingle(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 2
	cfg.LossB = 0
	cfg.Dropout = 0
	specs := gcSpecs()[1:]
	tr, inputs, targets := gcSetup(t, cfg, specs, nil)
	tr.gradients(inputs, targets, false)
	m := refModels(tr)[0]
	in64, tg := trainTo64(inputs[0]), trainTo64(targets)
	loss := func() float64 {
		return refLoss([][]float64{refForward(m, in64, cfg.Batch, nil)}, tg, specs[0].NumClasses, []float64{1}, 1, 0)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, tp := range tr.nets[0].tensors {
		if tp.stat {
			continue
		}
		_, g := tParam(t, tr, 0, tp.name)
		idx := trainSampleIdx(rng, len(g), 3, g)
		num := make([]float64, len(idx))
		for k, j := range idx {
			num[k] = trainCentralDiff(m.params[tp.name], j, loss)
		}
		gcCompare(t, tp.name, idx, g, num, trainMaxAbs(tr.nets[0].grads))
	}
}

// TestTrainerRunningStats checks that one step's batch statistics reach the
// running statistics as PyTorch puts them: momentum 0.1, unbiased variance.
func TestTrainerRunningStats(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 3
	specs := gcSpecs()
	tr, inputs, targets := gcSetup(t, cfg, specs, nil)
	old := make([][]float32, len(tr.nets))
	for i, n := range tr.nets {
		old[i] = append([]float32(nil), n.stats...)
	}
	tr.gradients(inputs, targets, false)
	for i, m := range refModels(tr) {
		bn := map[string]refBN{}
		refForward(m, trainTo64(inputs[i]), cfg.Batch, bn)
		n := tr.nets[i]
		for _, l := range specs[i].Layers() {
			if l.Kind == nn.LayerClassifier {
				continue
			}
			rm, _ := tParam(t, tr, i, l.BN+".running_mean")
			rv, _ := tParam(t, tr, i, l.BN+".running_var")
			for _, tp := range n.tensors {
				if tp.name != l.BN+".running_mean" {
					continue
				}
				for c := range rm {
					wantM := 0.1*bn[l.BN].mean[c] + 0.9*float64(old[i][tp.off+c])
					wantV := 0.1*bn[l.BN].unbiased[c] + 0.9*float64(old[i][tp.off+len(rm)+c])
					if math.Abs(float64(rm[c])-wantM) > 1e-4*math.Max(1, math.Abs(wantM)) ||
						math.Abs(float64(rv[c])-wantV) > 1e-4*math.Max(1, math.Abs(wantV)) {
						t.Fatalf("model %d %s channel %d: running mean, var %v, %v; want %v, %v", i, l.BN, c, rm[c], rv[c], wantM, wantV)
					}
				}
			}
		}
	}
}

// refDistill is the distillation part of the reference loss: a*kd*T^2 times
// the mean over images of sum_i KL(q || softmax(logits_i / T)); refLoss with
// a*(1-kd) gives the rest.
func refDistill(logits [][]float64, q []float64, k int, a, kd, temp float64) float64 {
	b := len(q) / k
	var loss float64
	for n := 0; n < b; n++ {
		for _, lg := range logits {
			row := lg[n*k : (n+1)*k]
			lse := refLogSumExp(row, temp)
			for c, v := range row {
				if qc := q[n*k+c]; qc > 0 {
					loss += qc * (math.Log(qc) - (v/temp - lse))
				}
			}
		}
	}
	return a * kd * temp * temp * loss / float64(b)
}

// TestTrainerGradientsDistill checks the joint loss with a distillation
// term: the reported loss and every parameter's gradient against central
// differences of the float64 reference.
func TestTrainerGradientsDistill(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 3
	cfg.LossA, cfg.LossB = 0.8, 0.5
	cfg.KD, cfg.KDTemperature = 0.7, 3
	cfg.Dropout = 0
	specs := gcSpecs()
	fusion := []float64{1, 0.6}
	tr, inputs, targets := gcSetup(t, cfg, specs, fusion)
	k := specs[0].NumClasses
	rng := rand.New(rand.NewPCG(21, 4))
	q := make([]float32, cfg.Batch*k)
	for n := 0; n < cfg.Batch; n++ {
		var s float32
		for c := 0; c < k; c++ {
			q[n*k+c] = float32(0.05 + rng.Float64())
			s += q[n*k+c]
		}
		for c := 0; c < k; c++ {
			q[n*k+c] /= s
		}
	}
	tr.SetTeacher(q)
	st := tr.gradients(inputs, targets, false)

	models := refModels(tr)
	in64 := make([][]float64, len(inputs))
	for i := range inputs {
		in64[i] = trainTo64(inputs[i])
	}
	tg, q64 := trainTo64(targets), trainTo64(q)
	loss := func() float64 {
		lg := make([][]float64, len(models))
		for i, m := range models {
			lg[i] = refForward(m, in64[i], cfg.Batch, nil)
		}
		return refLoss(lg, tg, k, fusion, cfg.LossA*(1-cfg.KD), cfg.LossB) + refDistill(lg, q64, k, cfg.LossA, cfg.KD, cfg.KDTemperature)
	}
	want := loss()
	if math.Abs(st.Loss-want) > 1e-4*math.Abs(want) {
		t.Fatalf("loss %.7g, reference %.7g", st.Loss, want)
	}
	for i, m := range models {
		for _, tp := range tr.nets[i].tensors {
			if tp.stat {
				continue
			}
			_, g := tParam(t, tr, i, tp.name)
			idx := trainSampleIdx(rng, len(g), 3, g)
			num := make([]float64, len(idx))
			for j, x := range idx {
				num[j] = trainCentralDiff(m.params[tp.name], x, loss)
			}
			gcCompare(t, fmt.Sprintf("model %d %s", i, tp.name), idx, g, num, trainMaxAbs(tr.nets[i].grads))
		}
	}

	// A step without the teacher's probabilities is a caller bug.
	defer func() {
		if recover() == nil {
			t.Error("a distillation step without SetTeacher did not panic")
		}
	}()
	tr.gradients(inputs, targets, false)
}
