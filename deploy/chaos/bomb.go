package main

import (
	"bytes"
	"image"
	"image/png"
)

// BombSides are the sides of the decompression bombs, sent in turn: 6300x6300
// (39.7 megapixels) is the trial's bomb, under the 40 MP default limit the
// peers had then, refused at its header now; 3990x3990 (15.9 megapixels) is
// under today's 16 MP default, so the peers decode it.
var BombSides = []int{6300, 3990}

// Bomb encodes a side x side gray PNG of zeros: about 1/1000 of its
// decoded size (38 KB for 6300x6300 against 40 MB of pixels, 160 MB as
// RGBA; 16 KB for 3990x3990).
func Bomb(side int) ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, side, side))
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
