package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
)

// digitFolder writes an image folder of per random 28x28 gray images for each
// of MNIST's ten classes and returns its path.
func digitFolder(t *testing.T, per int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	for c := 0; c < 10; c++ {
		sub := filepath.Join(dir, fmt.Sprint(c))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < per; i++ {
			img := image.NewGray(image.Rect(0, 0, 28, 28))
			for j := range img.Pix {
				img.Pix[j] = uint8(rng.IntN(40) + 20*c)
			}
			f, err := os.Create(filepath.Join(sub, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	return dir
}

// TestRunDistill: a recipe with distillation refuses an untrained teacher
// and a teacher that held out another validation split; with the base
// trained on the same split it trains, recording the teacher and the split.
func TestRunDistill(t *testing.T) {
	dir := newMNISTFamily(t)
	folder := digitFolder(t, 6)
	one, eight := 1, 8
	kd, temp := 0.5, 2.0
	opts := func(base bool, val float64) Options {
		o := Options{Dir: dir, Data: folder, ValFraction: val, Threads: 1, Base: base,
			Overrides: Overrides{Epochs: &one, Batch: &eight}}
		if !base {
			o.Overrides.KD, o.Overrides.KDTemperature = &kd, &temp
		}
		return o
	}
	_, err := Run(context.Background(), opts(false, 0.2), &recorder{})
	if err == nil || !strings.Contains(err.Error(), "not trained yet") {
		t.Fatalf("distilling from an untrained base: %v; want an error saying to train it first", err)
	}
	if _, err := Run(context.Background(), opts(true, 0.2), &recorder{}); err != nil {
		t.Fatalf("training the base: %v", err)
	}
	_, err = Run(context.Background(), opts(false, 0.1), &recorder{})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "validation") {
		t.Fatalf("distilling from a base that held out another split: %v; want a usage error about the validation split", err)
	}
	if _, err := Run(context.Background(), opts(false, 0.2), &recorder{}); err != nil {
		t.Fatalf("distilling: %v", err)
	}
	man, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := man.Training
	if r.Teacher != man.Base.SHA256 || r.Teacher == "" {
		t.Errorf("training record names teacher %q, the base is %q", r.Teacher, man.Base.SHA256)
	}
	if r.Config.KD != kd || r.Config.KDTemperature != temp || r.SplitSeed() != man.BaseTraining.SplitSeed() || r.ValFraction != 0.2 {
		t.Errorf("training record %+v: want kd %v at T %v on the base's split", r, kd, temp)
	}
	if man.BaseTraining.Config.KD != 0 {
		t.Errorf("the base's record has kd %v; the base learns from labels only", man.BaseTraining.Config.KD)
	}
}

// TestDistillerTable: the teacher's rows are its softened answers on each
// image as it is and mirrored, and a batch's rows follow the images the
// batcher drew, mixed as mixup mixed them.
func TestDistillerTable(t *testing.T) {
	spec := trainCIFARSpec(0.35, 8, 64, 3)
	cfg := format.DefaultTrainConfig()
	cfg.Batch, cfg.KD, cfg.KDTemperature, cfg.PadCrop = 4, 0.5, 3, 0
	tr, err := NewTrainer([]nn.Spec{spec}, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	names, tensors := tr.Weights(0)
	w := nn.Weights{Names: names, Tensors: tensors, DTypes: map[string]string{}}
	wr := rand.New(rand.NewPCG(2, 7))
	for _, n := range names {
		w.DTypes[n] = "F32"
		x, ok := tensors[n].Data().([]float32)
		if !ok {
			continue
		}
		for j := range x { // a teacher with opinions: random weights, positive variances
			if strings.HasSuffix(n, "running_var") {
				x[j] = float32(0.5 + wr.Float64())
			} else {
				x[j] = float32(0.5 * wr.NormFloat64())
			}
		}
	}
	m, err := nn.NewModel(spec, w, "teacher")
	if err != nil {
		t.Fatal(err)
	}
	d := &data.Dataset{Name: "rgb", Classes: []string{"a", "b", "c"}}
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 10; i++ { // 10 images: the last of 3 batches of 4 is partial
		pix := make([]uint8, 8*8*3)
		for j := range pix {
			pix[j] = uint8(rng.IntN(256))
		}
		d.Samples = append(d.Samples, data.Sample{W: 8, H: 8, Pix: pix, Label: i % 3})
	}
	kd, err := newDistiller(context.Background(), m, d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess := m.NewSession(1, nil)
	bt := data.NewBatcher([]nn.Spec{spec}, 3, cfg)
	in := [][]float32{make([]float32, m.InputSize())}
	lbl := make([]int, 1)
	for i := range d.Samples {
		for view := 0; view < 2; view++ {
			bt.View(d, []int{i}, view == 1, in, lbl)
			lg := sess.Forward(in[0])
			var sum float64
			for _, v := range lg {
				sum += math.Exp(float64(v) / 3)
			}
			for c, v := range lg {
				want := math.Exp(float64(v)/3) / sum
				if got := kd.table[(i*2+view)*3+c]; math.Abs(float64(got)-want) > 1e-5 {
					t.Fatalf("image %d view %d class %d: table %v, teacher %v", i, view, c, got, want)
				}
			}
		}
	}
	if slices.Equal(kd.table[:3], kd.table[3:6]) {
		t.Error("the mirrored view has the same answer as the image: views not distinguished")
	}

	for _, mix := range []float64{0, 0.7} {
		cfg.Mixup = mix
		bt := data.NewBatcher([]nn.Spec{spec}, 3, cfg)
		inputs := [][]float32{make([]float32, cfg.Batch*m.InputSize())}
		targets, labels := make([]float32, cfg.Batch*3), make([]int, cfg.Batch)
		q := make([]float32, cfg.Batch*3)
		bt.Train(d, 1, 0, inputs, targets, labels)
		kd.fill(bt, q)
		row := func(k int) []float32 {
			si, flip, _, _ := bt.Drawn(k)
			v := 0
			if flip {
				v = 1
			}
			return kd.table[(si*2+v)*3 : (si*2+v+1)*3]
		}
		for k := 0; k < cfg.Batch; k++ {
			_, _, p, lam := bt.Drawn(k)
			if mix == 0 && lam != 1 {
				t.Fatalf("λ %v without mixup", lam)
			}
			for c := 0; c < 3; c++ {
				want := lam*float64(row(k)[c]) + (1-lam)*float64(row(p)[c])
				if math.Abs(float64(q[k*3+c])-want) > 1e-6 {
					t.Fatalf("mixup %v image %d class %d: %v, want %v", mix, k, c, q[k*3+c], want)
				}
			}
		}
	}
}
