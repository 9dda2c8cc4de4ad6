package train

// StepStats reports one training step.
type StepStats struct {
	Loss         float64   // the combined loss, averaged over the batch
	VariantLoss  []float64 // CE of each variant, averaged over the batch
	FusedLoss    float64   // CE of the fused output
	Correct      []int     // per variant: images whose arg-max equals the (dominant) label
	FusedCorrect int
	Images       int
}
