package main

import (
	"encoding/json"
	"fmt"
	"image"
	"io"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

func newPredictCmd() *cobra.Command {
	var (
		dir       string
		variant   string
		k         int
		asJSON    bool
		threads   int
		maxPixels int64
	)
	cmd := &cobra.Command{
		Use:   "predict --family DIR [--variant ID] [--k K] [--json] IMAGE...",
		Short: "Classify images locally with one variant, or all variants fused",
		Long: `Classify JPEG or PNG images on this machine. With --variant, one variant answers;
without it, every variant of the family answers with its top-k and the answers are fused
with the family's fusion weights, as the cluster does.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, images []string) error {
			if dir == "" {
				return usagef("--family DIR is required")
			}
			f, err := format.LoadFamily(dir)
			if err != nil {
				return err
			}
			classes := len(f.Manifest.Classes)
			if k < 1 || k > classes {
				return usagef("--k %d: want 1 to %d (the family has %d classes)", k, classes, classes)
			}
			sel := -1
			if variant != "" {
				for i, v := range f.Manifest.Variants {
					if v.ID == variant {
						sel = i
					}
				}
				if sel < 0 {
					return usagef("--variant %q: the family has no such variant", variant)
				}
			}
			pool := nn.NewPool(threads)
			defer pool.Close()
			p := newPredictor(f, pool, k)
			out := cmd.OutOrStdout()
			failed := 0
			for _, path := range images {
				img, err := nn.LoadImageFile(path, maxPixels)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "varpar:", err)
					failed++
					continue
				}
				res := p.predict(img, sel)
				res.Image = path
				if err := printPrediction(out, res, asJSON); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d images could not be read", failed, len(images))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "family", "", "family directory (holding family.json)")
	cmd.Flags().StringVar(&variant, "variant", "", "run only this variant (default: all, fused)")
	cmd.Flags().IntVar(&k, "k", 3, "classes each variant answers with, and classes printed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per image")
	cmd.Flags().IntVar(&threads, "threads", 0, "compute threads (0: all cores)")
	cmd.Flags().Int64Var(&maxPixels, "max-pixels", nn.DefaultMaxPixels, "refuse images whose header declares more pixels")
	return cmd
}

// predictor holds one runner per variant and the fusion buffers.
type predictor struct {
	f       *format.Family
	runners []*nn.Runner
	k       int
	answers []consensus.Answer
	scores  []float64
}

func newPredictor(f *format.Family, pool *nn.Pool, k int) *predictor {
	p := &predictor{f: f, k: k, scores: make([]float64, len(f.Manifest.Classes))}
	for i, m := range f.Models {
		p.runners = append(p.runners, m.NewRunner(pool))
		p.answers = append(p.answers, consensus.Answer{Variant: i, Indices: make([]int32, k), Probs: make([]float32, k)})
	}
	return p
}

type prediction struct {
	Image   string      `json:"image"`
	Variant string      `json:"variant"` // a variant id, or "fused"
	Top     []classProb `json:"top"`
}

type classProb struct {
	Index int     `json:"index"`
	Class string  `json:"class"`
	Prob  float64 `json:"prob"`
}

// predict runs variant sel (or all, fused, when sel < 0). A fused "prob" is the
// fused score divided by the sum of the fusion weights, so it stays in [0, 1].
func (p *predictor) predict(img image.Image, sel int) prediction {
	names := p.f.Manifest.Classes
	if sel >= 0 {
		a := &p.answers[sel]
		p.runners[sel].TopK(img, a.Indices, a.Probs)
		res := prediction{Variant: p.f.Manifest.Variants[sel].ID}
		for j, c := range a.Indices {
			res.Top = append(res.Top, classProb{Index: int(c), Class: names[c], Prob: float64(a.Probs[j])})
		}
		return res
	}
	total := 0.0
	for i, r := range p.runners {
		r.TopK(img, p.answers[i].Indices, p.answers[i].Probs)
		total += p.f.Weights[i]
	}
	if err := consensus.Fuse(p.answers, p.f.Weights, p.scores); err != nil {
		panic(err) // our own runners' answers always fit the family
	}
	res := prediction{Variant: "fused"}
	for _, c := range consensus.Top(p.scores, p.k) {
		res.Top = append(res.Top, classProb{Index: c, Class: names[c], Prob: p.scores[c] / total})
	}
	return res
}

func printPrediction(w io.Writer, p prediction, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(p)
	}
	fmt.Fprintf(w, "%s (%s):", p.Image, p.Variant)
	for _, t := range p.Top {
		fmt.Fprintf(w, "  %s %.4f", t.Class, t.Prob)
	}
	_, err := fmt.Fprintln(w)
	return err
}
