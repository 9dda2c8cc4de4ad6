package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
)

// dsImage is an opaque image of random colours, different for every seed.
func dsImage(seed uint64, w, h int) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 77))
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255
	}
	return m
}

func dsEncode(t testing.TB, img image.Image, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func dsWrite(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dsFixture is one image of the test folder and what loading it must give.
type dsFixture struct {
	rel   string // from the data-set root, under the wrapper
	img   *image.NRGBA
	class string
	jpeg  bool
}

// makeFolder writes an image-folder data set under root/wrapper (wrapper
// may be ""): classes written out of order, mixed PNG and JPEG (one with an
// upper-case extension, one nested a level deeper), and the files a loader
// must ignore. It returns the images in the order LoadDataset must give
// them.
func makeFolder(t testing.TB, root, wrapper string) []dsFixture {
	t.Helper()
	fx := []dsFixture{
		{rel: "dog/b.png", class: "dog"},
		{rel: "ant/1.PNG", class: "ant"},
		{rel: "cat/x.jpg", class: "cat", jpeg: true},
		{rel: "dog/a.jpeg", class: "dog", jpeg: true},
		{rel: "cat/sub/z.png", class: "cat"},
		{rel: "ant/0.png", class: "ant"},
		{rel: "cat/y.png", class: "cat"},
	}
	base := filepath.Join(root, wrapper)
	for i := range fx {
		fx[i].img = dsImage(uint64(i+1), 5+i%3, 4+i%2)
		format := "png"
		if fx[i].jpeg {
			format = "jpeg"
		}
		dsWrite(t, filepath.Join(base, fx[i].rel), dsEncode(t, fx[i].img, format))
	}
	// Ignored: other extensions, hidden files (an AppleDouble "._" file
	// with an image extension but no image inside), hidden folders, and
	// an image beside the class folders.
	dsWrite(t, filepath.Join(base, "README.txt"), []byte("not an image"))
	dsWrite(t, filepath.Join(base, "cat", "labels.csv"), []byte("x,y"))
	dsWrite(t, filepath.Join(base, "dog", ".DS_Store"), []byte{0, 0, 0, 1, 'B', 'u', 'd', '1'})
	dsWrite(t, filepath.Join(base, "dog", "._b.png"), []byte{0, 5, 22, 7, 0, 2, 0, 0})
	dsWrite(t, filepath.Join(base, ".git", "HEAD.png"), []byte("ref: refs/heads/main"))
	dsWrite(t, filepath.Join(base, "stray.png"), dsEncode(t, dsImage(99, 3, 3), "png"))
	slices.SortStableFunc(fx, func(a, b dsFixture) int {
		if c := strings.Compare(a.class, b.class); c != 0 {
			return c
		}
		return strings.Compare(a.rel, b.rel)
	})
	return fx
}

// tarOf returns a tar (gzip-compressed if gz) of everything under dir,
// member names relative to dir, folders included, in WalkDir order.
func tarOf(t testing.TB, dir string, gz bool) []byte {
	t.Helper()
	var out bytes.Buffer
	var zw *gzip.Writer
	w := tar.NewWriter(&out)
	if gz {
		zw = gzip.NewWriter(&out)
		w = tar.NewWriter(zw)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := w.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = w.Write(data)
			return err
		}
		return nil
	})
	if err == nil {
		err = w.Close()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// tarMembers builds a tar from (name, type, content) triples.
type tarMember struct {
	name string
	typ  byte
	data []byte
}

func tarFrom(t testing.TB, members []tarMember, gz bool) []byte {
	t.Helper()
	var out bytes.Buffer
	var zw *gzip.Writer
	w := tar.NewWriter(&out)
	if gz {
		zw = gzip.NewWriter(&out)
		w = tar.NewWriter(zw)
	}
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.data))}
		if m.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if m.typ == tar.TypeSymlink {
			hdr.Linkname = "elsewhere.png"
		}
		if err := w.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := w.Write(m.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// wantRGB is the 8-bit RGB a loader must produce for a fixture: the PNG's
// exact pixels; for a JPEG, its decoded pixels as image/color converts
// them, within 1 of the source-independent colour model's rounding.
func checkPixels(t *testing.T, s Sample, f dsFixture, jpegData []byte) {
	t.Helper()
	b := f.img.Bounds()
	if s.W != b.Dx() || s.H != b.Dy() || len(s.Pix) != s.W*s.H*3 {
		t.Fatalf("%s: %dx%d with %d bytes, want %dx%d", s.Path, s.W, s.H, len(s.Pix), b.Dx(), b.Dy())
	}
	var ref image.Image = f.img
	tol := 0
	if f.jpeg {
		m, err := jpeg.Decode(bytes.NewReader(jpegData))
		if err != nil {
			t.Fatal(err)
		}
		ref, tol = m, 1
	}
	for y := 0; y < s.H; y++ {
		for x := 0; x < s.W; x++ {
			r, g, bl, _ := color.NRGBAModel.Convert(ref.At(x, y)).RGBA()
			want := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			for c := 0; c < 3; c++ {
				got := int(s.Pix[(y*s.W+x)*3+c])
				if got-want[c] > tol || want[c]-got > tol {
					t.Fatalf("%s: pixel (%d,%d) channel %d is %d, want %d", s.Path, x, y, c, got, want[c])
				}
			}
		}
	}
}

// checkFolderDataset checks d against the fixtures makeFolder wrote.
func checkFolderDataset(t *testing.T, d *Dataset, fx []dsFixture, base string) {
	t.Helper()
	if want := []string{"ant", "cat", "dog"}; !slices.Equal(d.Classes, want) {
		t.Fatalf("classes %q, want %q", d.Classes, want)
	}
	if len(d.Samples) != len(fx) {
		var paths []string
		for _, s := range d.Samples {
			paths = append(paths, s.Path)
		}
		t.Fatalf("%d samples %q, want %d", len(d.Samples), paths, len(fx))
	}
	for i, s := range d.Samples {
		f := fx[i]
		if !strings.HasSuffix(filepath.ToSlash(s.Path), "/"+f.rel) && !strings.HasSuffix(s.Path, ":"+f.rel) {
			t.Errorf("sample %d is %s, want .../%s", i, s.Path, f.rel)
		}
		if d.Classes[s.Label] != f.class {
			t.Errorf("sample %d (%s): class %q, want %q", i, s.Path, d.Classes[s.Label], f.class)
		}
		var data []byte
		if f.jpeg {
			var err error
			if data, err = os.ReadFile(filepath.Join(base, f.rel)); err != nil {
				t.Fatal(err)
			}
		}
		checkPixels(t, s, f, data)
	}
	// README.txt, cat/labels.csv and stray.png (beside the class folders)
	// are counted as left out; hidden files are not.
	if d.Ignored != 3 || !strings.HasSuffix(filepath.ToSlash(d.IgnoredExample), "train/README.txt") {
		t.Errorf("ignored %d files, first %q; want 3, first .../train/README.txt", d.Ignored, d.IgnoredExample)
	}
}

// sameSamples reports whether two data sets hold the same images, labels
// and classes (paths may differ: file vs archive member).
func sameSamples(a, b *Dataset) bool {
	if !slices.Equal(a.Classes, b.Classes) || len(a.Samples) != len(b.Samples) {
		return false
	}
	for i := range a.Samples {
		x, y := a.Samples[i], b.Samples[i]
		if x.W != y.W || x.H != y.H || x.Label != y.Label || !bytes.Equal(x.Pix, y.Pix) {
			return false
		}
	}
	return true
}

func TestImageFolderTarSameDataset(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	fx := makeFolder(t, src, "train")
	base := filepath.Join(src, "train")

	fromDir, err := LoadDataset(src, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFolderDataset(t, fromDir, fx, base)
	if fromDir.Name != "src" {
		t.Errorf("name %q, want src", fromDir.Name)
	}
	if want := filepath.Join(base, "ant", "0.png"); fromDir.Samples[0].Path != want {
		t.Errorf("first path %q, want %q", fromDir.Samples[0].Path, want)
	}

	// The class folders themselves, without the wrapper.
	fromInner, err := LoadDataset(base, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameSamples(fromDir, fromInner) {
		t.Error("loading the wrapper and the folder inside it differ")
	}

	for _, c := range []struct {
		name string
		gz   bool
	}{{"train.tar", false}, {"train.tar.gz", true}, {"train.tgz", true}, {"no-extension", true}, {"plain-no-ext", false}} {
		p := filepath.Join(dir, c.name)
		dsWrite(t, p, tarOf(t, src, c.gz))
		d, err := LoadDataset(p, LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkFolderDataset(t, d, fx, base)
		if !sameSamples(fromDir, d) {
			t.Errorf("%s: differs from the folder", c.name)
		}
		if want := p + ":train/ant/0.png"; d.Samples[0].Path != want {
			t.Errorf("%s: first path %q, want %q", c.name, d.Samples[0].Path, want)
		}
	}
}

func TestImageFolderUnwrapRules(t *testing.T) {
	png1 := dsEncode(t, dsImage(1, 2, 2), "png")
	cases := []struct {
		name    string
		files   []string
		classes []string
	}{
		{"no wrapper", []string{"a/0.png", "b/0.png"}, []string{"a", "b"}},
		{"one wrapper", []string{"train/a/0.png", "train/b/0.png"}, []string{"a", "b"}},
		{"two wrappers", []string{"cifar/train/a/0.png", "cifar/train/b/0.png"}, []string{"a", "b"}},
		// A single folder of images is a class, not a wrapper.
		{"single class", []string{"only/0.png", "only/1.png"}, []string{"only"}},
		// A wrapper beside an image is not a wrapper: the image is stray.
		{"image beside", []string{"x.png", "train/a/0.png"}, []string{"train"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var members []tarMember
			for _, f := range c.files {
				dsWrite(t, filepath.Join(dir, "set", f), png1)
				members = append(members, tarMember{f, tar.TypeReg, png1})
			}
			d, err := LoadDataset(filepath.Join(dir, "set"), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Classes, c.classes) {
				t.Errorf("folder: classes %q, want %q", d.Classes, c.classes)
			}
			// A tar without folder entries: folders are implied by paths.
			p := filepath.Join(dir, "set.tar")
			dsWrite(t, p, tarFrom(t, members, false))
			dt, err := LoadDataset(p, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !sameSamples(d, dt) {
				t.Errorf("tar: classes %q, differs from the folder", dt.Classes)
			}
		})
	}
}

func TestImageFolderBadImage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	fx := makeFolder(t, src, "train")
	good := dsEncode(t, dsImage(5, 4, 4), "jpeg")
	dsWrite(t, filepath.Join(src, "train", "cat", "bad.jpg"), good[:len(good)/2])           // truncated
	dsWrite(t, filepath.Join(src, "train", "dog", "worse.png"), []byte("<html>404</html>")) // not an image
	tarPath := filepath.Join(dir, "src.tar.gz")
	dsWrite(t, tarPath, tarOf(t, src, true))

	for _, c := range []struct{ path, firstBad, secondBad string }{
		{src, filepath.Join(src, "train", "cat", "bad.jpg"), filepath.Join(src, "train", "dog", "worse.png")},
		{tarPath, tarPath + ":train/cat/bad.jpg", tarPath + ":train/dog/worse.png"},
	} {
		_, err := LoadDataset(c.path, LoadOptions{})
		var fe *nn.FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.firstBad) {
			t.Errorf("fail policy: got %T %v, want a *FormatError naming %s (the first bad image in sample order)", err, err, c.firstBad)
		}

		var warned []string
		d, err := LoadDataset(c.path, LoadOptions{OnBadImage: SkipBadImage, Warn: func(p string, err error) {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("warning for %s: error %q does not name it", p, err)
			}
			warned = append(warned, p)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{c.firstBad, c.secondBad}; !slices.Equal(warned, want) {
			t.Errorf("warned %q, want %q", warned, want)
		}
		checkFolderDataset(t, d, fx, filepath.Join(src, "train"))
	}

	if _, err := LoadDataset(src, LoadOptions{OnBadImage: SkipBadImage}); err == nil {
		t.Error("SkipBadImage without Warn: no error")
	}
	if _, err := LoadDataset(src, LoadOptions{OnBadImage: 7}); err == nil {
		t.Error("unknown policy: no error")
	}
}

func TestImageFolderPixelBudget(t *testing.T) {
	dir := t.TempDir()
	dsWrite(t, filepath.Join(dir, "a", "small.png"), dsEncode(t, dsImage(1, 4, 4), "png"))
	dsWrite(t, filepath.Join(dir, "a", "big.png"), dsEncode(t, dsImage(2, 40, 40), "png"))
	_, err := LoadDataset(dir, LoadOptions{MaxPixels: 100})
	if !errors.Is(err, nn.ErrPixelBudget) || !strings.Contains(err.Error(), "big.png") {
		t.Errorf("got %v, want a pixel-budget error naming big.png", err)
	}
	d, err := LoadDataset(dir, LoadOptions{MaxPixels: 100, OnBadImage: SkipBadImage, Warn: func(string, error) {}})
	if err != nil || len(d.Samples) != 1 {
		t.Errorf("skip: %v", err)
	}
}

func TestImageFolderLayoutErrors(t *testing.T) {
	png1 := dsEncode(t, dsImage(1, 2, 2), "png")
	cases := []struct {
		name    string
		members []tarMember
		want    string // in the message
	}{
		{"empty class", []tarMember{{"train/a/0.png", tar.TypeReg, png1}, {"train/b/", tar.TypeDir, nil}}, `class "b" has no images`},
		{"class of non-images", []tarMember{{"a/0.png", tar.TypeReg, png1}, {"b/notes.txt", tar.TypeReg, []byte("x")}}, `class "b" has no images`},
		{"images only", []tarMember{{"0.png", tar.TypeReg, png1}, {"1.png", tar.TypeReg, png1}}, "no class folders"},
		{"nothing", []tarMember{{"README", tar.TypeReg, []byte("x")}}, "no class folders"},
		{"empty", nil, "no class folders"},
		{"links only", []tarMember{{"a/0.png", tar.TypeSymlink, nil}}, `class "a" has no images`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "set.tar")
			dsWrite(t, p, tarFrom(t, c.members, false))
			_, err := LoadDataset(p, LoadOptions{})
			var de *DatasetError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("tar: got %T %v, want a *DatasetError naming %s and saying %q", err, err, p, c.want)
			}
			// The same as a folder.
			root := filepath.Join(dir, "set")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, m := range c.members {
				switch m.typ {
				case tar.TypeDir:
					os.MkdirAll(filepath.Join(root, m.name), 0o755)
				case tar.TypeSymlink:
					os.MkdirAll(filepath.Dir(filepath.Join(root, m.name)), 0o755)
					os.Symlink("/nonexistent/dir/", filepath.Join(root, m.name+".d"))
				default:
					dsWrite(t, filepath.Join(root, m.name), m.data)
				}
			}
			_, err = LoadDataset(root, LoadOptions{})
			if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("folder: got %T %v, want a *DatasetError saying %q", err, err, c.want)
			}
		})
	}

	// Every image of a class bad, and skipped: the class is empty.
	dir := t.TempDir()
	dsWrite(t, filepath.Join(dir, "a", "0.png"), png1)
	dsWrite(t, filepath.Join(dir, "b", "0.png"), []byte("junk"))
	_, err := LoadDataset(dir, LoadOptions{OnBadImage: SkipBadImage, Warn: func(string, error) {}})
	if err == nil || !strings.Contains(err.Error(), `class "b"`) {
		t.Errorf("all of a class skipped: %v", err)
	}
}

func TestTarMemberNames(t *testing.T) {
	png1 := dsEncode(t, dsImage(1, 2, 2), "png")
	png2 := dsEncode(t, dsImage(2, 3, 2), "png")
	members := []tarMember{
		{"./", tar.TypeDir, nil},
		{"./set/a/0.png", tar.TypeReg, png1},
		{"/set/b/0.png", tar.TypeReg, png1},
		{"set/b/1.png", tar.TypeReg, []byte("first copy, replaced below")},
		{"set/b/link.png", tar.TypeSymlink, nil},
		{"set/b/._1.png", tar.TypeReg, []byte("resource fork")},
		{"set/b/1.png", tar.TypeReg, png2},
		{"../set/a/1.png", tar.TypeReg, png2},
	}
	p := filepath.Join(t.TempDir(), "odd.tar")
	dsWrite(t, p, tarFrom(t, members, false))
	d, err := LoadDataset(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range d.Samples {
		got = append(got, strings.TrimPrefix(s.Path, p+":"))
	}
	if want := []string{"set/a/0.png", "set/a/1.png", "set/b/0.png", "set/b/1.png"}; !slices.Equal(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}
	if s := d.Samples[3]; s.W != 3 {
		t.Errorf("duplicate member: got the %dx%d copy, want the later 3x2", s.W, s.H)
	}
}

func TestTarCorrupt(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	makeFolder(t, src, "train")
	gz := tarOf(t, src, true)
	raw := tarOf(t, src, false)

	check := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		dsWrite(t, p, data)
		for _, opts := range []LoadOptions{{}, {OnBadImage: SkipBadImage, Warn: func(string, error) {}}} {
			_, err := LoadDataset(p, opts)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("%s (policy %d): got %v, want an error naming the archive", name, opts.OnBadImage, err)
			}
		}
	}
	check("truncated.tar.gz", gz[:len(gz)*2/3])
	check("truncated.tar", raw[:len(raw)/2+100])
	flipped := slices.Clone(gz)
	flipped[len(flipped)/2] ^= 0x55
	check("flipped.tar.gz", flipped)
	crc := slices.Clone(gz)
	crc[len(crc)-6] ^= 1 // inside the gzip trailer's CRC-32
	check("crc.tar.gz", crc)
	header := slices.Clone(raw)
	header[0] ^= 0x01 // the first header's name: its checksum no longer matches
	check("header.tar", header)
	check("garbage.bin", []byte("hello, this is not a data set"))
	check("empty.bin", nil)
}

func TestLoadDatasetMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.tar.gz")
	_, err := LoadDataset(p, LoadOptions{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("got %v", err)
	}
}

func TestImageFolderSymlinks(t *testing.T) {
	dir := t.TempDir()
	png1 := dsEncode(t, dsImage(1, 2, 2), "png")
	dsWrite(t, filepath.Join(dir, "elsewhere", "cat", "0.png"), png1)
	root := filepath.Join(dir, "set")
	dsWrite(t, filepath.Join(root, "dog", "0.png"), png1)
	if err := os.Symlink(filepath.Join(dir, "elsewhere", "cat"), filepath.Join(root, "cat")); err != nil {
		t.Skip("no symlinks:", err)
	}
	// A link back up the tree must not loop.
	if err := os.Symlink(root, filepath.Join(root, "dog", "loop")); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDataset(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Classes, []string{"cat", "dog"}) || len(d.Samples) != 2 {
		t.Errorf("classes %q, %d samples", d.Classes, len(d.Samples))
	}
	// A dangling link named like an image is a bad image.
	if err := os.Symlink(filepath.Join(dir, "gone.png"), filepath.Join(root, "dog", "1.png")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDataset(root, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "1.png") {
		t.Errorf("dangling link: %v", err)
	}
}

func TestCIFARDataset(t *testing.T) {
	const p = "/work/shared/datasets/cifar10/test.tar.gz"
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skip("CIFAR-10 not here:", err)
	}
	progressCalls := 0
	d, err := LoadDataset(p, LoadOptions{Progress: func(n int) { progressCalls++ }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	if !slices.Equal(d.Classes, want) {
		t.Fatalf("classes %q", d.Classes)
	}
	if len(d.Samples) != 5000 {
		t.Fatalf("%d samples, want 5000", len(d.Samples))
	}
	count := make([]int, 10)
	for i, s := range d.Samples {
		count[s.Label]++
		if s.W != 32 || s.H != 32 || len(s.Pix) != 32*32*3 {
			t.Fatalf("%s: %dx%d", s.Path, s.W, s.H)
		}
		if i > 0 && d.Samples[i-1].Label > s.Label {
			t.Fatalf("sample %d: labels not in class order", i)
		}
	}
	for c, n := range count {
		if n != 500 {
			t.Errorf("class %s: %d images, want 500", want[c], n)
		}
	}
	if got := d.Samples[0].Path; got != p+":test/airplane/0000.jpg" {
		t.Errorf("first sample %s", got)
	}
	if progressCalls == 0 {
		t.Error("Progress never called")
	}
}

// FuzzTarDataset feeds arbitrary bytes to the data-set sniffer and the tar
// loader (gzip or not): nothing may panic, and whatever loads must be
// consistent.
func FuzzTarDataset(f *testing.F) {
	dir := f.TempDir()
	makeFolder(f, dir, "train")
	f.Add(tarOf(f, dir, false))
	f.Add(tarOf(f, dir, true))
	png1 := dsEncode(f, dsImage(1, 2, 2), "png")
	f.Add(tarFrom(f, []tarMember{{"a/0.png", tar.TypeReg, png1}, {"b/", tar.TypeDir, nil}, {"b/1.jpg", tar.TypeReg, png1[:20]}}, false))
	f.Add(tarFrom(f, []tarMember{{"x/a/0.png", tar.TypeReg, png1}, {"x/b/0.png", tar.TypeReg, png1}}, true))
	if fixture, err := os.ReadFile(filepath.Join("testdata", "datasets", "tiny.tar.gz")); err == nil {
		f.Add(fixture)
	}
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, policy := range []BadImagePolicy{FailOnBadImage, SkipBadImage} {
			opts := LoadOptions{MaxPixels: 1 << 12, OnBadImage: policy, Warn: func(string, error) {}}
			d, err := loadDatasetStream("fuzz.tar", bytes.NewReader(data), opts)
			if err != nil {
				continue
			}
			if len(d.Classes) == 0 || len(d.Samples) == 0 {
				t.Fatalf("loaded %d classes, %d samples without error", len(d.Classes), len(d.Samples))
			}
			for _, s := range d.Samples {
				if s.Label < 0 || s.Label >= len(d.Classes) || len(s.Pix) != s.W*s.H*3 || s.W*s.H > 1<<12 {
					t.Fatalf("bad sample %s: label %d, %dx%d, %d bytes", s.Path, s.Label, s.W, s.H, len(s.Pix))
				}
			}
		}
	})
}

func TestTarFixture(t *testing.T) {
	// testdata/datasets/tiny.tar.gz: tiny/cat/0.png (2x2: red, green, blue,
	// white), tiny/cat/1.png (1x1 gray 128), tiny/dog/0.jpg (8x8 of
	// 100,150,200), tiny/README.txt; members not in sorted order.
	p := filepath.Join("testdata", "datasets", "tiny.tar.gz")
	d, err := LoadDataset(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Classes, []string{"cat", "dog"}) || len(d.Samples) != 3 || d.Name != "tiny" {
		t.Fatalf("name %q, classes %q, %d samples", d.Name, d.Classes, len(d.Samples))
	}
	want := []struct {
		path  string
		label int
		pix   []uint8
	}{
		{p + ":tiny/cat/0.png", 0, []uint8{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255}},
		{p + ":tiny/cat/1.png", 0, []uint8{128, 128, 128}},
		{p + ":tiny/dog/0.jpg", 1, nil},
	}
	for i, w := range want {
		s := d.Samples[i]
		if s.Path != w.path || s.Label != w.label {
			t.Errorf("sample %d: %s label %d, want %s label %d", i, s.Path, s.Label, w.path, w.label)
		}
		if w.pix != nil && !bytes.Equal(s.Pix, w.pix) {
			t.Errorf("%s: pixels %v, want %v", s.Path, s.Pix, w.pix)
		}
	}
	if s := d.Samples[2]; s.W != 8 || s.H != 8 {
		t.Errorf("jpeg %dx%d", s.W, s.H)
	} else {
		for i, v := range s.Pix {
			if ref := []int{100, 150, 200}[i%3]; int(v) < ref-4 || int(v) > ref+4 {
				t.Fatalf("jpeg byte %d is %d, want about %d", i, v, ref)
			}
		}
	}
}

func TestTarSparseIsNotAnImage(t *testing.T) {
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeGNUSparse},
		{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}},
		{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.map": "0,512"}},
	} {
		if !isSparse(h) {
			t.Errorf("%+v: not seen as sparse", h)
		}
	}
	if isSparse(&tar.Header{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"path": "a/b.png"}}) {
		t.Error("a plain member seen as sparse")
	}
}

// TestIgnoredCount: a tar that repeats a non-image member counts it once,
// and links, FIFOs and devices are not counted (they are not files that
// could have been images).
func TestIgnoredCount(t *testing.T) {
	png1 := dsEncode(t, dsImage(1, 2, 2), "png")
	members := []tarMember{
		{"a/0.png", tar.TypeReg, png1},
		{"a/notes.txt", tar.TypeReg, []byte("x")},
		{"a/notes.txt", tar.TypeReg, []byte("y")},
		{"a/link.txt", tar.TypeSymlink, nil},
		{"a/fifo", tar.TypeFifo, nil},
		{"b/1.bmp", tar.TypeReg, []byte("BM")},
		{"b/1.png", tar.TypeReg, png1},
	}
	p := filepath.Join(t.TempDir(), "set.tar")
	dsWrite(t, p, tarFrom(t, members, false))
	d, err := LoadDataset(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Ignored != 2 || d.IgnoredExample != p+":a/notes.txt" {
		t.Errorf("ignored %d, first %q; want 2 (a/notes.txt once, b/1.bmp), first %s:a/notes.txt", d.Ignored, d.IgnoredExample, p)
	}
}
