package train

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"gorgonia.org/tensor"
)

func trainCIFARSpec(width float64, res, last, classes int) nn.Spec {
	return nn.Spec{WidthMult: width, RoundNearest: 8, Setting: cifarSetting(), StemStride: 1, LastChannel: last,
		NumClasses: classes, Resolution: res,
		Mean: [3]float32{0.4914, 0.4822, 0.4465}, Std: [3]float32{0.2470, 0.2435, 0.2616}}
}

// smallSpecs are two quick variants for the training tests.
func trainSmallSpecs(classes int) []nn.Spec {
	setting := [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 2, 2}}
	a := nn.Spec{WidthMult: 0.35, RoundNearest: 8, Setting: setting, StemStride: 1, LastChannel: 64,
		NumClasses: classes, Resolution: 16, Std: [3]float32{1, 1, 1}}
	b := a
	b.WidthMult, b.Resolution = 0.5, 12
	return []nn.Spec{a, b}
}

// squares makes a batch of the coloured-squares task: on a noisy
// background, a square of a random size and place whose colour is the class
// (red, green, blue, white, ...), rasterised at each spec's resolution.
// targets are one-hot; seed fixes everything.
func trainSquares(specs []nn.Spec, b int, seed uint64) (inputs [][]float32, targets []float32, labels []int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	k := specs[0].NumClasses
	colors := [][3]float32{{1.5, -1, -1}, {-1, 1.5, -1}, {-1, -1, 1.5}, {1.5, 1.5, 1.5}, {1.5, 1.5, -1}, {-1, 1.5, 1.5}}
	inputs = make([][]float32, len(specs))
	for i, s := range specs {
		inputs[i] = make([]float32, b*s.Resolution*s.Resolution*3)
	}
	targets = make([]float32, b*k)
	for n := 0; n < b; n++ {
		c := rng.IntN(k)
		labels = append(labels, c)
		targets[n*k+c] = 1
		size := 0.3 + 0.3*rng.Float64()
		x0, y0 := rng.Float64()*(1-size), rng.Float64()*(1-size)
		noise := rng.Uint64()
		for i, s := range specs {
			r := s.Resolution
			nr := rand.New(rand.NewPCG(noise, uint64(i)))
			img := inputs[i][n*r*r*3 : (n+1)*r*r*3]
			for y := 0; y < r; y++ {
				for x := 0; x < r; x++ {
					fy, fx := (float64(y)+0.5)/float64(r), (float64(x)+0.5)/float64(r)
					in := fx >= x0 && fx < x0+size && fy >= y0 && fy < y0+size
					for ch := 0; ch < 3; ch++ {
						v := float32(0.4 * nr.NormFloat64())
						if in {
							v += colors[c][ch]
						}
						img[(y*r+x)*3+ch] = v
					}
				}
			}
		}
	}
	return inputs, targets, labels
}

func newTrainerT(tb testing.TB, specs []nn.Spec, cfg format.TrainConfig, pool *nn.Pool) *Trainer {
	tb.Helper()
	tr, err := NewTrainer(specs, nil, cfg, pool)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// TestTrainerLossFalls trains two variants jointly on the coloured-squares
// task: the loss must fall by a wide margin and every variant, and the
// fusion, must clear chance by far.
func TestTrainerLossFalls(t *testing.T) {
	steps, batch := 80, 16
	specs := trainSmallSpecs(4)
	if testing.Short() { // qemu
		steps, batch = 40, 8
		specs[0].Resolution, specs[1].Resolution = 12, 8
	}
	cfg := format.DefaultTrainConfig()
	cfg.Batch = batch
	cfg.LR = 0.05
	cfg.Epochs, cfg.WarmupEpochs = 1, 0.1
	pool := nn.NewPool(2)
	defer pool.Close()
	tr := newTrainerT(t, specs, cfg, pool)
	var first, last float64
	correct := make([]int, len(specs)+1)
	seen := 0
	for s := 0; s < steps; s++ {
		in, tg, _ := trainSquares(specs, batch, uint64(s))
		st := tr.Step(in, tg, tr.LR(s, steps))
		if math.IsNaN(st.Loss) {
			t.Fatalf("step %d: loss is NaN", s)
		}
		if s < 5 {
			first += st.Loss / 5
		}
		if s >= steps-10 {
			last += st.Loss / 10
			for i, c := range st.Correct {
				correct[i] += c
			}
			correct[len(specs)] += st.FusedCorrect
			seen += st.Images
		}
	}
	t.Logf("loss %.3f -> %.3f; accuracy over the last 10 steps (variants..., fused): %v of %d", first, last, correct, seen)
	if !(last < 0.4*first) {
		t.Errorf("loss fell from %.3f to %.3f, want below 40%%", first, last)
	}
	for i, c := range correct {
		if acc := float64(c) / float64(seen); acc < 0.7 {
			t.Errorf("output %d: train accuracy %.2f, want at least 0.7 (chance 0.25)", i, acc)
		}
	}
}

// TestTrainerExport checks that weights exported after a few steps, loaded
// with NewModel (batch norm folded) and run by a Session, give the logits of
// the trainer's own evaluation-mode forward pass: the names, layouts and the
// batch-norm folding agree.
func TestTrainerExport(t *testing.T) {
	specs := []nn.Spec{trainCIFARSpec(0.35, 16, 128, 5), trainSmallSpecs(5)[1]}
	if testing.Short() { // qemu
		specs[0].Resolution = 8
	}
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 6
	tr := newTrainerT(t, specs, cfg, nil)
	for s := 0; s < 3; s++ {
		in, tg, _ := trainSquares(specs, cfg.Batch, uint64(s))
		tr.Step(in, tg, 0.05)
	}
	in, _, _ := trainSquares(specs, cfg.Batch, 1000)
	for i, s := range specs {
		names, tensors := tr.Weights(i)
		var buf bytes.Buffer
		if err := format.WriteSafetensors(&buf, names, tensors, nil); err != nil {
			t.Fatal(err)
		}
		st, err := format.DecodeSafetensors("export", buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		m, err := nn.NewModel(s, st.Weights(), "export")
		if err != nil {
			t.Fatal(err)
		}
		got := m.NewSession(cfg.Batch, nil).Forward(in[i])
		want := tr.evalLogits(i, in[i], cfg.Batch)
		for j := range want {
			if d := math.Abs(float64(got[j] - want[j])); d > 1e-4*math.Max(1, math.Abs(float64(want[j]))) || math.IsNaN(d) {
				t.Fatalf("model %d logit %d: Session %v, trainer %v", i, j, got[j], want[j])
			}
		}
	}
}

// trainerState returns copies of everything a step changes.
func trainerState(tr *Trainer) [][]float32 {
	var s [][]float32
	for _, n := range tr.nets {
		s = append(s, append([]float32(nil), n.params...), append([]float32(nil), n.mom...), append([]float32(nil), n.stats...))
	}
	return s
}

func trainSameBits(a, b [][]float32) (int, int, bool) {
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return i, j, false
			}
		}
	}
	return 0, 0, true
}

// TestTrainerResume trains k steps, checkpoints, loads into a fresh trainer
// and trains k more: bit for bit the same as 2k uninterrupted steps (one
// thread; dropout on, two models).
func TestTrainerResume(t *testing.T) {
	const k = 3
	specs := gcSpecs()
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 4
	cfg.Epochs = 1
	run := func(tr *Trainer, from, to int) {
		for s := from; s < to; s++ {
			in, tg, _ := trainSquares(specs, cfg.Batch, uint64(s))
			tr.Step(in, tg, tr.LR(s, 2*k))
		}
	}
	whole := newTrainerT(t, specs, cfg, nil)
	run(whole, 0, 2*k)

	first := newTrainerT(t, specs, cfg, nil)
	run(first, 0, k)
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	meta := map[string]string{"epoch": "7", "data.rng": "12345"}
	if err := first.SaveCheckpoint(path, meta); err != nil {
		t.Fatal(err)
	}
	resumed := newTrainerT(t, specs, cfg, nil)
	got, err := resumed.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(meta) || got["epoch"] != "7" || got["data.rng"] != "12345" {
		t.Errorf("metadata %v, want %v", got, meta)
	}
	if resumed.Steps() != k {
		t.Errorf("Steps() = %d after loading, want %d", resumed.Steps(), k)
	}
	run(resumed, k, 2*k)
	if i, j, ok := trainSameBits(trainerState(whole), trainerState(resumed)); !ok {
		t.Fatalf("resumed run differs from the uninterrupted one: state %d element %d", i, j)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("checkpoint directory holds %d files, want 1 (temporary files left?)", len(entries))
	}
}

// TestTrainerCheckpointErrors checks that a checkpoint of other models, or a
// damaged one, is refused with an error naming what is wrong, and leaves the
// trainer as it was.
func TestTrainerCheckpointErrors(t *testing.T) {
	specs := gcSpecs()
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 2
	dir := t.TempDir()
	tr := newTrainerT(t, specs, cfg, nil)
	path := filepath.Join(dir, "a.safetensors")
	if err := tr.SaveCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.SaveCheckpoint(path, map[string]string{"varpar.steps": "1"}); err == nil {
		t.Error("SaveCheckpoint accepted a metadata key with the trainer's prefix")
	}

	other := specs[1]
	other.Resolution = 7 // same tensors, another model
	t2 := newTrainerT(t, []nn.Spec{specs[0], other}, cfg, nil)
	before := trainerState(t2)
	_, err := t2.LoadCheckpoint(path)
	var se *nn.SpecError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "model 1") {
		t.Errorf("loading into other specs: error %v, want a *SpecError about model 1", err)
	}
	if _, _, ok := trainSameBits(before, trainerState(t2)); !ok {
		t.Error("a failed load changed the trainer")
	}
	if _, err := newTrainerT(t, specs[:1], cfg, nil).LoadCheckpoint(path); err == nil {
		t.Error("a checkpoint of two models loaded into a trainer of one")
	}

	// Damaged checkpoints: a tensor of the wrong shape, a missing one.
	st, err := format.ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := "momentum.1.features.0.0.weight"
	orig := st.Tensors[bad]
	flat := append([]float32(nil), orig.Float32s()...)
	st.Tensors[bad] = tensor.New(tensor.WithShape(len(flat)), tensor.WithBacking(flat))
	write := func(name string, names []string) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := format.WriteSafetensors(f, names, st.Tensors, st.Metadata); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var te *nn.TensorError
	_, err = tr.LoadCheckpoint(write("shape.safetensors", st.Names))
	if !errors.As(err, &te) || te.Tensor != bad || te.Field != "shape" {
		t.Errorf("wrong shape: error %v, want a shape *TensorError for %s", err, bad)
	}
	st.Tensors[bad] = orig
	var names []string
	for _, n := range st.Names {
		if n != bad {
			names = append(names, n)
		}
	}
	delete(st.Tensors, bad)
	_, err = tr.LoadCheckpoint(write("missing.safetensors", names))
	if !errors.As(err, &te) || te.Tensor != bad || te.Field != "missing" {
		t.Errorf("missing tensor: error %v, want a missing *TensorError for %s", err, bad)
	}
	if _, err := tr.LoadCheckpoint(filepath.Join(dir, "absent")); err == nil {
		t.Error("loading a file that does not exist succeeded")
	}
}

// TestTrainerDeterministic checks that two trainers with the same seed and
// thread count end with identical weights, that Step allocates nothing after
// the first, and that one and two threads agree up to rounding.
func TestTrainerDeterministic(t *testing.T) {
	specs := trainSmallSpecs(4)
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 8
	pool := nn.NewPool(2)
	defer pool.Close()
	var states [][][]float32
	for _, p := range []*nn.Pool{pool, pool, nil} {
		tr := newTrainerT(t, specs, cfg, p)
		for s := 0; s < 3; s++ {
			in, tg, _ := trainSquares(specs, cfg.Batch, uint64(s))
			tr.Step(in, tg, 0.05)
		}
		states = append(states, trainerState(tr))
	}
	if i, j, ok := trainSameBits(states[0], states[1]); !ok {
		t.Errorf("same seed and threads, different state %d element %d", i, j)
	}
	for i := range states[0] {
		for j, v := range states[0][i] {
			if w := states[2][i][j]; math.Abs(float64(v-w)) > 1e-3*math.Max(1, math.Abs(float64(w))) {
				t.Fatalf("%d threads and 1 thread: state %d element %d is %v and %v", pool.Threads(), i, j, v, w)
			}
		}
	}

	tr := newTrainerT(t, specs, cfg, pool)
	in, tg, _ := trainSquares(specs, cfg.Batch, 1)
	tr.Step(in, tg, 0.05)
	if a := testing.AllocsPerRun(3, func() { tr.Step(in, tg, 0.05) }); a != 0 {
		t.Errorf("Step allocates %v times per call, want 0", a)
	}
	// A last, partial batch.
	tr.Step([][]float32{in[0][:len(in[0])/2], in[1][:len(in[1])/2]}, tg[:len(tg)/2], 0.05)
}

func TestNewTrainerErrors(t *testing.T) {
	specs := gcSpecs()
	ok := format.DefaultTrainConfig()
	tests := []struct {
		name   string
		specs  []nn.Spec
		fusion []float64
		edit   func(*format.TrainConfig)
		want   string
	}{
		{"no models", nil, nil, nil, "no models"},
		{"classes differ", []nn.Spec{specs[0], func() nn.Spec { s := specs[1]; s.NumClasses = 4; return s }()}, nil, nil, "model 1 has 4 classes"},
		{"bad spec", []nn.Spec{func() nn.Spec { s := specs[0]; s.WidthMult = -1; return s }()}, nil, nil, "width_mult"},
		{"fusion count", specs, []float64{1}, nil, "1 fusion weights for 2 models"},
		{"fusion negative", specs, []float64{1, -1}, nil, "fusion weight 1"},
		{"fusion zero", specs, []float64{0, 0}, nil, "all zero"},
		{"batch", specs, nil, func(c *format.TrainConfig) { c.Batch = 0 }, "batch 0"},
		{"batch one", []nn.Spec{func() nn.Spec { s := specs[1]; s.Resolution = 2; return s }()}, nil, func(c *format.TrainConfig) { c.Batch = 1 }, "more than one value per channel"},
		{"momentum", specs, nil, func(c *format.TrainConfig) { c.Momentum = 1 }, "momentum"},
		{"nesterov", specs, nil, func(c *format.TrainConfig) { c.Momentum = 0 }, "Nesterov"},
		{"loss weights", specs, nil, func(c *format.TrainConfig) { c.LossA, c.LossB = 0, 0 }, "loss weights"},
		{"dropout", specs, nil, func(c *format.TrainConfig) { c.Dropout = 1 }, "dropout"},
		{"schedule", specs, nil, func(c *format.TrainConfig) { c.Schedule = "step" }, "schedule"},
		{"epochs", specs, nil, func(c *format.TrainConfig) { c.Epochs = 0 }, "0 epochs"},
		{"label smoothing", specs, nil, func(c *format.TrainConfig) { c.LabelSmoothing = 1 }, "label smoothing 1"},
		{"mixup", specs, nil, func(c *format.TrainConfig) { c.Mixup = math.Inf(1) }, "mixup alpha"},
	}
	for _, tc := range tests {
		cfg := ok
		cfg.Batch = 2
		if tc.edit != nil {
			tc.edit(&cfg)
		}
		_, err := NewTrainer(tc.specs, tc.fusion, cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestTrainerLR(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.LR, cfg.Epochs, cfg.WarmupEpochs = 0.1, 10, 1
	tests := []struct {
		schedule    string
		step, total int
		want        float64
	}{
		{"cosine", 0, 100, 0},
		{"cosine", 5, 100, 0.05},
		{"cosine", 10, 100, 0.1},
		{"cosine", 55, 100, 0.05},
		{"cosine", 100, 100, 0},
		{"cosine", 500, 100, 0},
		{"onecycle", 0, 100, 0.004},
		{"onecycle", 10, 100, 0.1},
		{"onecycle", 55, 100, 0.1/2 + 0.004e-4/2},
		{"onecycle", 100, 100, 0.004e-4},
		{"cosine", 3, 0, 0.1},
	}
	for _, tc := range tests {
		cfg.Schedule = tc.schedule
		if got := scheduleLR(&cfg, tc.step, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s step %d of %d: got %v, want %v", tc.schedule, tc.step, tc.total, got, tc.want)
		}
	}
}

// TestTrainerNonTemporal checks that writing tensors through scratch and
// non-temporal stores (large layers) computes exactly what writing them in
// place does (small ones): the test models are small, so the thresholds are
// lowered to send every layer down the non-temporal path.
func TestTrainerNonTemporal(t *testing.T) {
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 3
	specs := gcSpecs()
	a, inputs, targets := gcSetup(t, cfg, specs, nil)
	oldZ, oldG := ntZBytes, ntGBytes
	ntZBytes, ntGBytes = 0, 0
	b, _, _ := gcSetup(t, cfg, specs, nil)
	ntZBytes, ntGBytes = oldZ, oldG
	for _, n := range b.nets {
		for _, l := range n.convs {
			if !l.ntZ || !l.ntG {
				t.Fatalf("layer %s not on the non-temporal path", l.Name)
			}
		}
	}
	a.gradients(inputs, targets, true)
	b.gradients(inputs, targets, true)
	for i := range a.nets {
		na, nb := a.nets[i], b.nets[i]
		if j, k, ok := trainSameBits([][]float32{na.grads, na.stats, na.dinput}, [][]float32{nb.grads, nb.stats, nb.dinput}); !ok {
			t.Fatalf("model %d: non-temporal path differs: slice %d element %d", i, j, k)
		}
	}
}

// FuzzLoadCheckpoint feeds LoadCheckpoint damaged checkpoints: it must
// return an error (never panic) and then leave the trainer as it was, step
// count included, or load finite values. It decodes from memory (LoadCheckpoint's file reading is
// ReadSafetensors, fuzzed on its own) so that each run is cheap.
func FuzzLoadCheckpoint(f *testing.F) {
	specs := gcSpecs()
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 2
	src := newTrainerT(f, specs, cfg, nil)
	in, tg, _ := trainSquares(specs, cfg.Batch, 1)
	src.Step(in, tg, 0.1)
	path := filepath.Join(f.TempDir(), "ckpt.safetensors")
	if err := src.SaveCheckpoint(path, map[string]string{"epoch": "1"}); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	st, err := format.DecodeSafetensors("seed", good)
	if err != nil {
		f.Fatal(err)
	}
	for _, kv := range [][2]string{{ckptSteps, "-1"}, {ckptSteps, "x"}, {ckptModels, "3"}, {ckptSpec + "1", "{"}, {ckptVersion, "2"}} {
		md := map[string]string{}
		for k, v := range st.Metadata {
			md[k] = v
		}
		md[kv[0]] = kv[1]
		var buf bytes.Buffer
		if err := format.WriteSafetensors(&buf, st.Names, st.Tensors, md); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	// A NaN where a weight should be.
	name := st.Names[0]
	nan := append([]float32(nil), st.Tensors[name].Float32s()...)
	nan[0] = float32(math.NaN())
	tensors := map[string]*tensor.Dense{}
	for k, v := range st.Tensors {
		tensors[k] = v
	}
	tensors[name] = tensor.New(tensor.WithShape(st.Tensors[name].Shape()...), tensor.WithBacking(nan))
	var buf bytes.Buffer
	if err := format.WriteSafetensors(&buf, st.Names, tensors, st.Metadata); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())

	dst := newTrainerT(f, specs, cfg, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		before, steps := trainerState(dst), dst.Steps()
		st, err := format.DecodeSafetensors("fuzz", data)
		var meta map[string]string
		if err == nil {
			meta, err = dst.restore("fuzz", st)
		}
		if err != nil {
			if _, _, ok := trainSameBits(before, trainerState(dst)); !ok || dst.Steps() != steps {
				t.Fatalf("a refused checkpoint (%v) changed the trainer", err)
			}
			return
		}
		if meta == nil {
			t.Error("loaded without returning the metadata")
		}
		for _, s := range trainerState(dst) {
			for _, v := range s {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("loaded a non-finite value")
				}
			}
		}
	})
}
