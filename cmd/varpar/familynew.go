package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/train"
)

func newFamilyNewCmd() *cobra.Command {
	var (
		preset   string
		variants int
		out      string
		seed     int64
		force    bool
	)
	cmd := &cobra.Command{
		Use:   "new --preset mnist|cifar10 [--variants N] --out DIR",
		Short: "Write a new, untrained family from a preset",
		Long: `Write a family directory: family.json with the preset's variants, its base model
(MobileNetV2 width 1.0 at the dataset's resolution) and its training recipe, and freshly
initialised weights for each, so that the family loads at once and "varpar train" can
train it. Every variant has at least 5.8x fewer parameters and 4.3x fewer MACs than the
base, the paper's lower bounds; "varpar family --family DIR" prints the ratios.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if preset == "" || out == "" {
				return usagef("--preset (%s) and --out DIR are required", strings.Join(train.PresetNames(), ", "))
			}
			p, err := train.NewPreset(preset, variants)
			if err != nil {
				return usageError{err}
			}
			var old *format.Manifest
			if _, err := os.Stat(filepath.Join(out, "family.json")); err == nil && !force {
				return fmt.Errorf("%s already holds a family; pass --force to overwrite it", out)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			} else if err == nil {
				old, _ = format.ReadManifest(out) // a damaged one leaves its files behind
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			m := &p.Manifest
			p.Recipe.Seed = seed
			m.Training = &format.TrainingRecord{Config: p.Recipe}
			m.BaseTraining = &format.TrainingRecord{Config: p.Recipe}
			all := []*format.VariantInfo{}
			for i := range m.Variants {
				all = append(all, &m.Variants[i])
			}
			all = append(all, m.Base)
			for i, v := range all {
				cfg := p.Recipe
				cfg.Seed = seed + int64(i) // distinct initial weights per model
				tr, err := train.NewTrainer([]nn.Spec{v.Spec}, []float64{1}, cfg, nil)
				if err != nil {
					return err
				}
				names, tensors := tr.Weights(0)
				if err := format.SaveWeights(out, v, names, tensors); err != nil {
					return err
				}
			}
			if err := format.SaveManifest(out, m); err != nil {
				return err
			}
			removeReplaced(cmd.ErrOrStderr(), out, old, m)
			f, err := format.LoadFamily(out)
			if err != nil {
				return err
			}
			return printFamily(cmd.OutOrStdout(), f, false)
		},
	}
	cmd.Flags().StringVar(&preset, "preset", "", "preset: "+strings.Join(train.PresetNames(), " or "))
	cmd.Flags().IntVar(&variants, "variants", 4, "number of variants (1 to 6)")
	cmd.Flags().StringVar(&out, "out", "", "directory to write the family into")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed of the initial weights and of the recipe")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite a family already in --out")
	return cmd
}

// removeReplaced deletes what a family overwritten by --force leaves behind:
// the old manifest's weight files (*.safetensors) that the new one does not
// name, and the checkpoints of interrupted runs: --force starts the family
// over, and a stale checkpoint would stop the next train until removed.
func removeReplaced(w io.Writer, dir string, old, cur *format.Manifest) {
	keep := map[string]bool{}
	for _, v := range cur.Variants {
		keep[v.Weights] = true
	}
	if cur.Base != nil {
		keep[cur.Base.Weights] = true
	}
	var stale []string
	if old != nil {
		for _, v := range old.Variants {
			stale = append(stale, v.Weights)
		}
		if old.Base != nil {
			stale = append(stale, old.Base.Weights)
		}
	}
	stale = append(stale, filepath.Base(train.CheckpointPath(dir, false)), filepath.Base(train.CheckpointPath(dir, true)))
	for _, name := range stale {
		if keep[name] || name != filepath.Base(name) || name == "family.json" ||
			!strings.HasSuffix(name, ".safetensors") && !strings.HasSuffix(name, ".ckpt") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err == nil {
			fmt.Fprintf(w, "removed %s (not part of the new family)\n", filepath.Join(dir, name))
		}
	}
}
