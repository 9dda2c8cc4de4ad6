package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
)

// tinyDataset is n gray 8x8 images of two classes.
func tinyDataset(n int) *data.Dataset {
	d := &data.Dataset{Name: "tiny", Classes: []string{"a", "b"}}
	for i := 0; i < n; i++ {
		pix := make([]uint8, 8*8*3)
		for j := range pix {
			pix[j] = uint8(i * 7 * (i % 2))
		}
		d.Samples = append(d.Samples, data.Sample{W: 8, H: 8, Pix: pix, Label: i % 2})
	}
	return d
}

// recorder is a Progress that cancels its context after a number of steps.
type recorder struct {
	cancel      context.CancelFunc
	cancelAfter int
	steps       int
}

func (r *recorder) Note(string)                       {}
func (r *recorder) Start(Start)                       {}
func (r *recorder) Epoch(int, *EpochStats, []float64) {}
func (r *recorder) Step(done, epoch int, sum *EpochStats) {
	r.steps++
	if r.steps == r.cancelAfter {
		r.cancel()
	}
}

// TestRunEpochCancel: cancelling the context mid-epoch stops the epoch after
// the current step with the context's error, and the prefetching goroutine
// has exited when runEpoch returns.
func TestRunEpochCancel(t *testing.T) {
	spec := trainCIFARSpec(0.35, 8, 64, 2)
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 2
	tr, err := NewTrainer([]nn.Spec{spec}, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := tinyDataset(40)
	per := data.BatchesPerEpoch(d, cfg.Batch)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{cancel: cancel, cancelAfter: 3}
	var sum EpochStats
	stopped, err := runEpoch(ctx, tr, nil, d, []nn.Spec{spec}, cfg, 0, per, per, 0, rec, &sum)
	if stopped || !errors.Is(err, context.Canceled) {
		t.Fatalf("runEpoch after cancel: stopped %v, err %v; want context.Canceled", stopped, err)
	}
	if rec.steps != 3 || sum.Steps != 3 {
		t.Errorf("%d steps reported, %d summed; want 3 (cancelled after the third of %d)", rec.steps, sum.Steps, per)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after runEpoch, %d before: the producer leaked", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRunEpochMaxSteps: MaxSteps stops the epoch early without an error, and
// a full epoch runs every batch.
func TestRunEpochMaxSteps(t *testing.T) {
	spec := trainCIFARSpec(0.35, 8, 64, 2)
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 2
	tr, err := NewTrainer([]nn.Spec{spec}, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := tinyDataset(20)
	per := data.BatchesPerEpoch(d, cfg.Batch)
	rec := &recorder{}
	var sum EpochStats
	stopped, err := runEpoch(context.Background(), tr, nil, d, []nn.Spec{spec}, cfg, 0, per, 2*per, 4, rec, &sum)
	if !stopped || err != nil || sum.Steps != 4 {
		t.Fatalf("MaxSteps 4: stopped %v, err %v, %d steps; want stopped after 4", stopped, err, sum.Steps)
	}
	sum = EpochStats{}
	stopped, err = runEpoch(context.Background(), tr, nil, d, []nn.Spec{spec}, cfg, 1, per, 2*per, 0, rec, &sum)
	if stopped || err != nil || sum.Steps != per || sum.Images != per*cfg.Batch {
		t.Fatalf("full epoch: stopped %v, err %v, %d steps of %d images; want %d steps of %d", stopped, err, sum.Steps, sum.Images, per, per*cfg.Batch)
	}
}

// TestResumeRecord: a resume is refused exactly when the recipe or data
// differ, not when only the progress fields do.
func TestResumeRecord(t *testing.T) {
	a := resumeRecord{Epoch: 2, Config: format.DefaultTrainConfig(), Data: "x", ValFraction: 0.1, Limit: 5}
	b := a
	b.Epoch, b.WallSeconds, b.Threads = 0, 3, 4
	if !a.sameRun(&b) {
		t.Error("records differing only in progress are not the same run")
	}
	b.Config.LR *= 2
	if a.sameRun(&b) {
		t.Error("records with another learning rate are the same run")
	}
}

// newMNISTFamily writes a one-variant MNIST family with initial weights to a
// temporary directory, as varpar family new does.
func newMNISTFamily(t *testing.T) string {
	t.Helper()
	p, err := NewPreset("mnist", 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := &p.Manifest
	m.Training = &format.TrainingRecord{Config: p.Recipe}
	all := []*format.VariantInfo{&m.Variants[0]}
	if m.Base != nil {
		all = append(all, m.Base)
	}
	for _, v := range all {
		tr, err := NewTrainer([]nn.Spec{v.Spec}, []float64{1}, p.Recipe, nil)
		if err != nil {
			t.Fatal(err)
		}
		names, tensors := tr.Weights(0)
		if err := format.SaveWeights(dir, v, names, tensors); err != nil {
			t.Fatal(err)
		}
	}
	if err := format.SaveManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunRefusesOldCheckpoint: a checkpoint written before the run record
// existed (its metadata a loose map of strings) is refused, naming the file
// and saying to start over, and is left in place.
func TestRunRefusesOldCheckpoint(t *testing.T) {
	dir := newMNISTFamily(t)
	man, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	o := Options{
		Dir: dir, Data: filepath.Join("..", "data", "testdata", "datasets", "tiny-images-idx3-ubyte.gz"),
		Threads: 1, Resume: true, Overrides: Overrides{Batch: &one},
	}
	cfg := man.Training.Config
	cfg.Batch = 1
	tr, err := NewTrainer([]nn.Spec{man.Variants[0].Spec}, man.FusionWeights(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := CheckpointPath(dir, false)
	old := map[string]string{"epoch": "1", "data": o.Data, "val_fraction": "0", "limit": "0"}
	if err := tr.SaveCheckpoint(ckpt, old); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), o, &recorder{})
	if err == nil || !strings.Contains(err.Error(), ckpt) || !strings.Contains(err.Error(), "start over") {
		t.Fatalf("Run --resume over an old checkpoint: %v; want an error naming %s and saying to start over", err, ckpt)
	}
	if _, err := os.Stat(ckpt); err != nil {
		t.Errorf("the refused checkpoint is gone: %v", err)
	}
}
