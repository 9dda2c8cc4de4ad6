package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
)

// The training driver: what `varpar train` does, from a family directory and
// a data set to trained weights and an updated manifest, with a checkpoint
// after every epoch so that an interrupted run (even kill -9) resumes
// bit-exactly.

// Options says what Run trains and how. The recipe is the family's
// (family.json's training record, the base's own for Base), with Overrides on
// top.
type Options struct {
	Dir         string           // family directory, holding family.json
	Data        string           // training data: MNIST IDX images file, image folder, or .tar/.tar.gz
	Load        data.LoadOptions // how to load it (bad images, warnings)
	ValFraction float64          // part of the data held out for validation, 0 <= f < 1
	ValSeed     int64            // seed of the validation split (0: the recipe's seed)
	Limit       int              // train on a stratified subset of this many images (0: all)
	Threads     int              // compute threads (0: all cores)
	Resume      bool             // continue the interrupted run from its checkpoint
	Base        bool             // train the family's base model alone instead of the variants
	MaxSteps    int              // stop after this many steps in total, writing nothing (0: no limit)
	Overrides   Overrides        // recipe fields set on the command line
	Command     string           // the command line, for the manifest's training record
}

// Overrides are recipe fields that replace the family's; nil leaves the
// family's value.
type Overrides struct {
	Epochs         *int
	Batch          *int
	Seed           *int64
	LR             *float64
	LossA          *float64
	LossB          *float64
	Mixup          *float64
	LabelSmoothing *float64
	Cutout         *int
	KD             *float64
	KDTemperature  *float64
}

func (o Overrides) apply(cfg *format.TrainConfig) {
	set := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	if o.Epochs != nil {
		cfg.Epochs = *o.Epochs
	}
	if o.Batch != nil {
		cfg.Batch = *o.Batch
	}
	if o.Seed != nil {
		cfg.Seed = *o.Seed
	}
	set(&cfg.LR, o.LR)
	set(&cfg.LossA, o.LossA)
	set(&cfg.LossB, o.LossB)
	set(&cfg.Mixup, o.Mixup)
	set(&cfg.LabelSmoothing, o.LabelSmoothing)
	if o.Cutout != nil {
		cfg.Cutout = *o.Cutout
	}
	set(&cfg.KD, o.KD)
	set(&cfg.KDTemperature, o.KDTemperature)
}

// UsageError reports options that no run can use (a negative count, a recipe
// field out of range): the caller's input, not the family or the data.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(f string, args ...any) error { return &UsageError{fmt.Errorf(f, args...)} }

// Progress receives what a run reports; Run calls it from the goroutine that
// called Run.
type Progress interface {
	// Note is a line of information: the data loaded, a resume, a caveat.
	Note(msg string)
	// Start is called once, before the first step.
	Start(s Start)
	// Step is called after every step; done counts steps over the whole
	// run, resumed epochs included, and sum is the current epoch's so far.
	Step(done, epoch int, sum *EpochStats)
	// Epoch is called after every epoch, with the validation accuracies
	// (per model, then fused when there are several; nil without
	// validation data).
	Epoch(epoch int, sum *EpochStats, val []float64)
}

// Start describes a run about to train.
type Start struct {
	Family        string   // the family's name
	IDs           []string // the models trained, in order
	Base          bool     // training the base model alone
	Epochs        int
	StepsPerEpoch int
	Batch         int
	Threads       int
	ISA           string
	Done          int // steps done before this run (a resume)
}

// EpochStats sums the steps of one epoch.
type EpochStats struct {
	Loss         float64 // summed over steps
	Steps        int
	Images       int
	Correct      []int // per model
	FusedCorrect int
}

func (e *EpochStats) add(st StepStats) {
	e.Loss += st.Loss
	e.Steps++
	e.Images += st.Images
	if e.Correct == nil {
		e.Correct = make([]int, len(st.Correct))
	}
	for i, c := range st.Correct {
		e.Correct[i] += c
	}
	e.FusedCorrect += st.FusedCorrect
}

// Result is what a finished (or stopped) run did.
type Result struct {
	Stopped     bool    // MaxSteps reached; nothing written
	Manifest    string  // the manifest written
	WallSeconds float64 // training time, resumed runs included
}

// CheckpointPath is where a run on the family in dir keeps its checkpoint.
func CheckpointPath(dir string, base bool) string {
	if base {
		return filepath.Join(dir, ".train-base.ckpt")
	}
	return filepath.Join(dir, ".train-variants.ckpt")
}

// resumeKey is the checkpoint metadata key holding the run's Resume record.
const resumeKey = "run"

// resumeRecord is what a run writes into its checkpoint besides the
// trainer's state: enough to refuse a resume with another recipe or data, and
// to carry the epoch count and wall time over.
type resumeRecord struct {
	Epoch       int                `json:"epoch"` // epochs done
	Config      format.TrainConfig `json:"config"`
	Data        string             `json:"data"`
	ValFraction float64            `json:"val_fraction"`
	ValSeed     int64              `json:"val_seed,omitempty"`
	Teacher     string             `json:"teacher,omitempty"` // the base model's SHA-256 when distilling
	Limit       int                `json:"limit"`
	WallSeconds float64            `json:"wall_seconds"`
	Threads     int                `json:"threads"`
}

func (r *resumeRecord) sameRun(o *resumeRecord) bool {
	return r.Config == o.Config && r.Data == o.Data && r.ValFraction == o.ValFraction && r.Limit == o.Limit &&
		r.ValSeed == o.ValSeed && r.Teacher == o.Teacher
}

// Run trains the family in o.Dir: every variant jointly, or with o.Base its
// base model alone. It writes a checkpoint after every epoch and at the end
// the weights and the manifest that names them. Cancelling ctx stops it
// between steps (the last epoch's checkpoint stays for a resume) and returns
// ctx's error. Errors in o are *UsageError.
func Run(ctx context.Context, o Options, p Progress) (*Result, error) {
	if o.Dir == "" || o.Data == "" {
		return nil, usagef("a family directory and training data are required")
	}
	if o.ValFraction < 0 || o.ValFraction >= 1 {
		return nil, usagef("--val-fraction %v: want 0 <= F < 1", o.ValFraction)
	}
	if o.Threads < 0 || o.MaxSteps < 0 || o.Limit < 0 {
		return nil, usagef("--threads, --limit and --max-steps must not be negative")
	}
	manPath := filepath.Join(o.Dir, "family.json")
	man, err := format.ReadManifest(o.Dir)
	if err != nil {
		return nil, err
	}
	if o.Base && man.Base == nil {
		return nil, fmt.Errorf("%s has no base model to train", manPath)
	}
	// The recipe: the family's, then the overrides. The base uses its own
	// recipe when the family has one, else the variants'.
	cfg := format.DefaultTrainConfig()
	if o.Base && man.BaseTraining != nil {
		cfg = man.BaseTraining.Config
	} else if man.Training != nil {
		cfg = man.Training.Config
	}
	o.Overrides.apply(&cfg)
	if err := cfg.Validate(); err != nil {
		return nil, &UsageError{err}
	}
	var infos []*format.VariantInfo
	var fusion []float64
	if o.Base {
		infos = []*format.VariantInfo{man.Base}
		fusion = []float64{1}
		cfg.LossB = 0
		cfg.KD, cfg.KDTemperature = 0, 0 // the base is the teacher; it learns from the labels only
	} else {
		for i := range man.Variants {
			infos = append(infos, &man.Variants[i])
		}
		fusion = man.FusionWeights()
	}
	specs := make([]nn.Spec, len(infos))
	ids := make([]string, len(infos))
	for i, v := range infos {
		specs[i], ids[i] = v.Spec, v.ID
	}

	// The teacher: the family's trained base model, run by the inference
	// engine on each batch at its own resolution.
	var teacher *nn.Model
	if cfg.KD > 0 {
		if man.Base == nil {
			return nil, fmt.Errorf("the recipe distils from the base model (kd %v), but %s has no base model", cfg.KD, manPath)
		}
		if man.BaseTraining == nil || man.Base.SHA256 == "" {
			return nil, fmt.Errorf("the recipe distils from the base model (kd %v), but %s is not trained yet: run varpar train --base first", cfg.KD, man.Base.ID)
		}
		if teacher, err = format.LoadVariant(o.Dir, *man.Base); err != nil {
			return nil, fmt.Errorf("the teacher (the base model): %w", err)
		}
	}
	valSeed := o.ValSeed
	if valSeed == 0 {
		valSeed = cfg.Seed
		if r := man.Training; o.Base && man.BaseTraining != nil {
			valSeed = man.BaseTraining.SplitSeed()
		} else if !o.Base && r != nil {
			valSeed = r.SplitSeed()
		}
	}
	if teacher != nil {
		// The teacher must not have seen the images that measure the
		// students: both runs hold out the same split.
		if b := man.BaseTraining; b.ValFraction != o.ValFraction || b.SplitSeed() != valSeed {
			return nil, usagef("distilling from a base model trained with validation split %v (seed %d) into a run with %v (seed %d): the teacher would have trained on the students' validation images; use the same --val-fraction and --val-seed",
				b.ValFraction, b.SplitSeed(), o.ValFraction, valSeed)
		}
	}

	ckpt := CheckpointPath(o.Dir, o.Base)
	if _, err := os.Stat(ckpt); err == nil && !o.Resume {
		return nil, fmt.Errorf("%s exists: an earlier run was interrupted; pass --resume to continue it, or delete the file to start over", ckpt)
	} else if errors.Is(err, fs.ErrNotExist) && o.Resume {
		return nil, fmt.Errorf("--resume: no checkpoint %s to resume from", ckpt)
	}

	start := time.Now()
	all, err := data.LoadDataset(o.Data, o.Load)
	if err != nil {
		return nil, err
	}
	p.Note(fmt.Sprintf("loaded %s: %d images, %d classes in %.1fs", o.Data, len(all.Samples), len(all.Classes), time.Since(start).Seconds()))
	if all.Ignored > 0 {
		p.Note(fmt.Sprintf("note: %d files left out: not named *.jpg, *.jpeg or *.png, or not inside a class folder (e.g. %s)", all.Ignored, all.IgnoredExample))
	}
	if !slices.Equal(all.Classes, man.Classes) {
		return nil, fmt.Errorf("%s: the data's classes %v differ from the family's %v", o.Data, all.Classes, man.Classes)
	}
	trainSet, val := Partition(all, o.Limit, cfg.Seed, o.ValFraction, valSeed)
	perEpoch := data.BatchesPerEpoch(trainSet, cfg.Batch)
	if perEpoch < 1 {
		return nil, fmt.Errorf("%s: %d training images, fewer than one batch of %d", o.Data, len(trainSet.Samples), cfg.Batch)
	}

	pool := nn.NewPool(o.Threads)
	defer pool.Close()
	tr, err := NewTrainer(specs, fusion, cfg, pool)
	if err != nil {
		return nil, err
	}
	rec := resumeRecord{Config: cfg, Data: o.Data, ValFraction: o.ValFraction, ValSeed: valSeed, Limit: o.Limit, Threads: pool.Threads()}
	var kd *distiller
	var teacherSeconds float64 // counted in the run's wall time
	if teacher != nil {
		rec.Teacher = man.Base.SHA256
		t0 := time.Now()
		if kd, err = newDistiller(ctx, teacher, trainSet, cfg, pool); err != nil {
			return nil, err
		}
		teacherSeconds = time.Since(t0).Seconds()
		p.Note(fmt.Sprintf("the teacher %s answered for %d training images, as they are and mirrored, in %.0fs", man.Base.ID, len(trainSet.Samples), teacherSeconds))
	}
	if o.Resume {
		meta, err := tr.LoadCheckpoint(ckpt)
		if err != nil {
			return nil, err
		}
		js, ok := meta[resumeKey]
		if !ok {
			return nil, fmt.Errorf("%s was written by an older varpar, whose checkpoints this one cannot resume; delete it to start over", ckpt)
		}
		var old resumeRecord
		if err := json.Unmarshal([]byte(js), &old); err != nil {
			return nil, fmt.Errorf("%s: bad run record in checkpoint: %w", ckpt, err)
		}
		if !old.sameRun(&rec) {
			oldCfg, _ := json.Marshal(old.Config)
			return nil, fmt.Errorf("%s was written by a run with another recipe or data (%s, data %s, val %v, limit %d); resume with the same flags",
				ckpt, oldCfg, old.Data, old.ValFraction, old.Limit)
		}
		if old.Epoch < 0 || old.Epoch > cfg.Epochs {
			return nil, fmt.Errorf("%s: bad epoch %d in checkpoint", ckpt, old.Epoch)
		}
		rec.Epoch, rec.WallSeconds = old.Epoch, old.WallSeconds
		p.Note(fmt.Sprintf("resuming %s after epoch %d of %d", ckpt, old.Epoch, cfg.Epochs))
		if old.Threads != 0 && old.Threads != pool.Threads() {
			p.Note(fmt.Sprintf("note: the checkpoint was written on %d threads and this run has %d: it trains on, but the weights will not be bit-identical to an uninterrupted run (--threads %d would be)",
				old.Threads, pool.Threads(), old.Threads))
		}
	}

	p.Start(Start{Family: man.Name, IDs: ids, Base: o.Base, Epochs: cfg.Epochs, StepsPerEpoch: perEpoch, Batch: cfg.Batch,
		Threads: pool.Threads(), ISA: nn.ISA(), Done: rec.Epoch * perEpoch})

	total := cfg.Epochs * perEpoch
	wallBefore, runStart := rec.WallSeconds+teacherSeconds, time.Now()
	var valAcc []float64
	for epoch := rec.Epoch; epoch < cfg.Epochs; epoch++ {
		var sum EpochStats
		stopped, err := runEpoch(ctx, tr, kd, trainSet, specs, cfg, epoch, perEpoch, total, o.MaxSteps, p, &sum)
		if err != nil {
			return nil, err
		}
		if stopped {
			return &Result{Stopped: true}, nil
		}
		if val != nil {
			if valAcc, err = validate(tr, man, infos, fusion, val, pool); err != nil {
				return nil, err
			}
		}
		p.Epoch(epoch, &sum, valAcc)
		rec.Epoch = epoch + 1
		rec.WallSeconds = wallBefore + time.Since(runStart).Seconds()
		js, err := json.Marshal(&rec)
		if err != nil {
			return nil, err
		}
		if err := tr.SaveCheckpoint(ckpt, map[string]string{resumeKey: string(js)}); err != nil {
			return nil, err
		}
	}
	if valAcc == nil && val != nil {
		// Resumed from the last epoch's checkpoint: nothing was trained
		// in this run, but the record still gets its validation.
		if valAcc, err = validate(tr, man, infos, fusion, val, pool); err != nil {
			return nil, err
		}
	}
	// Write the weights, then the manifest that names them.
	for i, v := range infos {
		names, tensors := tr.Weights(i)
		if err := format.SaveWeights(o.Dir, v, names, tensors); err != nil {
			return nil, err
		}
		if !o.Base {
			v.FusionWeight = fusion[i]
		}
	}
	wall := wallBefore + time.Since(runStart).Seconds()
	record := &format.TrainingRecord{
		Command: o.Command, Data: o.Data, ValFraction: o.ValFraction, ValSeed: valSeed, Teacher: rec.Teacher, Limit: o.Limit,
		Config: cfg, Epochs: cfg.Epochs, Threads: pool.Threads(), WallSeconds: wall,
		ImagesPerS:  float64(cfg.Epochs*perEpoch*cfg.Batch) / wall, // over the whole run, resumes included
		ValAccuracy: valAcc, Machine: machine(), Finished: time.Now().UTC().Format(time.RFC3339),
	}
	if o.Base {
		man.BaseTraining = record
	} else {
		man.Training = record
	}
	if err := format.SaveManifest(o.Dir, man); err != nil {
		return nil, err
	}
	os.Remove(ckpt)
	return &Result{Manifest: manPath, WallSeconds: wall}, nil
}

// Partition is how a run divides its data: a stratified subset of limit
// images drawn with seed (limit 0: all of them), then valFraction of that
// held out for validation, drawn with valSeed (val is nil when valFraction is
// 0). Evaluation uses it to find a run's validation images again.
func Partition(all *data.Dataset, limit int, seed int64, valFraction float64, valSeed int64) (trainSet, val *data.Dataset) {
	if limit > 0 && limit < len(all.Samples) {
		_, all = all.Split(float64(limit)/float64(len(all.Samples)), seed)
	}
	if valFraction > 0 {
		return all.Split(valFraction, valSeed)
	}
	return all, nil
}

// HeldOut returns the training and validation images of the run rec
// records, from the data it was trained on.
func HeldOut(all *data.Dataset, rec *format.TrainingRecord) (trainSet, val *data.Dataset) {
	return Partition(all, rec.Limit, rec.Config.Seed, rec.ValFraction, rec.SplitSeed())
}

// runEpoch trains one epoch on batches a producer goroutine prepares, and
// reports whether MaxSteps stopped it. The producer is stopped and waited
// for before runEpoch returns, whatever happens.
func runEpoch(ctx context.Context, tr *Trainer, kd *distiller, d *data.Dataset, specs []nn.Spec, cfg format.TrainConfig,
	epoch, perEpoch, total, maxSteps int, p Progress, sum *EpochStats) (stopped bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	batches := prefetch(ctx, d, specs, cfg, kd, epoch, perEpoch)
	defer batches.wait()
	defer cancel() // runs first: the producer stops, then wait drains it
	for b := range batches.ch {
		step := epoch*perEpoch + b.index
		if kd != nil {
			tr.SetTeacher(b.teacher)
		}
		st := tr.Step(b.inputs, b.targets, tr.LR(step, total))
		b.release()
		sum.add(st)
		p.Step(step+1, epoch, sum)
		if maxSteps > 0 && step+1 >= maxSteps {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	// The producer also ends early when ctx is cancelled.
	return false, ctx.Err()
}

// validate measures the current weights on the held-out data through the
// inference engine (batch norm with running statistics), as serving will.
func validate(tr *Trainer, man *format.Manifest, infos []*format.VariantInfo, fusion []float64, val *data.Dataset, pool *nn.Pool) ([]float64, error) {
	f := &format.Family{Manifest: &format.Manifest{Format: man.Format, Name: man.Name, Classes: man.Classes}, Weights: fusion}
	for i, v := range infos {
		names, tensors := tr.Weights(i)
		w := nn.Weights{Names: names, Tensors: tensors, DTypes: map[string]string{}}
		for _, n := range names {
			w.DTypes[n] = "F32"
		}
		m, err := nn.NewModel(v.Spec, w, v.ID)
		if err != nil {
			return nil, err
		}
		f.Models = append(f.Models, m)
		f.Manifest.Variants = append(f.Manifest.Variants, *v)
	}
	k := max(1, len(man.Classes)/2)
	rep, err := Evaluate(f, val, k, pool, nil)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, v := range rep.Variants {
		out = append(out, v.Accuracy)
	}
	if len(infos) > 1 {
		out = append(out, rep.Fused)
	}
	return out, nil
}

// distiller holds the teacher's answers for every training image, computed
// once when a run starts (or resumes): softmax(logits / T) of the base model
// on each image as it is and mirrored, the two views training's flip draws
// from. A batch's teacher rows are looked up, not computed: running the
// teacher on every augmented batch would add the base's forward pass
// (88M MACs for the CIFAR-10 base, more than the four variants' forward
// passes together) to every image of every epoch, and a crop offset of a
// few pixels changes its answer little.
type distiller struct {
	classes int
	table   []float32 // (sample*2 + mirrored) × classes
}

func newDistiller(ctx context.Context, m *nn.Model, d *data.Dataset, cfg format.TrainConfig, pool *nn.Pool) (*distiller, error) {
	k := m.Classes()
	n := len(d.Samples)
	kd := &distiller{classes: k, table: make([]float32, n*2*k)}
	batch := cfg.Batch
	sess := m.NewSession(batch, pool)
	bt := data.NewBatcher([]nn.Spec{m.Spec}, k, cfg)
	in := [][]float32{make([]float32, batch*m.InputSize())}
	labels := make([]int, batch)
	idx := make([]int, 0, batch)
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx = idx[:0]
		for i := start; i < min(n, start+batch); i++ {
			idx = append(idx, i)
		}
		for view := 0; view < 2; view++ {
			bt.View(d, idx, view == 1, in, labels)
			lg := sess.Forward(in[0]) // rows past len(idx) hold the previous batch's images; ignored
			for r, si := range idx {
				row, out := lg[r*k:(r+1)*k], kd.table[(si*2+view)*k:(si*2+view+1)*k]
				mx := logSumExp(row, cfg.KDTemperature)
				for c, v := range row {
					out[c] = float32(math.Exp(float64(v)/cfg.KDTemperature - mx))
				}
			}
		}
	}
	return kd, nil
}

// fill writes the teacher's rows for the batch bt drew last into q: each
// image's view, mixed with its partner's as its input was under mixup.
func (kd *distiller) fill(bt *data.Batcher, q []float32) {
	k := kd.classes
	row := func(img int) []float32 {
		si, flip, _, _ := bt.Drawn(img)
		v := 0
		if flip {
			v = 1
		}
		return kd.table[(si*2+v)*k : (si*2+v+1)*k]
	}
	for img := 0; img < len(q)/k; img++ {
		out := q[img*k : (img+1)*k]
		_, _, partner, lam := bt.Drawn(img)
		a := row(img)
		if lam == 1 {
			copy(out, a)
			continue
		}
		p := row(partner)
		for c := range out {
			out[c] = float32(lam)*a[c] + float32(1-lam)*p[c]
		}
	}
}

// batch is one prepared training batch; release hands its buffers back.
type batch struct {
	index   int
	inputs  [][]float32
	targets []float32
	teacher []float32 // with distillation: the teacher's rows
	free    chan<- *batch
}

func (b *batch) release() { b.free <- b }

// batchStream yields the batches of one epoch in order, built on another
// goroutine so that the compute threads never wait for data. The producer
// owns ch and closes it; it stops when its context is cancelled.
type batchStream struct {
	ch chan *batch
	wg *sync.WaitGroup
}

// wait drains the stream and returns when the producer has exited; call it
// after cancelling the producer's context.
func (s batchStream) wait() {
	for range s.ch {
	}
	s.wg.Wait()
}

// prefetch starts the producer for one epoch; the batches' content depends only
// on (seed, epoch, index), so prefetching changes nothing in the result.
func prefetch(ctx context.Context, d *data.Dataset, specs []nn.Spec, cfg format.TrainConfig, kd *distiller, epoch, n int) batchStream {
	const depth = 2
	free := make(chan *batch, depth)
	for i := 0; i < depth; i++ {
		b := &batch{targets: make([]float32, cfg.Batch*len(d.Classes)), free: free}
		if kd != nil {
			b.teacher = make([]float32, cfg.Batch*len(d.Classes))
		}
		for _, s := range specs {
			b.inputs = append(b.inputs, make([]float32, cfg.Batch*s.Resolution*s.Resolution*3))
		}
		free <- b
	}
	s := batchStream{ch: make(chan *batch), wg: &sync.WaitGroup{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.ch)
		bt := data.NewBatcher(specs, len(d.Classes), cfg)
		labels := make([]int, cfg.Batch)
		for i := 0; i < n; i++ {
			var b *batch
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b.index = i
			bt.Train(d, epoch, i, b.inputs, b.targets, labels)
			if kd != nil {
				kd.fill(bt, b.teacher)
			}
			select {
			case s.ch <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// machine names the CPU for the training record.
func machine() string {
	model := runtime.GOARCH
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.Index(line, ":"); i >= 0 {
					model = strings.TrimSpace(line[i+1:])
					break
				}
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s", model, runtime.NumCPU(), runtime.GOARCH)
}
