package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/varpar/varpar/nn"
)

func newTrainCmd() *cobra.Command {
	var o trainOpts
	cmd := &cobra.Command{
		Use:   "train --family DIR --data TRAIN [flags]",
		Short: "Train a family's variants jointly (or, with --base, its base model alone)",
		Long: `Train every variant of the family at once on the same batches, each at its own
resolution, with loss a*sum_i CE(variant_i) + b*CE(fused). The recipe comes from the
family's family.json (written by "varpar family new") and the flags override it.

TRAIN is an MNIST IDX images file, an image folder (one sub-folder per class), or a
.tar/.tar.gz of one. A checkpoint is written after every epoch; after an interruption
(even kill -9) the same command with --resume continues from it. At the end the weights
are written beside family.json and the manifest gets their SHA-256s, fusion weights and
a record of the run.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrain(cmd, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "family", "", "family directory (holding family.json)")
	f.StringVar(&o.data, "data", "", "training data: MNIST IDX images file, image folder, or .tar/.tar.gz")
	f.Float64Var(&o.valFraction, "val-fraction", 0.05, "part of the data held out to report validation accuracy (0: none)")
	f.IntVar(&o.epochs, "epochs", 0, "epochs (default: the family's recipe)")
	f.IntVar(&o.batch, "batch", 0, "batch size (default: the family's recipe)")
	f.Int64Var(&o.seed, "seed", 0, "random seed (default: the family's recipe)")
	f.Float64Var(&o.lr, "lr", 0, "peak learning rate (default: the family's recipe)")
	f.IntVar(&o.threads, "threads", 0, "compute threads (0: all cores)")
	f.BoolVar(&o.resume, "resume", false, "continue the interrupted run from its checkpoint")
	f.BoolVar(&o.base, "base", false, "train the family's base model alone instead of the variants")
	f.StringVar(&o.onBad, "on-bad-image", "fail", "what a corrupt image does: fail (stop) or skip (report and go on)")
	f.IntVar(&o.maxSteps, "max-steps", 0, "stop after this many steps in total, writing nothing (for smoke tests; 0: no limit)")
	f.IntVar(&o.limit, "limit", 0, "train on a stratified subset of this many images (0: all)")
	f.Float64Var(&o.lossA, "loss-a", 0, "weight a of the variants' own losses (default: the family's recipe)")
	f.Float64Var(&o.lossB, "loss-b", 0, "weight b of the fused loss (default: the family's recipe)")
	f.Float64Var(&o.mixup, "mixup", 0, "mixup alpha, 0 for none (default: the family's recipe; the paper uses 0.2)")
	f.Float64Var(&o.smoothing, "label-smoothing", 0, "label smoothing, 0 to below 1 (default: the family's recipe)")
	return cmd
}

type trainOpts struct {
	dir, data   string
	valFraction float64
	epochs      int
	batch       int
	seed        int64
	lr          float64
	threads     int
	resume      bool
	base        bool
	onBad       string
	maxSteps    int
	limit       int
	lossA       float64
	lossB       float64
	mixup       float64
	smoothing   float64
}

func checkpointPath(dir string, base bool) string {
	if base {
		return filepath.Join(dir, ".train-base.ckpt")
	}
	return filepath.Join(dir, ".train-variants.ckpt")
}

func loadDatasetFlag(cmd *cobra.Command, path, onBad string) (*nn.Dataset, error) {
	opts := nn.LoadOptions{MaxPixels: nn.DefaultMaxPixels}
	switch onBad {
	case "fail":
		opts.OnBadImage = nn.FailOnBadImage
	case "skip":
		opts.OnBadImage = nn.SkipBadImage
		opts.Warn = func(p string, err error) { fmt.Fprintf(cmd.ErrOrStderr(), "varpar: skipping %s: %v\n", p, err) }
	default:
		return nil, usagef("--on-bad-image %q: want fail or skip", onBad)
	}
	start := time.Now()
	d, err := nn.LoadDataset(path, opts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "loaded %s: %d images, %d classes in %.1fs\n", path, len(d.Samples), len(d.Classes), time.Since(start).Seconds())
	if d.Ignored > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %d files left out: not named *.jpg, *.jpeg or *.png, or not inside a class folder (e.g. %s)\n", d.Ignored, d.IgnoredExample)
	}
	return d, nil
}

func checkClasses(d *nn.Dataset, m *nn.Manifest) error {
	if strings.Join(d.Classes, "\x00") != strings.Join(m.Classes, "\x00") {
		return fmt.Errorf("the data's classes %v differ from the family's %v", d.Classes, m.Classes)
	}
	return nil
}

func runTrain(cmd *cobra.Command, o *trainOpts) error {
	if o.dir == "" || o.data == "" {
		return usagef("--family DIR and --data TRAIN are required")
	}
	if o.valFraction < 0 || o.valFraction >= 1 {
		return usagef("--val-fraction %v: want 0 <= F < 1", o.valFraction)
	}
	if o.epochs < 0 || o.batch < 0 || o.threads < 0 || o.lr < 0 || o.maxSteps < 0 || o.limit < 0 {
		return usagef("--epochs, --batch, --lr, --threads, --limit and --max-steps must not be negative")
	}
	stderr := cmd.ErrOrStderr()
	manPath := filepath.Join(o.dir, "family.json")
	man, err := nn.ReadManifest(o.dir)
	if err != nil {
		return err
	}
	if o.base && man.Base == nil {
		return fmt.Errorf("%s has no base model to train", manPath)
	}
	// The recipe: the family's, then the flags.
	// The base uses its own recipe when the family has one, else the variants'.
	cfg := nn.DefaultTrainConfig()
	if o.base && man.BaseTraining != nil {
		cfg = man.BaseTraining.Config
	} else if man.Training != nil {
		cfg = man.Training.Config
	}
	fl := cmd.Flags()
	if fl.Changed("epochs") {
		cfg.Epochs = o.epochs
	}
	if fl.Changed("batch") {
		cfg.Batch = o.batch
	}
	if fl.Changed("seed") {
		cfg.Seed = o.seed
	}
	if fl.Changed("lr") {
		cfg.LR = o.lr
	}
	if fl.Changed("loss-a") {
		cfg.LossA = o.lossA
	}
	if fl.Changed("loss-b") {
		cfg.LossB = o.lossB
	}
	if fl.Changed("mixup") {
		cfg.Mixup = o.mixup
	}
	if fl.Changed("label-smoothing") {
		cfg.LabelSmoothing = o.smoothing
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	var infos []*nn.VariantInfo
	var fusion []float64
	if o.base {
		infos = []*nn.VariantInfo{man.Base}
		fusion = []float64{1}
		cfg.LossB = 0
	} else {
		for i := range man.Variants {
			infos = append(infos, &man.Variants[i])
		}
		fusion = man.FusionWeights()
	}
	specs := make([]nn.Spec, len(infos))
	for i, v := range infos {
		specs[i] = v.Spec
	}

	ckpt := checkpointPath(o.dir, o.base)
	if _, err := os.Stat(ckpt); err == nil && !o.resume {
		return fmt.Errorf("%s exists: an earlier run was interrupted; pass --resume to continue it, or delete the file to start over", ckpt)
	} else if errors.Is(err, fs.ErrNotExist) && o.resume {
		return fmt.Errorf("--resume: no checkpoint %s to resume from", ckpt)
	}

	data, err := loadDatasetFlag(cmd, o.data, o.onBad)
	if err != nil {
		return err
	}
	if err := checkClasses(data, man); err != nil {
		return fmt.Errorf("%s: %w", o.data, err)
	}
	if o.limit > 0 && o.limit < len(data.Samples) {
		_, data = data.Split(float64(o.limit)/float64(len(data.Samples)), cfg.Seed)
	}
	train, val := data, (*nn.Dataset)(nil)
	if o.valFraction > 0 {
		train, val = data.Split(o.valFraction, cfg.Seed)
	}
	perEpoch := nn.BatchesPerEpoch(train, cfg.Batch)
	if perEpoch < 1 {
		return fmt.Errorf("%s: %d training images, fewer than one batch of %d", o.data, len(train.Samples), cfg.Batch)
	}

	pool := nn.NewPool(o.threads)
	defer pool.Close()
	tr, err := nn.NewTrainer(specs, fusion, cfg, pool)
	if err != nil {
		return err
	}
	cfgJSON, _ := json.Marshal(cfg)
	startEpoch, wallBefore := 0, 0.0
	if o.resume {
		meta, err := tr.LoadCheckpoint(ckpt)
		if err != nil {
			return err
		}
		if meta["config"] != string(cfgJSON) || meta["data"] != o.data || meta["val_fraction"] != fmt.Sprint(o.valFraction) || meta["limit"] != strconv.Itoa(o.limit) {
			return fmt.Errorf("%s was written by a run with another recipe or data (%s, data %s, val %s); resume with the same flags",
				ckpt, meta["config"], meta["data"], meta["val_fraction"])
		}
		if startEpoch, err = strconv.Atoi(meta["epoch"]); err != nil || startEpoch < 0 || startEpoch > cfg.Epochs {
			return fmt.Errorf("%s: bad epoch %q in checkpoint", ckpt, meta["epoch"])
		}
		wallBefore, _ = strconv.ParseFloat(meta["wall_seconds"], 64)
		fmt.Fprintf(stderr, "resuming %s after epoch %d of %d\n", ckpt, startEpoch, cfg.Epochs)
		if th := meta["threads"]; th != "" && th != strconv.Itoa(pool.Threads()) {
			fmt.Fprintf(stderr, "note: the checkpoint was written on %s threads and this run has %d: it trains on, but the weights will not be bit-identical to an uninterrupted run (--threads %s would be)\n",
				th, pool.Threads(), th)
		}
	}

	what := fmt.Sprintf("%d variants jointly", len(specs))
	if o.base {
		what = "the base model"
	}
	fmt.Fprintf(stderr, "training %s of %s: %d epochs x %d steps of %d images, %d threads, isa %s\n",
		what, man.Name, cfg.Epochs, perEpoch, cfg.Batch, pool.Threads(), nn.ISA())

	total := cfg.Epochs * perEpoch
	bar := newProgress(stderr, total, startEpoch*perEpoch, cfg.Batch)
	runStart := time.Now()
	var valAcc []float64
	stopped := false
	for epoch := startEpoch; epoch < cfg.Epochs && !stopped; epoch++ {
		batches := prefetch(train, specs, cfg, epoch, perEpoch)
		var sum epochSum
		for b := range batches.ch {
			step := epoch*perEpoch + b.index
			st := tr.Step(b.inputs, b.targets, tr.LR(step, total))
			b.release()
			sum.add(st)
			bar.update(step+1, epoch, sum)
			if o.maxSteps > 0 && step+1 >= o.maxSteps {
				stopped = true
				batches.stop()
				break
			}
		}
		if stopped {
			break
		}
		wall := wallBefore + time.Since(runStart).Seconds()
		if val != nil {
			valAcc, err = validate(tr, man, infos, fusion, val, pool)
			if err != nil {
				return err
			}
		}
		bar.epochDone(epoch, cfg.Epochs, sum, valAcc, ids(infos))
		meta := map[string]string{"epoch": strconv.Itoa(epoch + 1), "config": string(cfgJSON), "data": o.data,
			"val_fraction": fmt.Sprint(o.valFraction), "limit": strconv.Itoa(o.limit), "wall_seconds": strconv.FormatFloat(wall, 'f', 1, 64),
			"threads": strconv.Itoa(pool.Threads())}
		if err := tr.SaveCheckpoint(ckpt, meta); err != nil {
			return err
		}
	}
	if stopped {
		fmt.Fprintf(stderr, "stopped after %d steps (--max-steps); nothing written\n", o.maxSteps)
		return nil
	}
	if valAcc == nil && val != nil {
		// Resumed from the last epoch's checkpoint: nothing was trained
		// in this run, but the record still gets its validation.
		if valAcc, err = validate(tr, man, infos, fusion, val, pool); err != nil {
			return err
		}
	}
	// Write the weights, then the manifest that names them.
	for i, v := range infos {
		names, tensors := tr.Weights(i)
		if err := nn.SaveWeights(o.dir, v, names, tensors); err != nil {
			return err
		}
		if !o.base {
			v.FusionWeight = fusion[i]
		}
	}
	wall := wallBefore + time.Since(runStart).Seconds()
	rec := &nn.TrainingRecord{
		Command: "varpar " + strings.Join(os.Args[1:], " "), Data: o.data, ValFraction: o.valFraction,
		Config: cfg, Epochs: cfg.Epochs, Threads: pool.Threads(), WallSeconds: wall,
		ImagesPerS:  float64(cfg.Epochs*perEpoch*cfg.Batch) / wall, // over the whole run, resumes included
		ValAccuracy: valAcc, Machine: machine(), Finished: time.Now().UTC().Format(time.RFC3339),
	}
	if o.base {
		man.BaseTraining = rec
	} else {
		man.Training = rec
	}
	if err := nn.SaveManifest(o.dir, man); err != nil {
		return err
	}
	os.Remove(ckpt)
	fmt.Fprintf(stderr, "wrote %s (%.0f s of training)\n", manPath, wall)
	return nil
}

func ids(infos []*nn.VariantInfo) []string {
	var out []string
	for _, v := range infos {
		out = append(out, v.ID)
	}
	return out
}

// validate measures the current weights on the held-out data through the
// inference engine (batch norm with running statistics), as serving will.
func validate(tr *nn.Trainer, man *nn.Manifest, infos []*nn.VariantInfo, fusion []float64, val *nn.Dataset, pool *nn.Pool) ([]float64, error) {
	f := &nn.Family{Manifest: &nn.Manifest{Format: man.Format, Name: man.Name, Classes: man.Classes}, Weights: fusion}
	for i, v := range infos {
		names, tensors := tr.Weights(i)
		st := &nn.Safetensors{Names: names, Tensors: tensors, DTypes: map[string]string{}}
		for _, n := range names {
			st.DTypes[n] = "F32"
		}
		m, err := nn.NewModel(v.Spec, st, v.ID)
		if err != nil {
			return nil, err
		}
		f.Models = append(f.Models, m)
		f.Manifest.Variants = append(f.Manifest.Variants, *v)
	}
	k := max(1, len(man.Classes)/2)
	rep, err := nn.Evaluate(f, val, k, pool, nil)
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

// batch is one prepared training batch; release hands its buffers back.
type batch struct {
	index   int
	inputs  [][]float32
	targets []float32
	free    chan<- *batch
}

func (b *batch) release() { b.free <- b }

// batchStream yields the batches of one epoch in order, built on another
// goroutine so that the compute threads never wait for data.
type batchStream struct {
	ch   chan *batch
	quit chan struct{}
	wg   *sync.WaitGroup
}

func (s batchStream) stop() {
	close(s.quit)
	for range s.ch {
	}
	s.wg.Wait()
}

// prefetch starts the producer for one epoch; the batches' content depends only
// on (seed, epoch, index), so prefetching changes nothing in the result.
func prefetch(d *nn.Dataset, specs []nn.Spec, cfg nn.TrainConfig, epoch, n int) batchStream {
	const depth = 2
	free := make(chan *batch, depth)
	for i := 0; i < depth; i++ {
		b := &batch{targets: make([]float32, cfg.Batch*len(d.Classes)), free: free}
		for _, s := range specs {
			b.inputs = append(b.inputs, make([]float32, cfg.Batch*s.Resolution*s.Resolution*3))
		}
		free <- b
	}
	s := batchStream{ch: make(chan *batch), quit: make(chan struct{}), wg: &sync.WaitGroup{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.ch)
		bt := nn.NewBatcher(specs, len(d.Classes), cfg)
		labels := make([]int, cfg.Batch)
		for i := 0; i < n; i++ {
			var b *batch
			select {
			case b = <-free:
			case <-s.quit:
				return
			}
			b.index = i
			bt.Train(d, epoch, i, b.inputs, b.targets, labels)
			select {
			case s.ch <- b:
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

type epochSum struct {
	loss         float64
	steps        int
	images       int
	correct      []int
	fusedCorrect int
}

func (e *epochSum) add(st nn.StepStats) {
	e.loss += st.Loss
	e.steps++
	e.images += st.Images
	if e.correct == nil {
		e.correct = make([]int, len(st.Correct))
	}
	for i, c := range st.Correct {
		e.correct[i] += c
	}
	e.fusedCorrect += st.FusedCorrect
}

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

// progress draws the training progress on stderr: in place on a terminal, a
// line every 30 seconds otherwise (logs stay readable).
type progress struct {
	w        io.Writer
	tty      bool
	total    int
	start    time.Time
	startAt  int // steps done before this run (a resumed run)
	batch    int
	lastDraw time.Time
}

func newProgress(w io.Writer, total, done, batch int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, total: total, start: time.Now(), startAt: done, batch: batch}
}

func (p *progress) update(done, epoch int, s epochSum) {
	every := 30 * time.Second
	if p.tty {
		every = 250 * time.Millisecond
	}
	if time.Since(p.lastDraw) < every && done < p.total {
		return
	}
	p.lastDraw = time.Now()
	el := time.Since(p.start).Seconds()
	// Both over the whole run so far, validation passes included: the
	// epoch's own count over the run's time would fall at every epoch.
	stepsPerS := float64(done-p.startAt) / el
	rate := stepsPerS * float64(p.batch)
	eta := time.Duration(float64(p.total-done)/stepsPerS) * time.Second
	const width = 24
	fill := width * done / p.total
	line := fmt.Sprintf("epoch %d [%s%s] %3d%% loss %.4f fused acc %5.1f%% %6.0f img/s ETA %s",
		epoch+1, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*done/p.total,
		s.loss/float64(s.steps), 100*float64(s.fusedCorrect)/float64(max(1, s.images)), rate, eta.Round(time.Second))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) epochDone(epoch, epochs int, s epochSum, val []float64, ids []string) {
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "epoch %d/%d: loss %.4f, train acc", epoch+1, epochs, s.loss/float64(s.steps))
	for i, c := range s.correct {
		fmt.Fprintf(p.w, " %s %.1f%%", ids[i], 100*float64(c)/float64(max(1, s.images)))
	}
	if len(s.correct) > 1 {
		fmt.Fprintf(p.w, " fused %.1f%%", 100*float64(s.fusedCorrect)/float64(max(1, s.images)))
	}
	if len(val) > 0 {
		fmt.Fprint(p.w, "; val acc")
		for i, a := range val {
			name := "fused"
			if i < len(ids) {
				name = ids[i]
			}
			fmt.Fprintf(p.w, " %s %.2f%%", name, 100*a)
		}
	}
	fmt.Fprintf(p.w, " (%s)\n", time.Since(p.start).Round(time.Second))
}
