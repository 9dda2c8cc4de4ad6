// Package data loads training and evaluation data and turns it into batches.
//
// LoadDataset reads an MNIST IDX images file (labels beside it, gzipped or
// not), a folder of JPEG/PNG images with one sub-folder per class, or a .tar
// or .tar.gz of such a folder, into a Dataset of 8-bit RGB samples decoded
// with nn's preprocessing, refusing oversized and malformed input with typed
// errors (every decoder has a fuzz target). Dataset.Split holds out a
// stratified validation part.
//
// A Batcher builds the batches of a joint training run: every model gets the
// same images, each resized to its own resolution, with padding-crop, flips,
// mixup and label smoothing as the recipe says. Every random choice derives
// from (seed, epoch, batch), so a batch is the same whichever goroutine
// builds it and whenever, which is what lets a resumed run match an
// uninterrupted one bit for bit.
package data
