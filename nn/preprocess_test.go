package nn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

var (
	testMean = [3]float32{0.485, 0.456, 0.406}
	testStd  = [3]float32{0.229, 0.224, 0.225}
)

// normalise is the reference formula for one channel value in [0, 255].
func normalise(v float32, c int) float32 { return (v/255 - testMean[c]) / testStd[c] }

// genericImage hides an image's concrete type so ToTensor takes its At path.
type genericImage struct{ image.Image }

func toTensor(img image.Image, res int) []float32 {
	dst := make([]float32, res*res*3)
	ImageToTensor(img, res, testMean, testStd, dst)
	return dst
}

func randNRGBA(rng *rand.Rand, w, h int, opaque bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.IntN(256))
		if opaque && i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	return m
}

// rgbOf returns the 8-bit RGB the preprocessing should see for c, for the
// types whose conversion is 8-bit exact.
func rgbOf(c color.Color) (float32, float32, float32) {
	switch c := c.(type) {
	case color.YCbCr:
		r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
		return float32(r), float32(g), float32(b)
	case color.CMYK:
		r, g, b := color.CMYKToRGB(c.C, c.M, c.Y, c.K)
		return float32(r), float32(g), float32(b)
	case color.NRGBA:
		return float32(c.R), float32(c.G), float32(c.B)
	}
	r, g, b, _ := c.RGBA()
	return float32(r) / 257, float32(g) / 257, float32(b) / 257
}

// TestImageToTensorExactAtRes checks that an image already res×res comes out
// as exactly its normalised pixels, for every fast path.
func TestImageToTensorExactAtRes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const res = 12
	src := randNRGBA(rng, res, res, true)
	gray := image.NewGray(src.Rect)
	ycc := image.NewYCbCr(src.Rect, image.YCbCrSubsampleRatio420)
	cmyk := image.NewCMYK(src.Rect)
	pal := image.NewPaletted(src.Rect, color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{200, 100, 50, 255}, color.Gray{77}})
	rgba := image.NewRGBA(src.Rect)
	g16 := image.NewGray16(src.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(rng.IntN(256))
	}
	for _, s := range [][]uint8{ycc.Y, ycc.Cb, ycc.Cr, cmyk.Pix} {
		for i := range s {
			s[i] = uint8(rng.IntN(256))
		}
	}
	for i := range pal.Pix {
		pal.Pix[i] = uint8(rng.IntN(3))
	}
	for i := range g16.Pix {
		g16.Pix[i] = uint8(rng.IntN(256))
	}
	copy(rgba.Pix, src.Pix) // opaque, so premultiplied == straight

	for name, img := range map[string]image.Image{
		"NRGBA": src, "RGBA": rgba, "Gray": gray, "YCbCr": ycc, "CMYK": cmyk, "Paletted": pal, "Gray16": g16,
	} {
		got := toTensor(img, res)
		for y := 0; y < res; y++ {
			for x := 0; x < res; x++ {
				r, g, b := rgbOf(img.At(x, y))
				for c, v := range []float32{r, g, b} {
					i := (y*res+x)*3 + c
					if want := normalise(v, c); got[i] != want {
						t.Fatalf("%s: pixel (%d,%d) channel %d = %v, want exactly %v", name, x, y, c, got[i], want)
					}
				}
			}
		}
	}
}

// TestImageToTensorFastPathsMatchGeneric compares every fast path with the
// At-based path on images that need resampling, including sub-images with
// odd origins (chroma indexing) and non-opaque pixels.
func TestImageToTensorFastPathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const w, h = 53, 41
	r := image.Rect(0, 0, w, h)
	fill := func(s []uint8) {
		for i := range s {
			s[i] = uint8(rng.IntN(256))
		}
	}
	imgs := map[string]image.Image{}
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(r, ratio)
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		imgs["YCbCr"+ratio.String()] = m
		imgs["YCbCr"+ratio.String()+"-sub"] = m.SubImage(image.Rect(3, 5, 50, 38))
	}
	g := image.NewGray(r)
	fill(g.Pix)
	imgs["Gray"], imgs["Gray-sub"] = g, g.SubImage(image.Rect(1, 1, 30, 40))
	// Straight-alpha types are compared opaque here (the generic path
	// premultiplies, which loses their colour at low alpha); that alpha is
	// ignored is checked below.
	nA := image.NewNRGBA(r)
	fill(nA.Pix)
	n := image.NewNRGBA(r)
	copy(n.Pix, nA.Pix)
	for i := 3; i < len(n.Pix); i += 4 {
		n.Pix[i] = 255
	}
	imgs["NRGBA"] = n
	cm := image.NewCMYK(r)
	fill(cm.Pix)
	imgs["CMYK"] = cm
	g16 := image.NewGray16(r)
	fill(g16.Pix)
	imgs["Gray16"] = g16
	n64A := image.NewNRGBA64(r)
	fill(n64A.Pix)
	n64 := image.NewNRGBA64(r)
	copy(n64.Pix, n64A.Pix)
	for i := 6; i < len(n64.Pix); i += 8 {
		n64.Pix[i], n64.Pix[i+1] = 0xff, 0xff
	}
	imgs["NRGBA64"] = n64
	pA := image.NewPaletted(r, nil)
	p := image.NewPaletted(r, nil)
	for i := 0; i < 200; i++ { // 200 entries: indices 200..255 are out of the palette
		c := color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))}
		pA.Palette = append(pA.Palette, c)
		c.A = 255
		p.Palette = append(p.Palette, c)
	}
	fill(p.Pix)
	for i := range p.Pix {
		p.Pix[i] %= 200 // image.Paletted.At panics past the palette
	}
	copy(pA.Pix, p.Pix)
	imgs["Paletted"] = p
	// Premultiplied types built from straight colours with any alpha,
	// some 0: both paths un-premultiply the same way.
	rgba := image.NewRGBA(r)
	rgba64 := image.NewRGBA64(r)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := nA.NRGBAAt(x, y)
			if x%7 == 0 {
				c.A = 0
			}
			rgba.Set(x, y, c)
			rgba64.Set(x, y, c)
		}
	}
	imgs["RGBA"], imgs["RGBA64"] = rgba, rgba64

	// The fast path reads an index past the palette as black, where
	// Paletted.At would panic.
	past := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.White})
	past.Pix = []uint8{0, 250, 250, 0}
	if got := toTensor(past, 2); got[3] != normalise(0, 0) || got[0] != normalise(255, 0) {
		t.Errorf("index past the palette: %v", got)
	}

	for _, pair := range [][2]image.Image{{nA, n}, {n64A, n64}, {pA, p}} {
		for _, res := range []int{7, 16, 60} {
			if !sameBits(toTensor(pair[0], res), toTensor(pair[1], res)) {
				t.Errorf("%T res %d: alpha changed the result", pair[0], res)
			}
		}
	}

	for name, img := range imgs {
		for _, res := range []int{7, 16, 60} {
			fast := toTensor(img, res)
			slow := toTensor(genericImage{img}, res)
			// The generic path works in 16-bit precision (YCbCr and CMYK
			// RGBA() are not rounded to 8 bits), so allow one 8-bit step.
			tol := float32(1.0/255/0.224) + 1e-5
			for i := range fast {
				if d := float32(math.Abs(float64(fast[i] - slow[i]))); d > tol || math.IsNaN(float64(fast[i])) {
					t.Fatalf("%s res %d: value %d fast %v generic %v", name, res, i, fast[i], slow[i])
				}
			}
		}
	}

	// For YCbCr the fast path must equal, bit for bit, the same image
	// converted to RGB with YCbCrToRGB first (what At+YCbCrToRGB gives).
	for name, img := range imgs {
		if !strings.HasPrefix(name, "YCbCr") && name != "CMYK" && name != "Gray" && name != "Gray-sub" {
			continue
		}
		b := img.Bounds()
		ref := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				cr, cg, cb := rgbOf(img.At(b.Min.X+x, b.Min.Y+y))
				ref.SetNRGBA(x, y, color.NRGBA{uint8(cr), uint8(cg), uint8(cb), 255})
			}
		}
		for _, res := range []int{7, 16, 60} {
			if got, want := toTensor(img, res), toTensor(ref, res); !sameBits(got, want) {
				t.Errorf("%s res %d: fast path differs from YCbCrToRGB/CMYKToRGB reference", name, res)
			}
		}
	}
}

func TestImageToTensorConstant(t *testing.T) {
	c := color.NRGBA{200, 10, 99, 255}
	for _, sz := range [][2]int{{300, 200}, {17, 40}, {5, 5}, {1, 1}, {1000, 3}} {
		m := image.NewNRGBA(image.Rect(0, 0, sz[0], sz[1]))
		for i := 0; i < len(m.Pix); i += 4 {
			copy(m.Pix[i:], []uint8{c.R, c.G, c.B, c.A})
		}
		for _, res := range []int{1, 8, 33, 224} {
			got := toTensor(m, res)
			for i, v := range got {
				want := normalise([]float32{200, 10, 99}[i%3], i%3)
				if math.Abs(float64(v-want)) > 1e-4 {
					t.Fatalf("%dx%d → %d: value %d = %v, want %v", sz[0], sz[1], res, i, v, want)
				}
			}
		}
	}
}

// gradient returns a w×h gray image whose value is f(x).
func gradient(w, h int, f func(x int) uint8) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Pix[y*m.Stride+x] = f(x)
		}
	}
	return m
}

// pixelValue undoes the normalisation of channel 0; pixelValueC of channel c.
func pixelValue(v float32) float64 { return pixelValueC(v, 0) }

func pixelValueC(v float32, c int) float64 {
	return (float64(v)*float64(testStd[c]) + float64(testMean[c])) * 255
}

func TestImageToTensorGradient(t *testing.T) {
	// Downscale 256 → 64 (factor 4, support 4): a linear ramp filtered by a
	// symmetric kernel gives the ramp at the output pixel's centre,
	// (i+0.5)*4 - 0.5, wherever the kernel is not clipped by the border.
	// Upscale 16 → 64: plain linear interpolation, (i+0.5)/4 - 0.5.
	cases := []struct {
		w, res int
		want   func(i int) float64
		lo, hi int // outputs whose kernel is not clipped
	}{
		{256, 64, func(i int) float64 { return (float64(i)+0.5)*4 - 0.5 }, 1, 63},
		{16, 64, func(i int) float64 { return (float64(i)+0.5)/4 - 0.5 }, 2, 62},
	}
	for _, c := range cases {
		img := gradient(c.w, c.w, func(x int) uint8 { return uint8(x) })
		got := toTensor(img, c.res)
		prev := math.Inf(-1)
		for y := 0; y < c.res; y++ {
			for x := 0; x < c.res; x++ {
				v := pixelValue(got[(y*c.res+x)*3])
				if y == 0 {
					// Non-decreasing everywhere; strictly increasing where the
					// kernel is not clipped (an upscale repeats the border).
					if v < prev || (x > c.lo && x < c.hi && v <= prev) {
						t.Errorf("%d→%d: not increasing at column %d: %v after %v", c.w, c.res, x, v, prev)
					}
					prev = v
					if x >= c.lo && x < c.hi && math.Abs(v-c.want(x)) > 1e-3 {
						t.Errorf("%d→%d: column %d = %v, want %v", c.w, c.res, x, v, c.want(x))
					}
				} else if other := pixelValue(got[x*3]); math.Abs(v-other) > 1e-3 {
					t.Errorf("%d→%d: row %d differs from row 0 at column %d", c.w, c.res, y, x)
				}
			}
		}
	}
}

func TestImageToTensorCentreCrop(t *testing.T) {
	// Three vertical bands; the shorter side is already res, so the crop is
	// exactly the middle band with no resampling.
	const res = 8
	bands := func(w, h int, horizontal bool) *image.NRGBA {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				k := x * 3 / w
				if horizontal {
					k = y * 3 / h
				}
				c := [3]color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}}[k]
				m.SetNRGBA(x, y, c)
			}
		}
		return m
	}
	for _, img := range []*image.NRGBA{bands(3*res, res, false), bands(res, 3*res, true)} {
		got := toTensor(img, res)
		for i := 0; i < len(got); i += 3 {
			if got[i] != normalise(0, 0) || got[i+1] != normalise(255, 1) || got[i+2] != normalise(0, 2) {
				t.Fatalf("%v: pixel %d is %v, want pure green", img.Bounds(), i/3, got[i:i+3])
			}
		}
	}

	// Downscaled: 48×16 → resized 24×8, crop columns 8..15 of the resized
	// image; on a ramp p(x)=x the crop is centred on the image centre 23.5
	// and column i is at (8+i+0.5)*2 - 0.5.
	got := toTensor(gradient(48, 16, func(x int) uint8 { return uint8(x) }), res)
	for x := 0; x < res; x++ {
		want := (8+float64(x)+0.5)*2 - 0.5
		if v := pixelValue(got[x*3]); math.Abs(v-want) > 1e-3 {
			t.Errorf("48x16 crop column %d = %v, want %v", x, v, want)
		}
	}

	// Odd leftover: torchvision's round half to even.
	for d, want := range map[int64]int64{0: 0, 1: 0, 2: 1, 3: 2, 4: 2, 5: 2, 7: 4, 9: 4} {
		if got := centreOffset(d); got != want {
			t.Errorf("centreOffset(%d) = %d, want %d", d, got, want)
		}
	}
	// 11 wide, res 8: offset round(1.5) = 2, so columns 2..9.
	got = toTensor(gradient(11, 8, func(x int) uint8 { return uint8(10 * x) }), res)
	for x := 0; x < res; x++ {
		if v := got[x*3]; v != normalise(float32(10*(x+2)), 0) {
			t.Errorf("11x8 crop column %d = %v, want source column %d", x, pixelValue(v), x+2)
		}
	}
}

func TestImageToTensorGrayIsRGB(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	g := image.NewGray(image.Rect(0, 0, 37, 23))
	n := image.NewNRGBA(g.Rect)
	for i := range g.Pix {
		v := uint8(rng.IntN(256))
		g.Pix[i] = v
		copy(n.Pix[4*i:], []uint8{v, v, v, 255})
	}
	same := [3]float32{0.5, 0.5, 0.5}
	for _, res := range []int{23, 16, 50} {
		a := make([]float32, res*res*3)
		b := make([]float32, res*res*3)
		ImageToTensor(g, res, same, same, a)
		ImageToTensor(n, res, same, same, b)
		if !sameBits(a, b) {
			t.Errorf("res %d: gray and its RGB copy differ", res)
		}
		for i := 0; i < len(a); i += 3 {
			if a[i] != a[i+1] || a[i] != a[i+2] {
				t.Fatalf("res %d: gray pixel %d has unequal channels %v", res, i/3, a[i:i+3])
			}
		}
	}
}

func TestImageToTensorAlphaIgnored(t *testing.T) {
	// A half-transparent pixel keeps its straight colour, whatever the type.
	n := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	n.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 128})
	r := image.NewRGBA(n.Rect)
	r.Set(0, 0, n.At(0, 0)) // premultiplied: ≈ {100, 50, 25, 128}
	for _, img := range []image.Image{n, r, genericImage{n}} {
		got := toTensor(img, 1)
		for c, want := range []float32{200, 100, 50} {
			if v := pixelValueC(got[c], c); math.Abs(v-float64(want)) > 1.5 {
				t.Errorf("%T: channel %d = %v, want ≈ %v", img, c, v, want)
			}
		}
	}
}

func TestImageToTensorEmptyAndSmall(t *testing.T) {
	got := toTensor(image.NewGray(image.Rect(0, 0, 0, 5)), 4)
	for i, v := range got {
		if v != normalise(0, i%3) {
			t.Fatalf("empty image value %d = %v, want black", i, v)
		}
	}
	// 1×N and N×1 extremes resize without trouble.
	for _, r := range []image.Rectangle{image.Rect(0, 0, 1, 5000), image.Rect(0, 0, 5000, 1)} {
		for _, v := range toTensor(image.NewGray(r), 9) {
			if v != normalise(0, 0) && v != normalise(0, 1) && v != normalise(0, 2) {
				t.Fatalf("%v: unexpected value %v", r, v)
			}
		}
	}
}

func TestResizerNoAllocs(t *testing.T) {
	img := image.NewYCbCr(image.Rect(0, 0, 640, 480), image.YCbCrSubsampleRatio420)
	var r Resizer
	dst := make([]float32, 224*224*3)
	r.ToTensor(img, 224, testMean, testStd, dst) // grow the scratch buffers
	if n := testing.AllocsPerRun(5, func() { r.ToTensor(img, 224, testMean, testStd, dst) }); n != 0 {
		t.Errorf("Resizer.ToTensor allocates %v times per call after warm-up", n)
	}
}

func BenchmarkResizerJPEG(b *testing.B) {
	img := image.NewYCbCr(image.Rect(0, 0, 4032, 3024), image.YCbCrSubsampleRatio420)
	var r Resizer
	dst := make([]float32, 224*224*3)
	for b.Loop() {
		r.ToTensor(img, 224, testMean, testStd, dst)
	}
}

// pngChunk appends one PNG chunk with its CRC.
func pngChunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	start := len(out)
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}

// hugePNG is a PNG header declaring w×h RGB pixels, with no pixel data.
func hugePNG(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit truecolour
	out := pngChunk(append([]byte(nil), pngMagic...), "IHDR", ihdr)
	return pngChunk(out, "IDAT", []byte{0x78, 0x9c})
}

// hugeJPEG is a JFIF header with a baseline SOF declaring w×h, no scan.
func hugeJPEG(w, h uint16) []byte {
	out := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	out = append(out, 0xff, 0xc0, 0, 17, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 3,
		1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0)
	return out
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeImagePixelBudget(t *testing.T) {
	cases := []struct {
		name          string
		data          []byte
		width, height int
	}{
		{"png", hugePNG(100000, 100000), 100000, 100000},
		{"jpeg", hugeJPEG(65535, 65535), 65535, 65535},
		{"png-wide", hugePNG(1<<31-1, 1), 1<<31 - 1, 1},
	}
	for _, c := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := DecodeImage(bytes.NewReader(c.data), 0)
		runtime.ReadMemStats(&after)
		if img != nil || !errors.Is(err, ErrPixelBudget) {
			t.Fatalf("%s: got %v, want ErrPixelBudget", c.name, err)
		}
		var pe *PixelBudgetError
		if !errors.As(err, &pe) || pe.Width != c.width || pe.Height != c.height || pe.Budget != DefaultMaxPixels {
			t.Errorf("%s: error %+v does not carry the size and budget", c.name, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "x") || !strings.Contains(msg, "40000000") {
			t.Errorf("%s: message %q does not state size and budget", c.name, msg)
		}
		// Refused from the header alone: nothing near width*height allocated.
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Errorf("%s: allocated %d bytes before refusing", c.name, d)
		}
	}

	// A real small image over a tiny budget, and at exactly the budget.
	data := encodePNG(t, image.NewGray(image.Rect(0, 0, 10, 10)))
	if _, err := DecodeImage(bytes.NewReader(data), 99); !errors.Is(err, ErrPixelBudget) {
		t.Errorf("10x10 with budget 99: %v", err)
	}
	if _, err := DecodeImage(bytes.NewReader(data), 100); err != nil {
		t.Errorf("10x10 with budget 100: %v", err)
	}
}

func TestDecodeImageValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	src := randNRGBA(rng, 20, 14, true)
	gray := image.NewGray(image.Rect(0, 0, 9, 9))
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"png-nrgba", encodePNG(t, src), "*image.RGBA"}, // opaque NRGBA is written as RGB
		{"png-gray", encodePNG(t, gray), "*image.Gray"},
		{"jpeg", encodeJPEG(t, src), "*image.YCbCr"},
		{"jpeg-gray", encodeJPEG(t, gray), "*image.Gray"},
	} {
		img, err := DecodeImage(bytes.NewReader(c.data), 0)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := typeName(img); got != c.want {
			t.Errorf("%s: decoded as %s, want %s", c.name, got, c.want)
		}
	}
	// PNG round trip is lossless: decoding gives the pixels back.
	img, err := DecodeImage(bytes.NewReader(encodePNG(t, src)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(toTensor(img, 14), toTensor(src, 14)) {
		t.Error("decoded PNG differs from its source")
	}
	// Reading in one-byte pieces (a slow network) works the same.
	if _, err := DecodeImage(iotest.OneByteReader(bytes.NewReader(encodeJPEG(t, src))), 0); err != nil {
		t.Errorf("one-byte reader: %v", err)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *image.RGBA:
		return "*image.RGBA"
	case *image.NRGBA:
		return "*image.NRGBA"
	case *image.Gray:
		return "*image.Gray"
	case *image.YCbCr:
		return "*image.YCbCr"
	}
	return "other"
}

func TestDecodeImageBad(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	pngData := encodePNG(t, randNRGBA(rng, 32, 32, false))
	jpegData := encodeJPEG(t, randNRGBA(rng, 32, 32, true))
	corrupt := bytes.Clone(pngData)
	corrupt[len(corrupt)/2] ^= 0xff // breaks the IDAT CRC or the zlib stream
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a JPEG or PNG image: no data"},
		{"garbage", []byte("hello, world, not an image"), "not a JPEG or PNG image (starts with 68 65 6c"},
		{"gif", gif, "not a JPEG or PNG"},
		{"png magic only", pngMagic, "truncated png"},
		{"jpeg soi only", []byte{0xff, 0xd8}, "truncated jpeg"},
		{"truncated png", pngData[:len(pngData)/2], "png image"},
		{"truncated jpeg", jpegData[:len(jpegData)/2], "jpeg image"},
		{"corrupt png", corrupt, "png image"},
		{"zero width png", hugePNG(0, 10), "png image"},
		{"zero height jpeg", hugeJPEG(10, 0), "jpeg image"},
	}
	for _, c := range cases {
		img, err := DecodeImage(bytes.NewReader(c.data), 0)
		var fe *FormatError
		if img != nil || !errors.As(err, &fe) {
			t.Errorf("%s: got %T %v, want a *FormatError", c.name, err, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.want)
		}
	}

	// A failing reader is reported as a read error, not a corrupt image.
	boom := errors.New("connection reset")
	_, err := DecodeImage(io.MultiReader(bytes.NewReader(pngData[:100]), iotest.ErrReader(boom)), 0)
	var fe *FormatError
	if !errors.Is(err, boom) || errors.As(err, &fe) {
		t.Errorf("failing reader: %v", err)
	}
}

// endlessJPEG is a JPEG header followed by an unending run of APP1 segments,
// which the header decoder skips: only the byte cap stops it.
type endlessJPEG struct{ n int }

func (e *endlessJPEG) Read(p []byte) (int, error) {
	for i := range p {
		switch {
		case e.n < 2:
			p[i] = []byte{0xff, 0xd8}[e.n]
		default:
			k := (e.n - 2) % 65537 // segment: FF E1, length 0xFFFF, 65533 bytes
			switch k {
			case 0:
				p[i] = 0xff
			case 1:
				p[i] = 0xe1
			case 2, 3:
				p[i] = 0xff
			default:
				p[i] = 0
			}
		}
		e.n++
	}
	return len(p), nil
}

func TestDecodeImageByteCap(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 128 MiB")
	}
	src := &endlessJPEG{}
	_, err := DecodeImage(src, 0)
	var se *SizeError
	if !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless stream: %v, want a SizeError", err)
	}
	if src.n > MaxImageBytes+1<<20 {
		t.Errorf("read %d bytes, cap is %d", src.n, MaxImageBytes)
	}
}

func TestLoadImageFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "cat.jpg") // a PNG named .jpg: content decides
	if err := os.WriteFile(good, encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 3))), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := LoadImageFile(good, 0)
	if err != nil || img.Bounds().Dx() != 4 {
		t.Fatalf("LoadImageFile: %v", err)
	}
	for name, data := range map[string][]byte{"bad.png": []byte("nope"), "huge.png": hugePNG(100000, 100000)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := LoadImageFile(p, 0); err == nil || !strings.HasPrefix(err.Error(), p+": ") {
			t.Errorf("%s: error %v does not start with the path", name, err)
		}
	}
	if _, err := LoadImageFile(filepath.Join(dir, "missing.png"), 0); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzDecodeImage checks that no input panics the decoder or gets past the
// pixel budget, and that whatever decodes preprocesses to finite values.
func FuzzDecodeImage(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	rgba := randNRGBA(rng, 6, 5, false)
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.NRGBA{1, 2, 3, 4}})
	g16 := image.NewGray16(image.Rect(0, 0, 3, 7))
	f.Add(encodePNG(f, rgba))
	f.Add(encodePNG(f, randNRGBA(rng, 5, 4, true)))
	f.Add(encodePNG(f, pal))
	f.Add(encodePNG(f, g16))
	f.Add(encodePNG(f, image.NewGray(image.Rect(0, 0, 8, 2))))
	f.Add(encodeJPEG(f, rgba))
	f.Add(encodeJPEG(f, image.NewGray(image.Rect(0, 0, 9, 3))))
	f.Add(encodeJPEG(f, image.NewCMYK(image.Rect(0, 0, 4, 4))))
	f.Add(hugePNG(100000, 100000))
	f.Add(hugeJPEG(300, 300))
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	const budget = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(bytes.NewReader(data), budget)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) && !errors.Is(err, ErrPixelBudget) {
				t.Fatalf("error %T is neither a *FormatError nor ErrPixelBudget: %v", err, err)
			}
			return
		}
		b := img.Bounds()
		if int64(b.Dx())*int64(b.Dy()) > budget || b.Empty() {
			t.Fatalf("decoded %v past the %d-pixel budget", b, budget)
		}
		// The header alone says the same size.
		cfg, err := DecodeImageConfig(bytes.NewReader(data), budget)
		if err != nil || cfg.Width != b.Dx() || cfg.Height != b.Dy() {
			t.Fatalf("DecodeImageConfig: %+v, %v; DecodeImage gave %v", cfg, err, b)
		}
		for _, v := range toTensor(img, 8) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite value %v from %T %v", v, img, b)
			}
		}
	})
}
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// Resize then Normalize is ToTensor bit for bit, on every pixel type and
// geometry (down, up, identity, crop): what lets one peer resize and another
// normalise. Rounding the resized values to 8 bits would not be.
func TestResizeThenNormalizeIsToTensor(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	src := randNRGBA(rng, 47, 33, true)
	var ycc bytes.Buffer
	if err := jpeg.Encode(&ycc, src, nil); err != nil {
		t.Fatal(err)
	}
	jimg, err := jpeg.Decode(&ycc)
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]image.Image{"nrgba": src, "ycbcr": jimg, "gray": gradient(40, 20, func(x int) uint8 { return uint8(x * 6) }),
		"generic": genericImage{src}, "exact": randNRGBA(rng, 16, 16, true)}
	rounded := false
	for name, img := range imgs {
		for _, res := range []int{1, 7, 16, 32, 64} {
			want := toTensor(img, res)
			got := make([]float32, res*res*3)
			ResizeImage(img, res, got)
			eight := make([]float32, len(got))
			for i, v := range got {
				eight[i] = float32(math.Round(float64(v)))
			}
			Normalize(got, testMean, testStd)
			if !sameBits(got, want) {
				t.Errorf("%s at %d: Resize then Normalize differs from ToTensor", name, res)
			}
			Normalize(eight, testMean, testStd)
			if !sameBits(eight, want) {
				rounded = true
			}
		}
	}
	if !rounded {
		t.Errorf("rounding resized values to 8 bits never changed the input; the test images are too easy")
	}
}

func TestDecodeImageConfig(t *testing.T) {
	data := encodePNG(t, image.NewGray16(image.Rect(0, 0, 12, 5)))
	cfg, err := DecodeImageConfig(bytes.NewReader(data), 0)
	if err != nil || cfg.Width != 12 || cfg.Height != 5 || cfg.ColorModel != color.Gray16Model {
		t.Errorf("got %+v, %v; want 12x5 Gray16", cfg, err)
	}
	if _, err := DecodeImageConfig(bytes.NewReader(hugePNG(100000, 100000)), 0); !errors.Is(err, ErrPixelBudget) {
		t.Errorf("huge PNG: got %v, want ErrPixelBudget", err)
	}
	if _, err := DecodeImageConfig(strings.NewReader("garbage"), 0); err == nil {
		t.Errorf("garbage: no error")
	}
}
