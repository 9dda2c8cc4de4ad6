package nn

// TrainConfig is the recipe of a (joint) training run. The zero value is not
// useful; start from DefaultTrainConfig.
type TrainConfig struct {
	Epochs         int     // passes over the training set
	Batch          int     // images per step (every variant sees the same images)
	LR             float64 // peak learning rate
	Momentum       float64 // SGD momentum
	Nesterov       bool    // Nesterov momentum
	WeightDecay    float64 // L2, not applied to batch-norm parameters and biases
	WarmupEpochs   float64 // linear warm-up from LR/25 (onecycle) or 0 (cosine) to LR
	Schedule       string  // "cosine" or "onecycle"
	LabelSmoothing float64 // 0 = off
	Mixup          float64 // alpha of Beta(alpha, alpha); 0 = off (the paper: 0.2)
	PadCrop        int     // random crop after zero padding by this many pixels; 0 = off
	Flip           bool    // random horizontal flip
	LossA, LossB   float64 // loss = LossA * sum_i CE(variant_i) + LossB * CE(fused)
	Seed           int64   // every random choice derives from it
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
		Seed:         1,
	}
}

// StepStats reports one training step.
type StepStats struct {
	Loss         float64   // the combined loss, averaged over the batch
	VariantLoss  []float64 // CE of each variant, averaged over the batch
	FusedLoss    float64   // CE of the fused output
	Correct      []int     // per variant: images whose arg-max equals the (dominant) label
	FusedCorrect int
	Images       int
}
