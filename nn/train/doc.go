// Package train trains a family's MobileNetV2 variants jointly, as the
// Variant Parallelism paper does: every variant sees the same batch at its own
// resolution, with loss a*sum_i CE(variant_i) + b*CE(fused).
//
// Trainer is the engine: forward and backward passes for every layer (batch
// norm in training mode, ReLU6, residuals, dropout), SGD with momentum and the
// learning-rate schedule, checkpoints that resume bit-exactly
// (SaveCheckpoint, LoadCheckpoint), and Weights to export torchvision-named
// tensors. It runs on an nn.Pool and the kernels of nn/internal/kernels, and
// allocates nothing per step after the first. Evaluate measures a family on a
// data set (each variant, the fused answer, subsets of variants); presets are
// the shipped families' recipes.
//
// Run is the whole `varpar train` command without its flags: it merges the
// recipe (the family's, then Overrides), loads the data, trains with batches
// prepared on a goroutine it owns, validates and checkpoints after every
// epoch, and writes the weights and the manifest. A cancelled context stops it
// between steps, leaving the last checkpoint for a resume.
package train
