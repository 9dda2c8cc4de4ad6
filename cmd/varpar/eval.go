package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/train"
)

func newEvalCmd() *cobra.Command {
	var (
		dir, data, onBad, split string
		k, threads              int
		asJSON, renorm          bool
		widthExp                float64
	)
	cmd := &cobra.Command{
		Use:   "eval --family DIR --data TEST [--json]",
		Short: "Measure a family's accuracy: each variant, the fused ensemble, and every subset",
		Long: `Classify every image of TEST with every variant (each answering with its top-k, as in
the cluster) and report: each variant's accuracy alone, the fused ensemble's, and for
every subset size s = 1..N the mean and minimum fused accuracy over all subsets of s
variants (the accuracy the cluster keeps as devices fail), plus the base model's accuracy
when the family has one.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || data == "" {
				return usagef("--family DIR and --data TEST are required")
			}
			f, err := format.LoadFamily(dir)
			if err != nil {
				return err
			}
			classes := len(f.Manifest.Classes)
			if !cmd.Flags().Changed("k") {
				k = max(1, classes/2)
			}
			if k < 1 || k > classes {
				return usagef("--k %d: want 1 to %d", k, classes)
			}
			if cmd.Flags().Changed("fusion-width-exp") {
				if !(widthExp >= 0) || widthExp > 10 {
					return usagef("--fusion-width-exp %v: want 0 to 10", widthExp)
				}
				f.Weights = f.Manifest.FusionWeightsExp(widthExp)
			}
			d, err := loadDatasetFlag(cmd, data, onBad)
			if err != nil {
				return err
			}
			switch split {
			case "all":
			case "val", "train":
				rec := f.Manifest.Training
				if rec == nil || !(rec.ValFraction > 0) {
					return fmt.Errorf("--split %s: %s/family.json records no validation split (its variants' training record has no val_fraction)", split, dir)
				}
				tr, val := train.HeldOut(d, rec)
				d = val
				if split == "train" {
					d = tr
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "evaluating the %s split of %s: %d images (val_fraction %v, seed %d, as the variants were trained)\n",
					split, data, len(d.Samples), rec.ValFraction, rec.SplitSeed())
			default:
				return usagef("--split %q: want all, val or train", split)
			}
			if err := checkClasses(d, f.Manifest); err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			pool := nn.NewPool(threads)
			defer pool.Close()
			rep, err := train.EvaluateWith(f, d, k, pool, nil, train.EvalOptions{Renormalize: renorm})
			if err != nil {
				return err
			}
			return printEval(cmd.OutOrStdout(), rep, asJSON)
		},
	}
	cmd.Flags().StringVar(&dir, "family", "", "family directory (holding family.json)")
	cmd.Flags().StringVar(&data, "data", "", "test data: MNIST IDX images file, image folder, or .tar/.tar.gz")
	cmd.Flags().IntVar(&k, "k", 0, "classes each variant answers with (default: half the classes, the paper's maximum)")
	cmd.Flags().IntVar(&threads, "threads", 0, "compute threads (0: all cores)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&onBad, "on-bad-image", "fail", "what a corrupt image does: fail or skip")
	cmd.Flags().StringVar(&split, "split", "all", "which images of TEST: all, or the val (train) part of the split the variants were trained with, TEST being their training data")
	cmd.Flags().Float64Var(&widthExp, "fusion-width-exp", 2, "measure the paper's fusion weights with this exponent of the width instead of the family's weights")
	cmd.Flags().BoolVar(&renorm, "renormalize", false, "measure top-k renormalised fusion: each answer's probabilities scaled to sum to 1")
	return cmd
}

func printEval(w io.Writer, r *train.EvalReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	fmt.Fprintf(w, "%d images, top-%d answers\n", r.Images, r.K)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\taccuracy\t")
	for _, v := range r.Variants {
		fmt.Fprintf(tw, "%s\t%s\t\n", v.ID, pct(v.Accuracy))
	}
	fmt.Fprintf(tw, "fused (all %d)\t%s\t\n", len(r.Variants), pct(r.Fused))
	if r.Base != nil {
		fmt.Fprintf(tw, "%s (base)\t%s\t\n", r.Base.ID, pct(r.Base.Accuracy))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variants answering\tsubsets\tmean\tmin\tworst subset\t")
	for _, s := range r.Subsets {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t\n", s.Size, s.Count, pct(s.Mean), pct(s.Min), strings.Join(s.MinOf, "+"))
	}
	return tw.Flush()
}
