package data

// MNIST in its original IDX form (Yann LeCun's train-images-idx3-ubyte and
// friends, gzip-compressed or not). An IDX file is a 4-byte magic (two zero
// bytes, a type code, 0x08 for unsigned bytes, and the number of
// dimensions), one big-endian uint32 per dimension, then the values in
// row-major order. Images are 3-dimensional (count, rows, columns), labels
// 1-dimensional (count).
//
// The header comes from the file and is not trusted: nothing is allocated
// in proportion to the counts it declares until the bytes are actually
// there, so a 16-byte file claiming ten million 4096×4096 images costs a
// few kilobytes and a "truncated" error, not 160 TB.

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/varpar/varpar/nn"
)

// Limits on what an IDX header may declare. MNIST has 60,000 28×28 images;
// the limits leave room for larger sets in the same format (EMNIST has
// 814,255) while keeping a hostile header's arithmetic far from overflow.
const (
	maxIDXImages = 10_000_000
	maxIDXSide   = 4096
)

// IDX type and dimension bytes (the last two bytes of the magic).
const (
	idxUbyte     = 0x08
	idxImageDims = 3
	idxLabelDims = 1
)

var gzipMagic = []byte{0x1f, 0x8b}

// mnistClasses are the class names of an IDX data set: MNIST's digits.
var mnistClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// idxImages is an IDX images stream whose header has been read and
// checked; readAll reads the pixels.
type idxImages struct {
	name       string // for messages
	r          *bufio.Reader
	n          int // images declared
	rows, cols int
}

// idxFormatErr makes the *FormatError for a bad IDX file.
func idxFormatErr(name, format string, args ...any) error {
	return &nn.FormatError{File: name, Msg: fmt.Sprintf(format, args...)}
}

// streamReadErr turns an error from reading a data-set stream (IDX or tar,
// maybe gzip-compressed) into one naming the file and telling truncation,
// corrupt compression and I/O failure apart, so that a user knows whether
// to download again or to check the disk.
func streamReadErr(name, what string, err error) error {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return idxFormatErr(name, "truncated: the data ends inside %s", what)
	case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &ce):
		return idxFormatErr(name, "corrupt gzip data in %s: %v", what, err)
	}
	return fmt.Errorf("%s: reading %s: %w", name, what, err)
}

// readIDXHeader reads and checks the magic and the dimensions of an IDX
// stream holding unsigned bytes in dims dimensions.
func readIDXHeader(name string, r io.Reader, dims int, what string) ([]int, error) {
	var magic [4]byte
	if k, err := io.ReadFull(r, magic[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, idxFormatErr(name, "not an IDX %s file: %d bytes, shorter than the 4-byte magic", what, k)
		}
		return nil, streamReadErr(name, "the IDX magic", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, idxFormatErr(name, "not an IDX file: magic % x does not start with two zero bytes", magic)
	}
	if magic[2] != idxUbyte {
		return nil, idxFormatErr(name, "IDX type code 0x%02x, want 0x08 (unsigned bytes)", magic[2])
	}
	if int(magic[3]) != dims {
		kind := "an IDX file"
		switch magic[3] {
		case idxImageDims:
			kind = "an IDX images file"
		case idxLabelDims:
			kind = "an IDX labels file"
		}
		return nil, idxFormatErr(name, "%s with %d dimensions, want the %d of %s", kind, magic[3], dims, what)
	}
	var buf [4 * idxImageDims]byte
	if _, err := io.ReadFull(r, buf[:4*dims]); err != nil {
		return nil, streamReadErr(name, "the IDX header", err)
	}
	out := make([]int, dims)
	for i := range out {
		v := binary.BigEndian.Uint32(buf[4*i:])
		if v > maxIDXImages { // the largest any dimension may be
			return nil, idxFormatErr(name, "IDX dimension %d is %d, more than %d", i, v, maxIDXImages)
		}
		out[i] = int(v)
	}
	return out, nil
}

// openIDXImages reads and checks the header of an IDX images stream.
// Images of more than maxPixels pixels (<= 0: DefaultMaxPixels) are refused.
func openIDXImages(name string, r io.Reader, maxPixels int64) (*idxImages, error) {
	if maxPixels <= 0 {
		maxPixels = nn.DefaultMaxPixels
	}
	dims, err := readIDXHeader(name, r, idxImageDims, "images")
	if err != nil {
		return nil, err
	}
	n, rows, cols := dims[0], dims[1], dims[2]
	switch {
	case n == 0:
		return nil, idxFormatErr(name, "the IDX header declares no images")
	case rows == 0 || cols == 0:
		return nil, idxFormatErr(name, "the IDX header declares %dx%d images", rows, cols)
	case rows > maxIDXSide || cols > maxIDXSide:
		return nil, idxFormatErr(name, "the IDX header declares %dx%d images, more than %d on a side", rows, cols, maxIDXSide)
	case int64(rows)*int64(cols) > maxPixels:
		return nil, &nn.PixelBudgetError{File: name, Format: "idx", Width: cols, Height: rows, Budget: maxPixels}
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &idxImages{name: name, r: br, n: n, rows: rows, cols: cols}, nil
}

// readAll reads every image, gray values replicated to RGB, and checks that
// the stream ends right after the last one (which, for gzip, also verifies
// the CRC). Memory grows with the bytes actually read, a chunk of images at
// a time, never with what the header merely declares. progress, if not nil,
// is told every few thousand images.
func (m *idxImages) readAll(progress func(int)) ([]Sample, error) {
	px := m.rows * m.cols
	// Samples share backing arrays of about 1 MB each: MNIST in 60,000
	// separate allocations would cost the garbage collector for nothing.
	perChunk := max(1, (1<<20)/(3*px))
	var (
		samples []Sample
		backing []uint8
		gray    []uint8
	)
	for i := 0; i < m.n; i++ {
		var err error
		gray, err = readUpTo(m.r, gray[:0], px)
		if err != nil {
			return nil, streamReadErr(m.name, fmt.Sprintf("image %d of %d (%dx%d)", i, m.n, m.cols, m.rows), err)
		}
		if len(backing) < 3*px {
			backing = make([]uint8, 3*px*min(perChunk, m.n-i))
		}
		rgb := backing[: 3*px : 3*px]
		backing = backing[3*px:]
		for j, v := range gray {
			rgb[3*j], rgb[3*j+1], rgb[3*j+2] = v, v, v
		}
		if samples == nil {
			// Only now that one image was really there: room for all of
			// them costs 64 bytes per declared image at most.
			samples = make([]Sample, 0, min(m.n, 1<<16))
		}
		samples = append(samples, Sample{W: m.cols, H: m.rows, Pix: rgb, Path: "idx:" + strconv.Itoa(i)})
		if progress != nil && (i+1)%4096 == 0 {
			progress(i + 1)
		}
	}
	if err := expectEOF(m.r); err != nil {
		return nil, idxTrailingErr(m.name, fmt.Sprintf("%d images", m.n), err)
	}
	return samples, nil
}

// readUpTo appends exactly n bytes from r to buf, growing buf at most 64 KB
// ahead of the bytes read so that a short stream cannot make it allocate n.
func readUpTo(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		want := min(n, len(buf)+64<<10)
		if cap(buf) < want {
			nb := make([]byte, len(buf), want)
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):want])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// expectEOF checks that r has nothing left. It returns errTrailing if it
// has, or the read error if reading fails (a gzip checksum mismatch shows
// up only here, at the end of the stream).
func expectEOF(r io.Reader) error {
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n > 0 {
			return errTrailing
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var errTrailing = errors.New("trailing data")

func idxTrailingErr(name, after string, err error) error {
	if err == errTrailing {
		return idxFormatErr(name, "trailing data after the %s the header declares", after)
	}
	return streamReadErr(name, "the end of the file", err)
}

// decodeIDXLabels reads a whole IDX labels stream. Labels must be MNIST
// digits, 0 to 9.
func decodeIDXLabels(name string, r io.Reader) ([]uint8, error) {
	dims, err := readIDXHeader(name, r, idxLabelDims, "labels")
	if err != nil {
		return nil, err
	}
	n := dims[0]
	labels, err := readUpTo(r, nil, n)
	if err != nil {
		return nil, streamReadErr(name, fmt.Sprintf("the %d labels the header declares (got %d)", n, len(labels)), err)
	}
	if err := expectEOF(r); err != nil {
		return nil, idxTrailingErr(name, fmt.Sprintf("%d labels", n), err)
	}
	for i, l := range labels {
		if int(l) >= len(mnistClasses) {
			return nil, idxFormatErr(name, "label %d of item %d is not a digit 0-9", l, i)
		}
	}
	return labels, nil
}

// maybeGunzip returns a reader of r's content, decompressed if it starts
// with the gzip magic, whatever the file is called.
func maybeGunzip(name string, r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == gzipMagic[0] && magic[1] == gzipMagic[1] {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, streamReadErr(name, "the gzip header", err)
		}
		return bufio.NewReaderSize(zr, 64<<10), nil
	}
	return br, nil
}

// idxLabelsPath finds the labels file paired with an IDX images file: the
// same name with "images-idx3" replaced by "labels-idx1" (or the dotted
// "images.idx3" some mirrors use), with or without a ".gz" suffix, the
// images file's own compression tried first.
func idxLabelsPath(images string) (string, error) {
	dir, base := filepath.Split(images)
	var lbase string
	for _, p := range [][2]string{{"images-idx3", "labels-idx1"}, {"images.idx3", "labels.idx1"}} {
		if strings.Contains(base, p[0]) {
			lbase = strings.Replace(base, p[0], p[1], 1)
			break
		}
	}
	if lbase == "" {
		return "", &DatasetError{Path: images, Msg: `cannot find the labels file: the name does not contain "images-idx3"`}
	}
	cands := []string{lbase}
	if trimmed, ok := strings.CutSuffix(lbase, ".gz"); ok {
		cands = append(cands, trimmed)
	} else {
		cands = append(cands, lbase+".gz")
	}
	for _, c := range cands {
		p := filepath.Join(dir, c)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", &DatasetError{Path: images, Msg: fmt.Sprintf("no labels file beside it (looked for %s and %s)", cands[0], cands[1])}
}

// loadIDX loads an MNIST-style IDX data set; r is the images file's
// (already decompressed) content, positioned at its start.
func loadIDX(path string, r io.Reader, opts LoadOptions) (*Dataset, error) {
	imgs, err := openIDXImages(path, r, opts.MaxPixels)
	if err != nil {
		return nil, err
	}
	lpath, err := idxLabelsPath(path)
	if err != nil {
		return nil, err
	}
	labels, err := loadIDXLabelsFile(lpath)
	if err != nil {
		return nil, err
	}
	// Compare the counts before reading 47 MB of pixels for nothing.
	if len(labels) != imgs.n {
		return nil, &DatasetError{Path: path, Msg: fmt.Sprintf("%d images but %s has %d labels", imgs.n, lpath, len(labels))}
	}
	samples, err := imgs.readAll(opts.Progress)
	if err != nil {
		return nil, err
	}
	for i := range samples {
		samples[i].Label = int(labels[i])
	}
	if opts.Progress != nil {
		opts.Progress(len(samples))
	}
	return &Dataset{Name: datasetName(path), Classes: append([]string(nil), mnistClasses...), Samples: samples}, nil
}

func loadIDXLabelsFile(path string) ([]uint8, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := maybeGunzip(path, f)
	if err != nil {
		return nil, err
	}
	return decodeIDXLabels(path, r)
}
