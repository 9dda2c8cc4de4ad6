package format

import (
	"fmt"
	"math"
)

// TrainConfig is the recipe of a (joint) training run. The zero value is not
// useful; start from DefaultTrainConfig.
type TrainConfig struct {
	Epochs         int     `json:"epochs"`          // passes over the training set
	Batch          int     `json:"batch"`           // images per step (every variant sees the same images)
	LR             float64 `json:"lr"`              // peak learning rate
	Momentum       float64 `json:"momentum"`        // SGD momentum
	Nesterov       bool    `json:"nesterov"`        // Nesterov momentum
	WeightDecay    float64 `json:"weight_decay"`    // L2, not applied to batch-norm parameters and biases
	WarmupEpochs   float64 `json:"warmup_epochs"`   // linear warm-up from LR/25 (onecycle) or 0 (cosine) to LR
	Schedule       string  `json:"schedule"`        // "cosine" or "onecycle"
	LabelSmoothing float64 `json:"label_smoothing"` // 0 = off
	Mixup          float64 `json:"mixup"`           // alpha of Beta(alpha, alpha); 0 = off (the paper: 0.2)
	PadCrop        int     `json:"pad_crop"`        // random crop after zero padding by this many pixels; 0 = off
	Flip           bool    `json:"flip"`            // random horizontal flip
	LossA          float64 `json:"loss_a"`          // loss = LossA * sum_i CE(variant_i) + LossB * CE(fused)
	LossB          float64 `json:"loss_b"`
	Dropout        float64 `json:"dropout"` // classifier dropout probability, torchvision's classifier.0 (0.2); 0 = off
	Seed           int64   `json:"seed"`    // every random choice derives from it

	// Cutout (DeVries & Taylor 2017): a square of this side, centred
	// anywhere in the augmented image (clipped at its edges), is set to the
	// data's mean colour; 0 = off.
	Cutout int `json:"cutout,omitempty"`
	// Knowledge distillation from the family's trained base model (Hinton
	// et al. 2015): each variant's own term becomes
	// (1-KD)*CE(label) + KD*T^2*KL(teacher_T || variant_T), with the softmax
	// of both taken at temperature T = KDTemperature; 0 = off. Variants only.
	KD            float64 `json:"kd,omitempty"`
	KDTemperature float64 `json:"kd_temperature,omitempty"`
}

// DefaultTrainConfig is the recipe the shipped families use unless a preset
// says otherwise.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Epochs:       30,
		Batch:        128,
		LR:           0.1,
		Momentum:     0.9,
		Nesterov:     true,
		WeightDecay:  5e-4,
		WarmupEpochs: 1,
		Schedule:     "onecycle",
		Mixup:        0,
		PadCrop:      4,
		Flip:         true,
		LossA:        1,
		LossB:        1,
		Dropout:      0.2,
		Seed:         1,
	}
}

// TrainingRecord is how a family's weights were made, kept in family.json so
// that anyone can see and repeat it.
type TrainingRecord struct {
	Command     string      `json:"command"`            // the command line that trained it
	Data        string      `json:"data"`               // training data as given
	ValFraction float64     `json:"val_fraction"`       // part of the data held out for validation
	ValSeed     int64       `json:"val_seed,omitempty"` // seed of that split (absent in older records: config.seed)
	Teacher     string      `json:"teacher,omitempty"`  // SHA-256 of the base model distilled from
	Limit       int         `json:"limit,omitempty"`    // trained on a stratified subset of this many images
	Config      TrainConfig `json:"config"`
	Epochs      int         `json:"epochs_done"`
	Threads     int         `json:"threads"`
	WallSeconds float64     `json:"wall_seconds"`           // summed over resumed runs
	ImagesPerS  float64     `json:"images_per_s"`           // mean over the whole run (validation and checkpoints included)
	ValAccuracy []float64   `json:"val_accuracy,omitempty"` // per model at the end (variants..., fused)
	Machine     string      `json:"machine"`                // CPU model and cores
	Finished    string      `json:"finished"`               // RFC 3339
}

// Validate reports the first field of the recipe that no training run can
// use, naming it.
func (cfg TrainConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("format: recipe: "+format, args...)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case cfg.Batch < 1:
		return bad("batch %d, want at least 1", cfg.Batch)
	case cfg.Epochs < 1:
		return bad("%d epochs, want at least 1", cfg.Epochs)
	case !finite(cfg.LabelSmoothing) || cfg.LabelSmoothing < 0 || cfg.LabelSmoothing >= 1:
		return bad("label smoothing %v, want [0, 1)", cfg.LabelSmoothing)
	case !finite(cfg.Mixup) || cfg.Mixup < 0:
		return bad("mixup alpha %v, want a finite number >= 0", cfg.Mixup)
	case !finite(cfg.LossA) || !finite(cfg.LossB) || cfg.LossA < 0 || cfg.LossB < 0 || cfg.LossA+cfg.LossB == 0:
		return bad("loss weights a=%v b=%v, want non-negative and not both zero", cfg.LossA, cfg.LossB)
	case !finite(cfg.Momentum) || cfg.Momentum < 0 || cfg.Momentum >= 1:
		return bad("momentum %v, want [0, 1)", cfg.Momentum)
	case cfg.Nesterov && cfg.Momentum == 0:
		return bad("Nesterov momentum needs a momentum")
	case !finite(cfg.WeightDecay) || cfg.WeightDecay < 0:
		return bad("weight decay %v, want a non-negative number", cfg.WeightDecay)
	case !finite(cfg.Dropout) || cfg.Dropout < 0 || cfg.Dropout >= 1:
		return bad("dropout %v, want [0, 1)", cfg.Dropout)
	case !finite(cfg.LR) || cfg.LR < 0:
		return bad("learning rate %v", cfg.LR)
	case !finite(cfg.WarmupEpochs) || cfg.WarmupEpochs < 0:
		return bad("warm-up %v epochs", cfg.WarmupEpochs)
	case cfg.Cutout < 0:
		return bad("cutout %d pixels, want 0 (off) or more", cfg.Cutout)
	case !finite(cfg.KD) || cfg.KD < 0 || cfg.KD > 1:
		return bad("distillation weight %v, want [0, 1]", cfg.KD)
	case cfg.KD > 0 && (!finite(cfg.KDTemperature) || cfg.KDTemperature <= 0):
		return bad("distillation temperature %v, want a positive number", cfg.KDTemperature)
	}
	switch cfg.Schedule {
	case "", "cosine", "onecycle":
	default:
		return bad("schedule %q, want \"cosine\" or \"onecycle\"", cfg.Schedule)
	}
	return nil
}

// SplitSeed is the seed the run's validation split was drawn with: ValSeed,
// or in records written before it existed, the recipe's seed.
func (r *TrainingRecord) SplitSeed() int64 {
	if r.ValSeed != 0 {
		return r.ValSeed
	}
	return r.Config.Seed
}
