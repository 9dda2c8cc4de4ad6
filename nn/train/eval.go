package train

import (
	"fmt"
	"math/bits"

	"github.com/varpar/varpar/consensus"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
)

// EvalReport is what `varpar eval` prints: the accuracy each variant keeps on
// its own, the fused ensemble's, and what the cluster keeps as devices fail.
type EvalReport struct {
	Images   int           `json:"images"`
	K        int           `json:"k"`        // classes each variant answered with
	Variants []VariantEval `json:"variants"` // in family order
	Fused    float64       `json:"fused"`    // accuracy with every variant answering
	Subsets  []SubsetEval  `json:"subsets"`  // by subset size, 1..N
	Base     *VariantEval  `json:"base,omitempty"`
}

// VariantEval is one model's accuracy alone (its own arg-max).
type VariantEval struct {
	ID       string  `json:"id"`
	Accuracy float64 `json:"accuracy"`
}

// SubsetEval summarises the fused accuracy over every subset of Size variants.
type SubsetEval struct {
	Size  int      `json:"size"`
	Count int      `json:"count"` // number of subsets of this size
	Mean  float64  `json:"mean"`
	Min   float64  `json:"min"`
	MinOf []string `json:"min_of"` // the variants of the worst subset
	Max   float64  `json:"max"`
}

// maxEvalVariants bounds the 2^N subsets Evaluate enumerates.
const maxEvalVariants = 16

// Evaluate classifies every image of d with every variant of f (and its base),
// each answering with its top-k as it would in the cluster, and fuses the
// answers of every subset of variants with consensus.Fuse.
func Evaluate(f *format.Family, d *data.Dataset, k int, pool *nn.Pool, progress func(done int)) (*EvalReport, error) {
	return EvaluateWith(f, d, k, pool, progress, EvalOptions{})
}

// EvalOptions are the fusion rules Evaluate can measure besides the
// cluster's own.
type EvalOptions struct {
	// Renormalize scales each answer's top-k probabilities to sum to 1
	// before fusing (the paper's code's top-k renormalised fusion).
	Renormalize bool
}

// EvaluateWith is Evaluate with other fusion rules.
func EvaluateWith(f *format.Family, d *data.Dataset, k int, pool *nn.Pool, progress func(done int), opt EvalOptions) (*EvalReport, error) {
	n := len(f.Models)
	classes := len(f.Manifest.Classes)
	if n > maxEvalVariants {
		return nil, fmt.Errorf("train: eval: %d variants, at most %d", n, maxEvalVariants)
	}
	if len(d.Classes) != classes {
		return nil, fmt.Errorf("train: eval: the data has %d classes, the family %d", len(d.Classes), classes)
	}
	for i, c := range d.Classes {
		if c != f.Manifest.Classes[i] {
			return nil, fmt.Errorf("train: eval: class %d is %q in the data but %q in the family", i, c, f.Manifest.Classes[i])
		}
	}
	if k < 1 || k > classes {
		return nil, fmt.Errorf("train: eval: k %d, want 1 to %d", k, classes)
	}
	models := append([]*nn.Model(nil), f.Models...)
	if f.Base != nil {
		models = append(models, f.Base)
	}
	specs := make([]nn.Spec, len(models))
	for i, m := range models {
		specs[i] = m.Spec
	}
	const batch = 64
	bt := data.NewBatcher(specs, classes, format.DefaultTrainConfig())
	sessions := make([]*nn.Session, len(models))
	inputs := make([][]float32, len(models))
	for i, m := range models {
		sessions[i] = m.NewSession(batch, pool)
		inputs[i] = make([]float32, batch*m.InputSize())
	}
	total := len(d.Samples)
	// answers[img*n+v]: variant v's top-k for image img.
	idx := make([]int32, total*n*k)
	val := make([]float32, total*n*k)
	alone := make([]int, len(models))
	labels := make([]int, batch)
	all := make([]int, total)
	for i := range all {
		all[i] = i
	}
	probs := make([]float32, classes)
	for start := 0; start < total; start += batch {
		cnt := min(batch, total-start)
		ids := all[start : start+cnt]
		bt.Eval(d, ids, inputs, labels[:cnt])
		for v, s := range sessions {
			logits := s.Forward(inputs[v])
			for j := 0; j < cnt; j++ {
				nn.Softmax(logits[j*classes:(j+1)*classes], probs)
				if argmax32(probs) == labels[j] {
					alone[v]++
				}
				if v < n {
					o := ((start+j)*n + v) * k
					nn.TopK(probs, idx[o:o+k], val[o:o+k])
					if opt.Renormalize {
						var sum float32
						for _, p := range val[o : o+k] {
							sum += p
						}
						for q := range val[o : o+k] {
							val[o+q] = min(1, val[o+q]/sum)
						}
					}
				}
			}
		}
		if progress != nil {
			progress(start + cnt)
		}
	}
	rep := &EvalReport{Images: total, K: k}
	for v := 0; v < n; v++ {
		rep.Variants = append(rep.Variants, VariantEval{ID: f.Manifest.Variants[v].ID, Accuracy: ratio(alone[v], total)})
	}
	if f.Base != nil {
		rep.Base = &VariantEval{ID: f.Manifest.Base.ID, Accuracy: ratio(alone[n], total)}
	}
	// Every non-empty subset, as a bit mask over the variants.
	correct := make([]int, 1<<n)
	answers := make([]consensus.Answer, 0, n)
	scores := make([]float64, classes)
	for img := 0; img < total; img++ {
		label := d.Samples[img].Label
		for mask := 1; mask < 1<<n; mask++ {
			answers = answers[:0]
			for v := 0; v < n; v++ {
				if mask&(1<<v) != 0 {
					o := (img*n + v) * k
					answers = append(answers, consensus.Answer{Variant: v, Indices: idx[o : o+k], Probs: val[o : o+k]})
				}
			}
			if err := consensus.Fuse(answers, f.Weights, scores); err != nil {
				return nil, err
			}
			if consensus.Argmax(scores) == label {
				correct[mask]++
			}
		}
	}
	rep.Fused = ratio(correct[1<<n-1], total)
	for size := 1; size <= n; size++ {
		s := SubsetEval{Size: size, Min: 2}
		sum := 0.0
		for mask := 1; mask < 1<<n; mask++ {
			if bits.OnesCount(uint(mask)) != size {
				continue
			}
			acc := ratio(correct[mask], total)
			s.Count++
			sum += acc
			if acc < s.Min {
				s.Min, s.MinOf = acc, nil
				for v := 0; v < n; v++ {
					if mask&(1<<v) != 0 {
						s.MinOf = append(s.MinOf, f.Manifest.Variants[v].ID)
					}
				}
			}
			s.Max = max(s.Max, acc)
		}
		s.Mean = sum / float64(s.Count)
		rep.Subsets = append(rep.Subsets, s)
	}
	return rep, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func argmax32(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
