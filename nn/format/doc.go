// Package format reads and writes varpar's files: safetensors weights
// (DecodeSafetensors, WriteSafetensors; tensor names as torchvision's
// mobilenet_v2 state_dict, so PyTorch-trained weights load unchanged), the
// family manifest family.json (Manifest, VariantInfo, DecodeManifest,
// Validate, FusionWeights) with the training recipe and record it carries
// (TrainConfig, TrainingRecord), and the checksummed bridge from a variant's
// bytes to an nn.Model (DecodeVariant).
//
// Decoders take bytes or an io.Reader and refuse oversized or malformed input
// with typed errors (*nn.FormatError, *nn.SizeError, *ChecksumError, ...);
// each has a fuzz target. Functions that take paths are in files.go and only
// read or write whole files around them: ReadManifest, LoadFamily,
// LoadVariant, ReadSafetensors, and SaveWeights and SaveManifest, which write
// atomically through internal/atomicfile.
//
// format imports nn (a manifest holds an nn.Spec); nn imports no format.
package format
