package data

// Loading labelled image sets into memory, and splitting them.
//
// Everything is decoded up front into 8-bit RGB: the data sets this project
// trains on (MNIST, CIFAR-10) are a few hundred MB decoded, and an epoch
// that re-decodes 50,000 JPEGs would cost more CPU than the batches it
// feeds. Images go through the same DecodeImage (pixel budget, format
// sniffing) and the same colour conversion as serving, so that a JPEG seen
// in training and at serving time becomes the same pixels.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varpar/varpar/nn"
)

// DatasetError reports a data set whose layout is wrong as a whole (no
// class folders, an empty class, an images file without its labels file or
// with a different count), as opposed to one bad file, which gets an error
// naming that file (*FormatError, *PixelBudgetError, *SizeError, or an I/O
// error).
type DatasetError struct {
	Path string // the data set (directory, archive, IDX file) or the folder at fault
	Msg  string
}

func (e *DatasetError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Msg) }

// LoadDataset loads a labelled image set from path, which is one of:
//
//   - an IDX images file such as MNIST's train-images-idx3-ubyte or
//     t10k-images-idx3-ubyte.gz (gzip is detected from the content, not
//     the name), paired with the labels file beside it, named the same
//     with "images-idx3" replaced by "labels-idx1", compressed or not.
//     Classes are "0" to "9"; the gray pixels are replicated to RGB;
//     Sample.Path is "idx:N".
//   - a directory in image-folder layout: one sub-folder per class,
//     classes sorted by name (byte order, as Python's sorted), label i
//     being the i-th. A class folder's images are the files at any depth
//     inside it. A folder holding exactly one sub-folder and no images,
//     where that sub-folder itself holds folders, is a wrapper and is
//     looked through (train/airplane/0000.jpg: the classes are airplane,
//     ...); this repeats for nested wrappers.
//   - a tar archive of such a folder, optionally gzip-compressed (.tar,
//     .tar.gz, .tgz; recognised by content, or by those names for old
//     archives without the ustar magic). It is streamed, never unpacked
//     to disk; Sample.Path is "archive:member". Only regular files and
//     directories count; links and devices are ignored.
//
// In a folder or archive, only files named *.jpg, *.jpeg or *.png (any
// case) are images, decoded by content whatever the extension says; other
// files (README, labels.txt, Thumbs.db) are left out and counted in
// Dataset.Ignored (train and eval print a note); files and folders whose
// name starts with "." (.DS_Store, macOS "._x.jpg" resource forks, .git)
// are left out without a count. Images directly in the top folder, beside
// the class folders, are left out (and counted) too, as torchvision's
// ImageFolder does.
//
// Sample order is deterministic: by class, then by path inside the class
// folder (byte order). Images are decoded in parallel by GOMAXPROCS
// goroutines; opts.Progress and opts.Warn are only ever called from the
// goroutine that called LoadDataset, so they need no locking.
//
// An image that fails to decode (corrupt, truncated, over opts.MaxPixels,
// unreadable) is a bad image: with FailOnBadImage the load stops with its
// error, which names the file or "archive:member" (the first bad image in
// sample order, whatever the decoding order); with SkipBadImage,
// opts.Warn(path, err) is called for it, in sample order, and it is left
// out. A class left with no images, no class folders, a corrupt archive or
// a bad IDX file are errors under either policy.
func LoadDataset(path string, opts LoadOptions) (*Dataset, error) {
	switch opts.OnBadImage {
	case FailOnBadImage:
	case SkipBadImage:
		if opts.Warn == nil {
			// Skipping without telling anyone would drop data silently.
			return nil, &DatasetError{Path: path, Msg: "LoadOptions: SkipBadImage needs a Warn function"}
		}
	default:
		return nil, &DatasetError{Path: path, Msg: fmt.Sprintf("LoadOptions: unknown OnBadImage policy %d", opts.OnBadImage)}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err // *PathError names the path
	}
	if fi.IsDir() {
		return loadImageFolder(path, opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return loadDatasetStream(path, f, opts)
}

// loadDatasetStream sniffs a data-set file's content (after gunzipping it
// if it starts with the gzip magic) and loads it as IDX or tar.
func loadDatasetStream(path string, r io.Reader, opts LoadOptions) (*Dataset, error) {
	content := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := content.Peek(2); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(content)
		if err != nil {
			return nil, streamReadErr(path, "the gzip header", err)
		}
		content = bufio.NewReaderSize(zr, 64<<10)
	}
	head, err := content.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, streamReadErr(path, "the first block", err)
	}
	switch {
	case isIDXMagic(head) && head[3] == idxLabelDims:
		return nil, &DatasetError{Path: path, Msg: "this is an IDX labels file; give the images file (the labels file beside it is found by name)"}
	case isIDXMagic(head):
		// Any IDX file: openIDXImages says what is wrong if it does not
		// hold unsigned-byte images.
		return loadIDX(path, content, opts)
	case isTarHeader(head) || hasTarName(path):
		return loadTar(path, content, opts)
	}
	return nil, &nn.FormatError{File: path, Msg: "not a directory, an IDX images file or a tar archive"}
}

// isIDXMagic reports whether b starts like an IDX file: two zero bytes and
// one of the format's type codes (unsigned or signed bytes, 16- or 32-bit
// integers, floats, doubles).
func isIDXMagic(b []byte) bool {
	if len(b) < 4 || b[0] != 0 || b[1] != 0 {
		return false
	}
	switch b[2] {
	case 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e:
		return true
	}
	return false
}

// isTarHeader reports whether block looks like a POSIX (ustar, pax) or GNU
// tar header: "ustar" at offset 257.
func isTarHeader(block []byte) bool {
	return len(block) >= 263 && string(block[257:262]) == "ustar"
}

func hasTarName(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".tar") || strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz")
}

// datasetName is a data set's file or folder name without the archive
// extensions: "train" for .../train.tar.gz.
func datasetName(path string) string {
	base := filepath.Base(filepath.Clean(path))
	for _, ext := range []string{".gz", ".tgz", ".tar"} {
		if len(base) > len(ext) && strings.EqualFold(base[len(base)-len(ext):], ext) {
			base = base[:len(base)-len(ext)]
		}
	}
	return base
}

// imageEntry is one image of a folder or archive data set, waiting to be
// decoded.
type imageEntry struct {
	rel   string // slash-separated path from the data-set root, e.g. "train/cat/0001.jpg"
	path  string // what messages call it: a file path, or "archive:member"
	file  string // the file to read; "" for an archive member
	data  []byte // an archive member's bytes
	err   error  // set when the entry is already known to be bad (an oversized member)
	label int
}

// decoded is the outcome of decoding one imageEntry.
type decoded struct {
	w, h int
	pix  []uint8
	err  error
}

// decodeEntries decodes entries (already in sample order, labels set) on
// GOMAXPROCS goroutines and returns their samples in the same order,
// applying the bad-image policy in that order so that the error returned,
// or the sequence of warnings, does not depend on scheduling.
func decodeEntries(entries []imageEntry, opts LoadOptions) ([]Sample, error) {
	n := len(entries)
	res := make([]decoded, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	var (
		next    atomic.Int64 // next entry to take
		done    atomic.Int64 // entries decoded
		minFail atomic.Int64 // lowest index that failed, under FailOnBadImage
		wg      sync.WaitGroup
	)
	minFail.Store(math.MaxInt64)
	for range workers {
		wg.Go(func() {
			var rz nn.Resizer // its row loader is the serving path's colour conversion
			for {
				i := next.Add(1) - 1
				// Indices are handed out in order, so once entry k failed,
				// every entry before it is taken and will finish: the lowest
				// failure is then known without decoding the rest.
				if i >= int64(n) || i > minFail.Load() {
					return
				}
				e := &entries[i]
				res[i] = decodeEntry(&rz, e, opts.MaxPixels)
				e.data = nil // the decoded pixels replace the compressed bytes
				if res[i].err != nil && opts.OnBadImage == FailOnBadImage {
					for {
						old := minFail.Load()
						if i >= old || minFail.CompareAndSwap(old, i) {
							break
						}
					}
				}
				done.Add(1)
			}
		})
	}
	if opts.Progress != nil {
		// Progress is called from this goroutine only, so the caller's
		// function need not be safe for concurrent use.
		stop := make(chan struct{})
		go func() { wg.Wait(); close(stop) }()
		tick := time.NewTicker(250 * time.Millisecond)
		for waiting := true; waiting; {
			select {
			case <-stop:
				waiting = false
			case <-tick.C:
				opts.Progress(int(done.Load()))
			}
		}
		tick.Stop()
	}
	wg.Wait()

	samples := make([]Sample, 0, n)
	for i := range entries {
		r := &res[i]
		if r.err != nil {
			if opts.OnBadImage == FailOnBadImage {
				return nil, r.err
			}
			opts.Warn(entries[i].path, r.err)
			continue
		}
		samples = append(samples, Sample{W: r.w, H: r.h, Pix: r.pix, Label: entries[i].label, Path: entries[i].path})
	}
	if opts.Progress != nil {
		opts.Progress(len(samples))
	}
	return samples, nil
}

// decodeEntry decodes one image to 8-bit RGB. Every error names the entry.
func decodeEntry(rz *nn.Resizer, e *imageEntry, maxPixels int64) decoded {
	if e.err != nil {
		return decoded{err: e.err}
	}
	var (
		img image.Image
		err error
	)
	if e.file != "" {
		img, err = nn.LoadImageFile(e.file, maxPixels)
	} else {
		img, err = nn.DecodeNamedImage(e.path, bytes.NewReader(e.data), maxPixels)
	}
	if err != nil {
		return decoded{err: err}
	}
	w, h, pix := rz.RGB(img)
	return decoded{w: w, h: h, pix: pix}
}

// Split divides d into a training and a validation part: in every class,
// round(valFraction × class size) images chosen at random go to val, the
// rest to train, so both keep d's class balance. The choice depends only
// on (seed, class label, class size), so the same data set and seed always
// give the same split. Both parts keep d's sample order and share its
// pixel buffers (nothing is copied) and its class list. valFraction is
// clamped to [0, 1]; NaN counts as 0.
func (d *Dataset) Split(valFraction float64, seed int64) (train, val *Dataset) {
	if !(valFraction > 0) {
		valFraction = 0
	}
	valFraction = min(valFraction, 1)
	byClass := map[int][]int{}
	for i, s := range d.Samples {
		byClass[s.Label] = append(byClass[s.Label], i)
	}
	inVal := make([]bool, len(d.Samples))
	for label, idx := range byClass {
		k := min(len(idx), int(math.Round(valFraction*float64(len(idx)))))
		rng := rand.NewPCG(splitmix64(uint64(seed)), splitmix64(uint64(int64(label))^0x5eed5eed5eed5eed))
		// Partial Fisher-Yates: the first k of a random permutation.
		idx = slices.Clone(idx)
		for j := 0; j < k; j++ {
			r := j + int(uintN(rng, uint64(len(idx)-j)))
			idx[j], idx[r] = idx[r], idx[j]
			inVal[idx[j]] = true
		}
	}
	train = &Dataset{Name: d.Name + "/train", Classes: d.Classes}
	val = &Dataset{Name: d.Name + "/val", Classes: d.Classes}
	for i, s := range d.Samples {
		if inVal[i] {
			val.Samples = append(val.Samples, s)
		} else {
			train.Samples = append(train.Samples, s)
		}
	}
	return train, val
}
