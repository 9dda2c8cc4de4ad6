package data

// Training-time augmentation and the random numbers behind it.
//
// Every random choice of a training run is a pure function of (seed,
// epoch, batch): the generator is re-seeded from those three numbers for
// each batch, so a batch can be rebuilt on any goroutine, in any order, or
// after a restart, and come out bit for bit the same. The samplers below
// (bounded integers, uniform and normal floats, Gamma, Beta) are written
// here on top of PCG's raw 64-bit output rather than taken from
// math/rand/v2's methods, whose algorithms a future Go release may change:
// a run resumed under a newer toolchain must still see the same batches.

import (
	"image"
	"math"
	"math/bits"
	"math/rand/v2"
)

// splitmix64 is SplitMix64's output function, a bijective mixer: it turns
// structured inputs (seed 1, epoch 2, batch 3) into unrelated generator
// seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Streams of random numbers derived from one (seed, epoch): the epoch's
// permutation, and each batch's choices.
const (
	streamPermutation = 0x7065726d // "perm"
	streamBatch       = 0x62617463 // "batc"
)

// seedRNG seeds p for one stream of one (seed, epoch, batch).
func seedRNG(p *rand.PCG, seed int64, epoch, batch int, stream uint64) {
	hi := splitmix64(uint64(seed) ^ splitmix64(uint64(int64(epoch))))
	lo := splitmix64(splitmix64(uint64(int64(batch))) ^ stream)
	p.Seed(hi, lo)
}

// uintN returns a uniform integer in [0, n), n > 0, by Lemire's
// multiply-and-reject method.
func uintN(src rand.Source, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// uniformOpen returns a uniform float64 in the open interval (0, 1), so
// that its logarithm is finite.
func uniformOpen(src rand.Source) float64 {
	return (float64(src.Uint64()>>11) + 0.5) * 0x1p-53
}

// normalFloat returns a standard normal sample (Box–Muller, one of the
// pair; simplicity over speed, it is called a handful of times per batch).
func normalFloat(src rand.Source) float64 {
	u1, u2 := uniformOpen(src), uniformOpen(src)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// logGamma returns the logarithm of a Gamma(a, 1) sample, a > 0, by
// Marsaglia and Tsang's method ("A simple method for generating gamma
// variables", 2000), boosted by U^(1/a) for a < 1. The logarithm is
// returned because for small a (mixup's 0.2) the sample itself can
// underflow to 0.
func logGamma(src rand.Source, a float64) float64 {
	boost := 0.0
	if a < 1 {
		boost = math.Log(uniformOpen(src)) / a
		a++
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := normalFloat(src)
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := uniformOpen(src)
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return math.Log(d*v) + boost
		}
	}
}

// maxBetaParam bounds Beta's parameters: past it the distribution is a
// spike at 1/2 anyway, and Marsaglia–Tsang's arithmetic stays finite.
const maxBetaParam = 1e6

// betaSample returns a Beta(a, b) sample as X/(X+Y) with X ~ Gamma(a),
// Y ~ Gamma(b), computed from their logarithms.
func betaSample(src rand.Source, a, b float64) float64 {
	lx := logGamma(src, min(a, maxBetaParam))
	ly := logGamma(src, min(b, maxBetaParam))
	return 1 / (1 + math.Exp(ly-lx))
}

// permute fills p with a uniform random permutation of 0..len(p)-1
// (Fisher–Yates).
func permute(src rand.Source, p []int) {
	for i := range p {
		p[i] = i
	}
	for i := len(p) - 1; i > 0; i-- {
		j := int(uintN(src, uint64(i+1)))
		p[i], p[j] = p[j], p[i]
	}
}

// padCropFlip writes into dst (resized to s's size, alpha opaque) the
// window of s zero-padded by pad pixels on every side that starts at
// (ox, oy) in the padded image, 0 <= ox, oy <= 2*pad, mirrored left to
// right if flip: torchvision's RandomCrop(size, padding=pad, fill=0)
// followed by RandomHorizontalFlip, on 8-bit pixels. With pad 0 and no
// flip it is a plain copy.
func padCropFlip(dst *image.NRGBA, s *Sample, pad, ox, oy int, flip bool) {
	w, h := s.W, s.H
	n := w * h * 4
	if cap(dst.Pix) < n {
		dst.Pix = make([]uint8, n)
	}
	dst.Pix, dst.Stride, dst.Rect = dst.Pix[:n], w*4, image.Rect(0, 0, w, h)
	dx, dy := ox-pad, oy-pad // source pixel = output pixel + (dx, dy)
	// Columns of the output that read inside the source: x+dx in [0, w).
	x0, x1 := max(0, -dx), min(w, w-dx)
	for y := 0; y < h; y++ {
		out := dst.Pix[y*w*4 : (y+1)*w*4]
		sy := y + dy
		if sy < 0 || sy >= h || x0 >= x1 {
			for i := 0; i < len(out); i += 4 {
				out[i], out[i+1], out[i+2], out[i+3] = 0, 0, 0, 255
			}
			continue
		}
		src := s.Pix[sy*w*3 : (sy+1)*w*3]
		for x := 0; x < w; x++ {
			cx := x // column of the un-flipped crop
			if flip {
				cx = w - 1 - x
			}
			o := out[x*4 : x*4+4 : x*4+4]
			if cx < x0 || cx >= x1 {
				o[0], o[1], o[2], o[3] = 0, 0, 0, 255
				continue
			}
			p := src[(cx+dx)*3 : (cx+dx)*3+3 : (cx+dx)*3+3]
			o[0], o[1], o[2], o[3] = p[0], p[1], p[2], 255
		}
	}
}
