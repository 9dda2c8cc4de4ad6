package main

import (
	"bytes"
	"image"
	"image/png"
)

// BombSide is the side of the decompression bomb: 6300x6300 is 39.7
// megapixels, under the peers' default 40 MP limit, so they decode it.
const BombSide = 6300

// Bomb encodes a side x side gray PNG of zeros: about 1/1000 of its
// decoded size (38 KB for 6300x6300 against 40 MB of pixels, 160 MB as
// RGBA).
func Bomb(side int) ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, side, side))
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
