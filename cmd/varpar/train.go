package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/varpar/varpar/nn/train"
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
	f.IntVar(&o.cutout, "cutout", 0, "side in pixels of the square cutout erases from each training image, 0 for none (default: the family's recipe)")
	f.Float64Var(&o.kd, "kd", 0, "weight of distillation from the trained base model in each variant's loss, 0 to 1, 0 for none (default: the family's recipe)")
	f.Float64Var(&o.kdTemp, "kd-temperature", 0, "softmax temperature of the distillation (default: the family's recipe)")
	f.Int64Var(&o.valSeed, "val-seed", 0, "seed of the validation split (default: the family's record, else the recipe's seed)")
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
	cutout      int
	kd, kdTemp  float64
	valSeed     int64
}

func runTrain(cmd *cobra.Command, o *trainOpts) error {
	if o.dir == "" || o.data == "" {
		return usagef("--family DIR and --data TRAIN are required")
	}
	if o.epochs < 0 || o.batch < 0 || o.threads < 0 || o.lr < 0 || o.maxSteps < 0 || o.limit < 0 {
		return usagef("--epochs, --batch, --lr, --threads, --limit and --max-steps must not be negative")
	}
	stderr := cmd.ErrOrStderr()
	opts := train.Options{
		Dir: o.dir, Data: o.data, ValFraction: o.valFraction, Limit: o.limit, Threads: o.threads,
		Resume: o.resume, Base: o.base, MaxSteps: o.maxSteps,
		Command: "varpar " + strings.Join(os.Args[1:], " "),
	}
	var err error
	if opts.Load, err = loadOptions(cmd, o.onBad); err != nil {
		return err
	}
	// Flags override the family's recipe only when given.
	fl := cmd.Flags()
	ov := &opts.Overrides
	if fl.Changed("epochs") {
		ov.Epochs = &o.epochs
	}
	if fl.Changed("batch") {
		ov.Batch = &o.batch
	}
	if fl.Changed("seed") {
		ov.Seed = &o.seed
	}
	if fl.Changed("lr") {
		ov.LR = &o.lr
	}
	if fl.Changed("loss-a") {
		ov.LossA = &o.lossA
	}
	if fl.Changed("loss-b") {
		ov.LossB = &o.lossB
	}
	if fl.Changed("mixup") {
		ov.Mixup = &o.mixup
	}
	if fl.Changed("label-smoothing") {
		ov.LabelSmoothing = &o.smoothing
	}
	if fl.Changed("cutout") {
		ov.Cutout = &o.cutout
	}
	if fl.Changed("kd") {
		ov.KD = &o.kd
	}
	if fl.Changed("kd-temperature") {
		ov.KDTemperature = &o.kdTemp
	}
	if fl.Changed("val-seed") {
		if o.valSeed == 0 {
			return usagef("--val-seed 0: pick a non-zero seed")
		}
		opts.ValSeed = o.valSeed
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := train.Run(ctx, opts, &trainPrinter{w: stderr})
	var ue *train.UsageError
	if errors.As(err, &ue) {
		return usageError{ue.Err}
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted; a rerun with --resume continues from the last finished epoch")
	}
	if err != nil {
		return err
	}
	if res.Stopped {
		fmt.Fprintf(stderr, "stopped after %d steps (--max-steps); nothing written\n", o.maxSteps)
		return nil
	}
	fmt.Fprintf(stderr, "wrote %s (%.0f s of training)\n", res.Manifest, res.WallSeconds)
	return nil
}

// trainPrinter prints a run's progress on stderr.
type trainPrinter struct {
	w   io.Writer
	ids []string
	bar *progress
}

func (t *trainPrinter) Note(msg string) { fmt.Fprintln(t.w, msg) }

func (t *trainPrinter) Start(s train.Start) {
	what := fmt.Sprintf("%d variants jointly", len(s.IDs))
	if s.Base {
		what = "the base model"
	}
	fmt.Fprintf(t.w, "training %s of %s: %d epochs x %d steps of %d images, %d threads, isa %s\n",
		what, s.Family, s.Epochs, s.StepsPerEpoch, s.Batch, s.Threads, s.ISA)
	t.ids = s.IDs
	t.bar = newProgress(t.w, s.Epochs*s.StepsPerEpoch, s.Done, s.Batch)
	t.bar.epochs = s.Epochs
}

func (t *trainPrinter) Step(done, epoch int, sum *train.EpochStats) { t.bar.update(done, epoch, *sum) }

func (t *trainPrinter) Epoch(epoch int, sum *train.EpochStats, val []float64) {
	t.bar.epochDone(epoch, t.bar.epochs, *sum, val, t.ids)
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
	epochs   int
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

func (p *progress) update(done, epoch int, s train.EpochStats) {
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
		s.Loss/float64(s.Steps), 100*float64(s.FusedCorrect)/float64(max(1, s.Images)), rate, eta.Round(time.Second))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) epochDone(epoch, epochs int, s train.EpochStats, val []float64, ids []string) {
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "epoch %d/%d: loss %.4f, train acc", epoch+1, epochs, s.Loss/float64(s.Steps))
	for i, c := range s.Correct {
		fmt.Fprintf(p.w, " %s %.1f%%", ids[i], 100*float64(c)/float64(max(1, s.Images)))
	}
	if len(s.Correct) > 1 {
		fmt.Fprintf(p.w, " fused %.1f%%", 100*float64(s.FusedCorrect)/float64(max(1, s.Images)))
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
