// Package nn is varpar's inference engine: a MobileNetV2 described by a Spec
// (width, resolution, classes, block table, preprocessing) and built into a
// Model from its weights, run batch by batch through a Session, or image by
// image through a Runner that also preprocesses (DecodeImage, Resizer,
// ImageToTensor: the same code path training and evaluation use) and ends
// in Softmax and TopK.
//
// Tensors are NHWC float32. Batch norm is folded into the convolutions when
// the Model is built; after a Session's first call, a forward pass allocates
// nothing. The compute Pool is the only place nn starts goroutines: each layer
// is split by output rows across at most GOMAXPROCS workers. The kernels
// (GEMM, depthwise 3x3, in AVX-512 and AVX2 assembly with pure-Go fallbacks)
// live in nn/internal/kernels; ISA reports which set runs.
//
// nn reads no files and no clock. Weights arrive as named tensors (Weights);
// package nn/format decodes safetensors files and family manifests into them,
// nn/data loads data sets and nn/train trains models. A typical use, with a
// family on disk:
//
//	fam, err := format.LoadFamily("models/mnist") // manifest, checksums, weights
//	if err != nil {
//		return err
//	}
//	pool := nn.NewPool(0) // all cores
//	defer pool.Close()
//	img, err := nn.LoadImageFile("digit.png", nn.DefaultMaxPixels)
//	if err != nil {
//		return err
//	}
//	idx, prob := make([]int32, 3), make([]float32, 3)
//	fam.Models[0].NewRunner(pool).TopK(img, idx, prob) // three best classes
package nn
