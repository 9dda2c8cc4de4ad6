package load

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"

	"github.com/varpar/varpar/nn/data"
)

// Workload is the images a run sends, pre-encoded as PNG, in a fixed order.
type Workload struct {
	Size      int             // images in the data set
	Classes   map[string]bool // the data set's class names
	ClassList []string        // the same, in label order
	order     []int           // sample index of request i (mod len)
	encoded   map[int][]byte  // PNG by sample index, for the samples used
	labels    map[int]string  // class name by sample index
}

// LoadWorkload loads the data set at path (an image folder, a tar of one or
// an MNIST IDX file; bad images are skipped and passed to warn) and encodes
// the images that need requests will use, in an order shuffled by seed.
func LoadWorkload(path string, need int, seed uint64, warn func(string, error)) (*Workload, error) {
	d, err := data.LoadDataset(path, data.LoadOptions{OnBadImage: data.SkipBadImage, Warn: warn})
	if err != nil {
		return nil, err
	}
	if len(d.Samples) == 0 {
		return nil, fmt.Errorf("%s: no images", path)
	}
	w := &Workload{Size: len(d.Samples), encoded: map[int][]byte{}, labels: map[int]string{}, Classes: map[string]bool{},
		ClassList: d.Classes}
	for _, c := range d.Classes {
		w.Classes[c] = true
	}
	w.order = ShuffledOrder(len(d.Samples), seed)
	for i := 0; i < min(need, len(w.order)); i++ {
		s := d.Samples[w.order[i]]
		b, err := EncodePNG(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		w.encoded[w.order[i]] = b
		if s.Label >= 0 && s.Label < len(d.Classes) {
			w.labels[w.order[i]] = d.Classes[s.Label]
		}
	}
	return w, nil
}

// Distinct is how many different images the run sends.
func (w *Workload) Distinct() int { return len(w.encoded) }

// Request returns the image and class name of request i (the images repeat
// when there are more requests than images).
func (w *Workload) Request(i int) ([]byte, string) {
	s := w.order[i%len(w.order)]
	return w.encoded[s], w.labels[s]
}

// ShuffledOrder is a permutation of 0..n-1 that depends only on seed.
func ShuffledOrder(n int, seed uint64) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc909))
	r.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
	return order
}

// EncodePNG encodes a sample as PNG: gray when its three channels are equal
// (MNIST), which the peer turns back into the same RGB pixels.
func EncodePNG(s data.Sample) ([]byte, error) {
	if s.W <= 0 || s.H <= 0 || len(s.Pix) != s.W*s.H*3 {
		return nil, fmt.Errorf("load: sample is %dx%d with %d bytes of RGB", s.W, s.H, len(s.Pix))
	}
	gray := true
	for p := 0; p < len(s.Pix) && gray; p += 3 {
		gray = s.Pix[p] == s.Pix[p+1] && s.Pix[p] == s.Pix[p+2]
	}
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, s.W, s.H))
		for p := range g.Pix {
			g.Pix[p] = s.Pix[3*p]
		}
		img = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, s.W, s.H))
		for p := 0; p < s.W*s.H; p++ {
			copy(c.Pix[4*p:4*p+3], s.Pix[3*p:3*p+3])
			c.Pix[4*p+3] = 255
		}
		img = c
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
