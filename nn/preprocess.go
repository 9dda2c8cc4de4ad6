package nn

// Image decoding and preprocessing, shared by serving, evaluation and
// training so that all three feed the network identical tensors.
//
// DecodeImage is the only place untrusted image bytes are parsed. It reads
// the header first and refuses an image whose declared size is over a pixel
// budget before any pixel buffer is allocated: a 1 KB PNG can declare
// 100000×100000 pixels, and image/png would otherwise try to allocate 40 GB.
//
// Resizer turns a decoded image into the network's NHWC float32 input the
// way torchvision's eval transform does (Resize(res) on the shorter side
// with PIL's antialiased bilinear filter, CenterCrop(res), ToTensor,
// Normalize(mean, std)), computing only the output pixels inside the crop.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"sync"
)

// DefaultMaxPixels is the default pixel budget of DecodeImage: 40 megapixels,
// above any phone camera (a 12 MP photo is 4032×3024) yet small enough that
// the decoded image stays bounded (40 MP × 4 bytes = 160 MB for 8-bit RGBA,
// twice that for a 16-bit PNG).
const DefaultMaxPixels = 40_000_000

// MaxImageBytes caps how many bytes DecodeImage reads from its reader:
// 128 MiB, more than any sane JPEG or PNG within DefaultMaxPixels. It
// bounds memory and time for a stream that never ends.
const MaxImageBytes = 128 << 20

var (
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegMagic = []byte{0xff, 0xd8} // SOI marker, as image/jpeg registers it
)

// DecodeImage decodes a JPEG or PNG read from r. The format is sniffed from
// the content (the PNG signature or the JPEG SOI marker), never a file name.
//
// The header is decoded first (jpeg/png.DecodeConfig) and the image refused,
// before any pixel is decoded, if it declares zero or negative size (a
// *FormatError) or width×height > maxPixels (a *PixelBudgetError, which
// wraps ErrPixelBudget and states the size and the budget; for a PNG the
// size is read straight from the IHDR chunk so that the refusal is the same
// on 32-bit platforms, where image/png rejects big sizes itself). maxPixels
// <= 0 means DefaultMaxPixels. The bytes the header decoder consumed are kept and
// replayed to the pixel decoder, so r is read once, and never more than
// MaxImageBytes of it (a *SizeError, wrapping ErrTooLarge).
//
// Anything that is not a JPEG or PNG, or is truncated or corrupt, gives a
// *FormatError saying so; a read error from r is returned wrapped.
func DecodeImage(r io.Reader, maxPixels int64) (image.Image, error) {
	img, _, err := decodeImage("", r, maxPixels, false)
	return img, err
}

// DecodeImageConfig reads only the header of a JPEG or PNG, with the checks
// and errors of DecodeImage, and returns the declared size and colour model,
// so that a caller can budget the memory the pixels will take before it
// decodes them.
func DecodeImageConfig(r io.Reader, maxPixels int64) (image.Config, error) {
	_, cfg, err := decodeImage("", r, maxPixels, true)
	return cfg, err
}

// DecodeNamedImage is DecodeImage for an image that has a name (an archive
// member, say): every error names it.
func DecodeNamedImage(name string, r io.Reader, maxPixels int64) (image.Image, error) {
	img, _, err := decodeImage(name, r, maxPixels, false)
	return img, err
}

// LoadImageFile opens and decodes the JPEG or PNG at path, as DecodeImage;
// every error names the path.
func LoadImageFile(path string, maxPixels int64) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the path
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxImageBytes {
		return nil, &SizeError{File: path, What: "image file", Size: fi.Size(), Limit: MaxImageBytes}
	}
	img, _, err := decodeImage(path, f, maxPixels, false)
	return img, err
}

// recordingReader remembers the first read error other than io.EOF, so that
// a failing disk or network read is reported as such and not as a corrupt
// image (the decoders do not always pass the original error through).
type recordingReader struct {
	r   io.Reader
	err error
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

func decodeImage(name string, r io.Reader, maxPixels int64, headerOnly bool) (img image.Image, cfg image.Config, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	formatErr := func(format string, args ...any) error {
		return &FormatError{File: name, Msg: fmt.Sprintf(format, args...)}
	}
	lr := &io.LimitedReader{R: r, N: MaxImageBytes + 1}
	rr := &recordingReader{r: lr}
	br := bufio.NewReaderSize(rr, 4096)
	// readFailed turns a decoder error into the right kind: an I/O error,
	// the byte cap, or a corrupt image.
	readFailed := func(kind string, derr error) error {
		switch {
		case rr.err != nil:
			if name != "" {
				return fmt.Errorf("%s: reading image: %w", name, rr.err)
			}
			return fmt.Errorf("nn: reading image: %w", rr.err)
		case lr.N <= 0:
			return &SizeError{File: name, What: "image data", Size: MaxImageBytes + 1, Limit: MaxImageBytes}
		case errors.Is(derr, io.ErrUnexpectedEOF) || errors.Is(derr, io.EOF):
			return formatErr("truncated %s image: %v", kind, derr)
		}
		return formatErr("corrupt or unsupported %s image: %v", kind, derr)
	}

	magic, _ := br.Peek(len(pngMagic))
	var (
		kind         string
		decodeConfig func(io.Reader) (image.Config, error)
		decode       func(io.Reader) (image.Image, error)
	)
	switch {
	case bytes.HasPrefix(magic, pngMagic):
		kind, decodeConfig, decode = "png", png.DecodeConfig, png.Decode
	case bytes.HasPrefix(magic, jpegMagic):
		kind, decodeConfig, decode = "jpeg", jpeg.DecodeConfig, jpeg.Decode
	case rr.err != nil:
		return nil, image.Config{}, readFailed("", rr.err)
	case len(magic) == 0:
		return nil, image.Config{}, formatErr("not a JPEG or PNG image: no data")
	default:
		return nil, image.Config{}, formatErr("not a JPEG or PNG image (starts with % x)", magic)
	}

	// The stdlib decoders are fuzzed and should never panic; if one does on
	// some input, a server must answer with an error, not crash.
	defer func() {
		if p := recover(); p != nil {
			img, cfg, err = nil, image.Config{}, formatErr("corrupt %s image: decoder panicked: %v", kind, p)
		}
	}()

	// A PNG's size sits at a fixed place in its first chunk, IHDR. Check it
	// before image/png sees it: on 32-bit platforms png.DecodeConfig itself
	// refuses large sizes as "dimension overflow", and the budget error
	// should not depend on the platform.
	if kind == "png" {
		if ihdr, _ := br.Peek(24); len(ihdr) == 24 && string(ihdr[12:16]) == "IHDR" {
			w, h := binary.BigEndian.Uint32(ihdr[16:]), binary.BigEndian.Uint32(ihdr[20:])
			if w > 0 && h > 0 && w <= math.MaxInt32 && h <= math.MaxInt32 && uint64(w)*uint64(h) > uint64(maxPixels) {
				return nil, image.Config{}, &PixelBudgetError{File: name, Format: kind, Width: int(w), Height: int(h), Budget: maxPixels}
			}
		}
	}

	var (
		hdr  bytes.Buffer
		cerr error
	)
	cfg, cerr = decodeConfig(io.TeeReader(br, &hdr))
	if cerr != nil {
		return nil, image.Config{}, readFailed(kind, cerr)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, image.Config{}, formatErr("%s image declares %dx%d pixels", kind, cfg.Width, cfg.Height)
	}
	// Both are at most 2^31-1, so the product fits in int64.
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return nil, image.Config{}, &PixelBudgetError{File: name, Format: kind, Width: cfg.Width, Height: cfg.Height, Budget: maxPixels}
	}
	if headerOnly {
		return nil, cfg, nil
	}

	img, derr := decode(io.MultiReader(&hdr, br))
	if derr != nil {
		return nil, image.Config{}, readFailed(kind, derr)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, image.Config{}, formatErr("%s image header says %dx%d but decoded %dx%d", kind, cfg.Width, cfg.Height, b.Dx(), b.Dy())
	}
	return img, cfg, nil
}

// Resizer converts images to normalised network input, keeping its scratch
// buffers (filter coefficients, one source row, the horizontally resized
// rows) between calls so that a serving or training loop does not allocate
// per image once the buffers have grown to the largest image seen. The zero
// value is ready to use. A Resizer is not safe for concurrent use; give each
// goroutine its own.
type Resizer struct {
	cx, cy resampleAxis
	row    []float32 // one source row span, RGB in [0, 255]
	tmp    []float32 // horizontally resized rows, rows × res × 3
	pal    []float32 // palette of an *image.Paletted as RGB floats
}

// resampleAxis holds the filter taps of one axis: output i reads source
// pixels start[i] .. start[i]+n[i]-1 with weights w[i*ksize:][:n[i]].
type resampleAxis struct {
	start, n []int
	w        []float32
	ksize    int
	identity bool // every output is exactly one source pixel with weight 1
}

// ImageToTensor resizes img to res×res and writes normalised NHWC float32
// values into dst[:res*res*3]; see (*Resizer).ToTensor. It borrows a Resizer
// from a pool, so repeated calls do not allocate scratch buffers each time.
func ImageToTensor(img image.Image, res int, mean, std [3]float32, dst []float32) {
	r := resizerPool.Get().(*Resizer)
	r.ToTensor(img, res, mean, std, dst)
	resizerPool.Put(r)
}

// ResizeImage is (*Resizer).Resize with a Resizer borrowed from a pool.
func ResizeImage(img image.Image, res int, dst []float32) {
	r := resizerPool.Get().(*Resizer)
	r.Resize(img, res, dst)
	resizerPool.Put(r)
}

var resizerPool = sync.Pool{New: func() any { return new(Resizer) }}

// ToTensor resizes img to res×res and writes normalised NHWC float32 values
// into dst[:res*res*3]: dst[(y*res+x)*3+c] = (pixel_c/255 - mean[c]) / std[c],
// channels R, G, B.
//
// Geometry, as torchvision's Resize(res) then CenterCrop(res): the shorter
// side is scaled to res and the longer to floor(res*long/short); the res×res
// window is then cut from the centre, its offset (resized-res)/2 rounded half
// to even like torchvision's round(). Only the pixels inside the window are
// computed.
//
// Filter, as PIL's BILINEAR: a triangle filter, support 1 source pixel when
// upscaling and scaled by the factor when downscaling (so downscaling
// averages every source pixel, without aliasing), pixel centres at +0.5,
// taps clipped at the image border and renormalised. It is separable and
// runs in two passes, horizontal then vertical, in float32 (PIL rounds to
// 8 bits between passes; this does not, a difference under 1/255). An axis
// whose scale is 1 is copied, not filtered, so an image already res×res, or
// res on its shorter side, yields its exact pixels.
//
// Colour: grayscale is replicated to R, G and B; paletted images are looked
// up; JPEG YCbCr and CMYK are converted to 8-bit RGB by image/color's
// YCbCrToRGB and CMYKToRGB, as a JPEG library outputs them. Alpha is
// ignored: each pixel's straight (un-premultiplied) colour is used, as PIL's
// convert("RGB") does, so a transparent PNG pixel keeps the colour stored
// under it. 16-bit samples keep their precision (scaled to [0, 255]).
//
// An empty image gives the normalised value of black everywhere. res < 1 or
// len(dst) < res*res*3 is a caller bug and panics, like an index out of
// range. std must be non-zero (Spec.Validate ensures it).
func (r *Resizer) ToTensor(img image.Image, res int, mean, std [3]float32, dst []float32) {
	r.Resize(img, res, dst)
	Normalize(dst[:res*res*3], mean, std)
}

// Resize is ToTensor without the normalisation: it writes the res×res crop
// of the resized image into dst[:res*res*3] as RGB on a [0, 255] scale, in
// float32 (not rounded to 8 bits). Normalize of its output is exactly
// ToTensor's output, bit for bit, so one peer can resize an image and
// another finish the preprocessing with the same result. (Rounding the
// output to 8-bit pixels would not do: resized values have fractions.)
func (r *Resizer) Resize(img image.Image, res int, dst []float32) {
	if res < 1 {
		panic(fmt.Sprintf("nn: Resizer.Resize: res %d < 1", res))
	}
	if len(dst) < res*res*3 {
		panic(fmt.Sprintf("nn: Resizer.Resize: dst has %d floats, res %d needs %d", len(dst), res, res*res*3))
	}
	dst = dst[:res*res*3]
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		clear(dst) // black
		return
	}

	// Resized size: shorter side res, longer floor(res*long/short), in
	// int64 since a 1×40M image resizes to 224×8.96e9.
	outW, outH := int64(res), int64(res)
	if w < h {
		outH = int64(res) * int64(h) / int64(w)
	} else if h < w {
		outW = int64(res) * int64(w) / int64(h)
	}
	r.cx.compute(w, outW, centreOffset(outW-int64(res)), res)
	r.cy.compute(h, outH, centreOffset(outH-int64(res)), res)

	x0, x1 := r.cx.span()
	y0, y1 := r.cy.span()
	rows := y1 - y0
	r.row = growFloats(r.row, (x1-x0)*3)
	r.tmp = growFloats(r.tmp, rows*res*3)
	if p, ok := img.(*image.Paletted); ok {
		r.loadPalette(p.Palette)
	}

	// Horizontal pass: each needed source row → res RGB values in tmp.
	rowLen := res * 3
	for y := y0; y < y1; y++ {
		r.loadRow(img, b.Min.X+x0, b.Min.X+x1, b.Min.Y+y)
		out := r.tmp[(y-y0)*rowLen : (y-y0+1)*rowLen]
		if r.cx.identity {
			for i := 0; i < res; i++ {
				s := (r.cx.start[i] - x0) * 3
				out[i*3], out[i*3+1], out[i*3+2] = r.row[s], r.row[s+1], r.row[s+2]
			}
			continue
		}
		for i := 0; i < res; i++ {
			s := (r.cx.start[i] - x0) * 3
			ws := r.cx.w[i*r.cx.ksize : i*r.cx.ksize+r.cx.n[i]]
			src := r.row[s : s+3*len(ws)]
			var cr, cg, cb float32
			for _, wt := range ws {
				p := src[:3:3] // one bounds check per tap
				cr += wt * p[0]
				cg += wt * p[1]
				cb += wt * p[2]
				src = src[3:]
			}
			out[i*3], out[i*3+1], out[i*3+2] = cr, cg, cb
		}
	}

	// Vertical pass straight into dst.
	for oy := 0; oy < res; oy++ {
		o := dst[oy*rowLen : (oy+1)*rowLen]
		s := r.cy.start[oy] - y0
		if r.cy.identity {
			copy(o, r.tmp[s*rowLen:(s+1)*rowLen])
		} else {
			ws := r.cy.w[oy*r.cy.ksize : oy*r.cy.ksize+r.cy.n[oy]]
			first := r.tmp[s*rowLen : (s+1)*rowLen]
			w0 := ws[0]
			for j, v := range first {
				o[j] = w0 * v
			}
			for k := 1; k < len(ws); k++ {
				src := r.tmp[(s+k)*rowLen : (s+k+1)*rowLen]
				wk := ws[k]
				for j, v := range src {
					o[j] += wk * v
				}
			}
		}
	}
}

// Normalize maps RGB values on a [0, 255] scale (Resize's output) to the
// network's input in place: v = (v/255 - mean[c]) / std[c], channel c = i%3.
func Normalize(rgb []float32, mean, std [3]float32) {
	for j := 0; j+2 < len(rgb); j += 3 {
		rgb[j] = (rgb[j]/255 - mean[0]) / std[0]
		rgb[j+1] = (rgb[j+1]/255 - mean[1]) / std[1]
		rgb[j+2] = (rgb[j+2]/255 - mean[2]) / std[2]
	}
}

// centreOffset is torchvision's CenterCrop offset int(round(d/2)), Python's
// round being half to even.
func centreOffset(d int64) int64 {
	k := d / 2
	if d%2 == 1 && k%2 == 1 {
		k++
	}
	return k
}

func growFloats(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func growInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// compute fills the taps for outputs off .. off+count-1 of a resize of an
// axis from in to out pixels, as PIL's precompute_coeffs with the bilinear
// (triangle) filter.
func (a *resampleAxis) compute(in int, out, off int64, count int) {
	a.start = growInts(a.start, count)
	a.n = growInts(a.n, count)
	if int64(in) == out {
		// Scale 1: each output is its source pixel; no arithmetic at all.
		a.identity, a.ksize = true, 1
		a.w = growFloats(a.w, count)
		for i := 0; i < count; i++ {
			a.start[i], a.n[i], a.w[i] = int(off)+i, 1, 1
		}
		return
	}
	a.identity = false
	scale := float64(in) / float64(out)
	fscale := math.Max(scale, 1)
	support := 1.0 * fscale // the triangle filter's support is 1
	a.ksize = int(math.Ceil(support))*2 + 1
	a.w = growFloats(a.w, count*a.ksize)
	var ws [64]float64
	wbuf := ws[:0]
	if a.ksize > len(ws) {
		wbuf = make([]float64, 0, a.ksize)
	}
	for i := 0; i < count; i++ {
		center := (float64(off) + float64(i) + 0.5) * scale
		lo := int(math.Max(center-support+0.5, 0)) // PIL truncates, then clamps at 0
		hi := int(math.Min(center+support+0.5, float64(in)))
		wbuf = wbuf[:0]
		sum := 0.0
		for j := lo; j < hi; j++ {
			x := (float64(j) - center + 0.5) / fscale
			wt := 1 - math.Abs(x)
			if wt < 0 {
				wt = 0
			}
			wbuf = append(wbuf, wt)
			sum += wt
		}
		// Drop zero taps at both ends: they cost time and would widen the
		// span of source pixels read.
		for len(wbuf) > 0 && wbuf[len(wbuf)-1] == 0 {
			wbuf = wbuf[:len(wbuf)-1]
		}
		for len(wbuf) > 0 && wbuf[0] == 0 {
			wbuf = wbuf[1:]
			lo++
		}
		if len(wbuf) == 0 || sum == 0 {
			// Cannot happen for in >= 1 (the centre is inside the image),
			// but never divide by zero: take the nearest pixel.
			lo = min(max(int(center), 0), in-1)
			wbuf = append(wbuf[:0], 1)
			sum = 1
		}
		a.start[i], a.n[i] = lo, len(wbuf)
		w := a.w[i*a.ksize : i*a.ksize+len(wbuf)]
		for k, v := range wbuf {
			w[k] = float32(v / sum)
		}
	}
}

// span is the range of source pixels the taps read.
func (a *resampleAxis) span() (lo, hi int) {
	lo, hi = a.start[0], a.start[0]+a.n[0]
	for i := range a.start {
		lo = min(lo, a.start[i])
		hi = max(hi, a.start[i]+a.n[i])
	}
	return lo, hi
}

// loadPalette converts a palette to RGB floats once per image.
func (r *Resizer) loadPalette(p color.Palette) {
	r.pal = growFloats(r.pal, 256*3)
	clear(r.pal) // indices past the palette (or nil entries) read as black
	for i, c := range p {
		if i >= 256 {
			break
		}
		if c != nil {
			r.pal[3*i], r.pal[3*i+1], r.pal[3*i+2] = straightRGB(c)
		}
	}
}

// straightRGB returns c's un-premultiplied colour on a [0, 255] scale.
// Straight-alpha colours are read directly: going through RGBA() would
// premultiply them and lose their colour at low alpha.
func straightRGB(c color.Color) (float32, float32, float32) {
	switch c := c.(type) {
	case color.NRGBA:
		return float32(c.R), float32(c.G), float32(c.B)
	case color.NRGBA64:
		return float32(c.R) / 257, float32(c.G) / 257, float32(c.B) / 257
	}
	cr, cg, cb, ca := c.RGBA()
	return unpremul16(cr, cg, cb, ca)
}

// unpremul16 takes 16-bit premultiplied components to straight colour on a
// [0, 255] scale: v*255/a, exactly v/257 when opaque. A fully transparent
// premultiplied pixel has lost its colour; it reads as black.
func unpremul16(cr, cg, cb, ca uint32) (float32, float32, float32) {
	if ca == 0 {
		return 0, 0, 0
	}
	s := 255 / float32(ca)
	if ca == 0xffff {
		s = 1.0 / 257
	}
	return float32(cr) * s, float32(cg) * s, float32(cb) * s
}

// loadRow fills r.row with pixels x0 .. x1-1 of row y (absolute
// coordinates) as RGB floats in [0, 255], with fast paths for the types
// image/jpeg and image/png return; anything else goes through At.
func (r *Resizer) loadRow(img image.Image, x0, x1, y int) {
	row := r.row[:(x1-x0)*3]
	switch m := img.(type) {
	case *image.YCbCr:
		yi := m.YOffset(x0, y)
		hs, vs := 1, 1
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422:
			hs = 2
		case image.YCbCrSubsampleRatio420:
			hs, vs = 2, 2
		case image.YCbCrSubsampleRatio440:
			vs = 2
		case image.YCbCrSubsampleRatio411:
			hs = 4
		case image.YCbCrSubsampleRatio410:
			hs, vs = 4, 2
		}
		// Same arithmetic as (*YCbCr).COffset, hoisted out of the loop.
		cRow := (y/vs-m.Rect.Min.Y/vs)*m.CStride - m.Rect.Min.X/hs
		for x := x0; x < x1; x++ {
			ci := cRow + x/hs
			cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			yi++
			o := row[(x-x0)*3 : (x-x0)*3+3]
			o[0], o[1], o[2] = float32(cr), float32(cg), float32(cb)
		}
	case *image.Gray:
		p := m.Pix[m.PixOffset(x0, y):][:x1-x0]
		for i, v := range p {
			f := float32(v)
			row[3*i], row[3*i+1], row[3*i+2] = f, f, f
		}
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(x0, y):][:(x1-x0)*4]
		for i := 0; i < x1-x0; i++ {
			row[3*i], row[3*i+1], row[3*i+2] = float32(p[4*i]), float32(p[4*i+1]), float32(p[4*i+2])
		}
	case *image.RGBA:
		p := m.Pix[m.PixOffset(x0, y):][:(x1-x0)*4]
		for i := 0; i < x1-x0; i++ {
			cr, cg, cb, ca := p[4*i], p[4*i+1], p[4*i+2], p[4*i+3]
			switch ca {
			case 0xff:
				row[3*i], row[3*i+1], row[3*i+2] = float32(cr), float32(cg), float32(cb)
			case 0:
				row[3*i], row[3*i+1], row[3*i+2] = 0, 0, 0
			default:
				s := 255 / float32(ca)
				row[3*i], row[3*i+1], row[3*i+2] = float32(cr)*s, float32(cg)*s, float32(cb)*s
			}
		}
	case *image.Paletted:
		p := m.Pix[m.PixOffset(x0, y):][:x1-x0]
		for i, v := range p {
			c := r.pal[3*int(v) : 3*int(v)+3]
			row[3*i], row[3*i+1], row[3*i+2] = c[0], c[1], c[2]
		}
	case *image.Gray16:
		p := m.Pix[m.PixOffset(x0, y):][:(x1-x0)*2]
		for i := 0; i < x1-x0; i++ {
			f := float32(uint32(p[2*i])<<8|uint32(p[2*i+1])) / 257
			row[3*i], row[3*i+1], row[3*i+2] = f, f, f
		}
	case *image.NRGBA64:
		p := m.Pix[m.PixOffset(x0, y):][:(x1-x0)*8]
		for i := 0; i < x1-x0; i++ {
			q := p[8*i : 8*i+6]
			row[3*i] = float32(uint32(q[0])<<8|uint32(q[1])) / 257
			row[3*i+1] = float32(uint32(q[2])<<8|uint32(q[3])) / 257
			row[3*i+2] = float32(uint32(q[4])<<8|uint32(q[5])) / 257
		}
	case *image.RGBA64:
		p := m.Pix[m.PixOffset(x0, y):][:(x1-x0)*8]
		for i := 0; i < x1-x0; i++ {
			q := p[8*i : 8*i+8]
			row[3*i], row[3*i+1], row[3*i+2] = unpremul16(
				uint32(q[0])<<8|uint32(q[1]), uint32(q[2])<<8|uint32(q[3]),
				uint32(q[4])<<8|uint32(q[5]), uint32(q[6])<<8|uint32(q[7]))
		}
	case *image.CMYK:
		p := m.Pix[m.PixOffset(x0, y):][:(x1-x0)*4]
		for i := 0; i < x1-x0; i++ {
			cr, cg, cb := color.CMYKToRGB(p[4*i], p[4*i+1], p[4*i+2], p[4*i+3])
			row[3*i], row[3*i+1], row[3*i+2] = float32(cr), float32(cg), float32(cb)
		}
	default:
		for x := x0; x < x1; x++ {
			c := img.At(x, y)
			i := (x - x0) * 3
			if c == nil {
				row[i], row[i+1], row[i+2] = 0, 0, 0
				continue
			}
			row[i], row[i+1], row[i+2] = straightRGB(c)
		}
	}
}

// RGB converts img to 8-bit RGB (w*h*3 bytes, rows top to bottom) with the
// colour conversion ToTensor applies at serving time (YCbCr and CMYK as image/color
// converts them, gray replicated, palette looked up, alpha ignored in
// favour of the straight colour), rounding to the nearest 8-bit value.
func (rz *Resizer) RGB(img image.Image) (w, h int, pix []uint8) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	pix = make([]uint8, w*h*3)
	if w <= 0 || h <= 0 {
		return w, h, pix
	}
	// Fast paths for what JPEGs decode to, computing exactly what the
	// general path below gives, without the round trip through float32.
	switch m := img.(type) {
	case *image.YCbCr:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				ci := m.COffset(x, y)
				pix[i], pix[i+1], pix[i+2] = color.YCbCrToRGB(m.Y[m.YOffset(x, y)], m.Cb[ci], m.Cr[ci])
				i += 3
			}
		}
		return w, h, pix
	case *image.Gray:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):][:w] {
				pix[i], pix[i+1], pix[i+2] = v, v, v
				i += 3
			}
		}
		return w, h, pix
	}
	rz.row = growFloats(rz.row, w*3)
	if p, ok := img.(*image.Paletted); ok {
		rz.loadPalette(p.Palette)
	}
	for y := 0; y < h; y++ {
		rz.loadRow(img, b.Min.X, b.Max.X, b.Min.Y+y)
		out := pix[y*w*3 : (y+1)*w*3]
		for i, v := range rz.row[:w*3] {
			out[i] = uint8(min(max(v+0.5, 0), 255))
		}
	}
	return w, h, pix
}
