package data

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// batchDataset has n random w×h images (distinct with near certainty) with
// labels cycling over classes.
func batchDataset(n, w, h, classes int) *Dataset {
	rng := rand.New(rand.NewPCG(3, 4))
	d := &Dataset{Name: "synthetic"}
	for c := 0; c < classes; c++ {
		d.Classes = append(d.Classes, fmt.Sprint(c))
	}
	for i := 0; i < n; i++ {
		pix := make([]uint8, w*h*3)
		for j := range pix {
			pix[j] = uint8(rng.IntN(256))
		}
		d.Samples = append(d.Samples, Sample{W: w, H: h, Pix: pix, Label: i % classes, Path: fmt.Sprintf("s%d", i)})
	}
	return d
}

// batchSpecs are variants at the given resolutions with distinct
// normalisations.
func batchSpecs(res ...int) []nn.Spec {
	var specs []nn.Spec
	for i, r := range res {
		s := nn.DefaultSpec()
		s.Resolution = r
		s.Mean = [3]float32{0.4 + 0.01*float32(i), 0.45, 0.5}
		s.Std = [3]float32{0.2, 0.25 + 0.01*float32(i), 0.3}
		specs = append(specs, s)
	}
	return specs
}

// batchBufs allocates Train's buffers.
func batchBufs(specs []nn.Spec, batch, classes int) (inputs [][]float32, targets []float32, labels []int) {
	for _, s := range specs {
		inputs = append(inputs, make([]float32, batch*s.Resolution*s.Resolution*3))
	}
	return inputs, make([]float32, batch*classes), make([]int, batch)
}

// sampleImage is a Sample as the *image.NRGBA it stands for.
func sampleImage(s *Sample) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, s.W, s.H))
	for i := 0; i < s.W*s.H; i++ {
		copy(m.Pix[4*i:], s.Pix[3*i:3*i+3])
		m.Pix[4*i+3] = 255
	}
	return m
}

// refAugment is padCropFlip written the obvious way, per pixel.
func refAugment(s *Sample, pad, ox, oy int, flip bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, s.W, s.H))
	for y := 0; y < s.H; y++ {
		for x := 0; x < s.W; x++ {
			cx := x
			if flip {
				cx = s.W - 1 - x
			}
			sx, sy := cx+ox-pad, y+oy-pad
			i := (y*s.W + x) * 4
			m.Pix[i+3] = 255
			if sx >= 0 && sx < s.W && sy >= 0 && sy < s.H {
				copy(m.Pix[i:i+3], s.Pix[(sy*s.W+sx)*3:])
			}
		}
	}
	return m
}

func tensorOf(img image.Image, s nn.Spec) []float32 {
	out := make([]float32, s.Resolution*s.Resolution*3)
	var rz nn.Resizer
	rz.ToTensor(img, s.Resolution, s.Mean, s.Std, out)
	return out
}

func TestPadCropFlipMatchesReference(t *testing.T) {
	d := batchDataset(3, 7, 5, 2)
	var dst image.NRGBA
	for _, s := range d.Samples {
		for pad := 0; pad <= 3; pad++ {
			for ox := 0; ox <= 2*pad; ox++ {
				for oy := 0; oy <= 2*pad; oy++ {
					for _, flip := range []bool{false, true} {
						padCropFlip(&dst, &s, pad, ox, oy, flip)
						want := refAugment(&s, pad, ox, oy, flip)
						if dst.Rect != want.Rect || !slices.Equal(dst.Pix, want.Pix) {
							t.Fatalf("pad %d offset (%d,%d) flip %v differs", pad, ox, oy, flip)
						}
					}
				}
			}
		}
	}
	// Flipped means mirrored: column x of the flip is column w-1-x.
	s := d.Samples[0]
	padCropFlip(&dst, &s, 0, 0, 0, true)
	for y := 0; y < s.H; y++ {
		for x := 0; x < s.W; x++ {
			got := dst.Pix[(y*s.W+x)*4 : (y*s.W+x)*4+3]
			want := s.Pix[(y*s.W+s.W-1-x)*3 : (y*s.W+s.W-1-x)*3+3]
			if !slices.Equal(got, want) {
				t.Fatalf("flip (%d,%d): %v, want %v", x, y, got, want)
			}
		}
	}
}

func TestBatcherNoAugmentationIsServingPath(t *testing.T) {
	d := batchDataset(20, 32, 32, 4)
	specs := batchSpecs(32, 24, 17)
	cfg := format.DefaultTrainConfig()
	cfg.Batch, cfg.PadCrop, cfg.Flip, cfg.Mixup, cfg.LabelSmoothing = 6, 0, false, 0, 0
	bt := NewBatcher(specs, 4, cfg)
	inputs, targets, labels := batchBufs(specs, 6, 4)
	for b := 0; b < BatchesPerEpoch(d, 6); b++ {
		bt.Train(d, 2, b, inputs, targets, labels)
		idx := bt.epochPermutation(d, 2)[b*6 : b*6+6]
		for k, si := range idx {
			s := &d.Samples[si]
			if labels[k] != s.Label {
				t.Errorf("batch %d image %d: label %d, want %d", b, k, labels[k], s.Label)
			}
			for i, sp := range specs {
				n := sp.Resolution * sp.Resolution * 3
				if want := tensorOf(sampleImage(s), sp); !slices.Equal(inputs[i][k*n:(k+1)*n], want) {
					t.Fatalf("batch %d image %d spec %d: not ToTensor of the image", b, k, i)
				}
			}
			for c := 0; c < 4; c++ {
				want := float32(0)
				if c == s.Label {
					want = 1
				}
				if targets[k*4+c] != want {
					t.Errorf("target[%d][%d] = %v, want %v", k, c, targets[k*4+c], want)
				}
			}
		}
	}

	// Eval: the same, for any indices.
	idx := []int{19, 0, 7}
	evIn, _, evLbl := batchBufs(specs, 3, 4)
	bt.Eval(d, idx, evIn, evLbl)
	for k, si := range idx {
		if evLbl[k] != d.Samples[si].Label {
			t.Errorf("eval label %d", k)
		}
		for i, sp := range specs {
			n := sp.Resolution * sp.Resolution * 3
			if !slices.Equal(evIn[i][k*n:(k+1)*n], tensorOf(sampleImage(&d.Samples[si]), sp)) {
				t.Fatalf("eval image %d spec %d: not ToTensor of the image", k, i)
			}
		}
	}
}

func TestBatcherEpochPermutation(t *testing.T) {
	d := batchDataset(103, 2, 2, 3)
	cfg := format.DefaultTrainConfig()
	cfg.Batch = 10
	bt := NewBatcher(batchSpecs(2), 3, cfg)
	if got := BatchesPerEpoch(d, 10); got != 10 {
		t.Errorf("BatchesPerEpoch = %d, want 10 (last 3 images dropped)", got)
	}
	if BatchesPerEpoch(d, 0) != 0 || BatchesPerEpoch(d, 104) != 0 {
		t.Error("BatchesPerEpoch for batch 0 or > n")
	}
	var perms [][]int
	for e := 0; e < 4; e++ {
		p := slices.Clone(bt.epochPermutation(d, e))
		s := slices.Clone(p)
		slices.Sort(s)
		for i, v := range s {
			if v != i {
				t.Fatalf("epoch %d: not a permutation of 0..102", e)
			}
		}
		for _, q := range perms {
			if slices.Equal(p, q) {
				t.Errorf("epoch %d repeats an earlier permutation", e)
			}
		}
		perms = append(perms, p)
	}
	// Another Batcher with the same seed agrees; another seed does not.
	if !slices.Equal(NewBatcher(nil, 3, cfg).epochPermutation(d, 1), perms[1]) {
		t.Error("same seed and epoch, different permutation")
	}
	cfg.Seed++
	if slices.Equal(NewBatcher(nil, 3, cfg).epochPermutation(d, 1), perms[1]) {
		t.Error("seed ignored")
	}
	// The batches of an epoch are disjoint: each image at most once.
	inputs, targets, labels := batchBufs(bt.specs, 10, 3)
	seen := map[int]bool{}
	for b := 0; b < 10; b++ {
		bt.Train(d, 3, b, inputs, targets, labels)
		for _, si := range bt.epochPermutation(d, 3)[b*10 : b*10+10] {
			if seen[si] {
				t.Fatalf("image %d twice in epoch 3", si)
			}
			seen[si] = true
		}
	}
}

// trainCfg turns every augmentation on.
func trainCfg(batch int) format.TrainConfig {
	cfg := format.DefaultTrainConfig()
	cfg.Batch, cfg.PadCrop, cfg.Flip, cfg.Mixup, cfg.LabelSmoothing, cfg.Seed = batch, 3, true, 0.4, 0.1, 42
	return cfg
}

func TestBatcherDeterministicAnyOrder(t *testing.T) {
	d := batchDataset(40, 12, 10, 5)
	specs := batchSpecs(12, 8)
	cfg := trainCfg(8)
	type key struct{ e, b int }
	build := func(bt *Batcher, e, b int) ([][]float32, []float32, []int) {
		in, tg, lb := batchBufs(specs, 8, 5)
		bt.Train(d, e, b, in, tg, lb)
		return in, tg, lb
	}
	// In order on one Batcher...
	ref := map[key][][]float32{}
	refT := map[key][]float32{}
	refL := map[key][]int{}
	one := NewBatcher(specs, 5, cfg)
	for e := 0; e < 3; e++ {
		for b := 0; b < BatchesPerEpoch(d, 8); b++ {
			ref[key{e, b}], refT[key{e, b}], refL[key{e, b}] = build(one, e, b)
		}
	}
	// ...equals shuffled order on another, and one-off Batchers.
	var keys []key
	for k := range ref {
		keys = append(keys, k)
	}
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	other := NewBatcher(specs, 5, cfg)
	for i, k := range keys {
		bt := other
		if i%3 == 0 {
			bt = NewBatcher(specs, 5, cfg)
		}
		in, tg, lb := build(bt, k.e, k.b)
		for s := range in {
			if !slices.Equal(in[s], ref[k][s]) {
				t.Fatalf("epoch %d batch %d spec %d: inputs depend on call order", k.e, k.b, s)
			}
		}
		if !slices.Equal(tg, refT[k]) || !slices.Equal(lb, refL[k]) {
			t.Fatalf("epoch %d batch %d: targets or labels depend on call order", k.e, k.b)
		}
	}
	// Different batches and epochs differ, and so does another seed.
	if slices.Equal(ref[key{0, 0}][0], ref[key{1, 0}][0]) || slices.Equal(ref[key{0, 0}][0], ref[key{0, 1}][0]) {
		t.Error("batches repeat")
	}
	cfg.Seed++
	in, _, _ := build(NewBatcher(specs, 5, cfg), 0, 0)
	if slices.Equal(in[0], ref[key{0, 0}][0]) {
		t.Error("seed ignored")
	}
}

func TestBatcherCropsAndFlips(t *testing.T) {
	d := batchDataset(64, 8, 8, 2)
	specs := batchSpecs(8) // at the images' own size ToTensor copies pixels exactly
	cfg := trainCfg(32)
	cfg.Mixup = 0
	bt := NewBatcher(specs, 2, cfg)
	inputs, targets, labels := batchBufs(specs, 32, 2)
	offsets := map[[2]int]int{}
	flips := map[bool]int{}
	for b := 0; b < 2; b++ {
		bt.Train(d, 0, b, inputs, targets, labels)
		n := 8 * 8 * 3
		for k, si := range bt.epochPermutation(d, 0)[b*32 : b*32+32] {
			got := inputs[0][k*n : (k+1)*n]
			// Exactly one choice of crop and flip explains the image.
			var found [][3]int
			for ox := 0; ox <= 6; ox++ {
				for oy := 0; oy <= 6; oy++ {
					for _, flip := range []bool{false, true} {
						if slices.Equal(got, tensorOf(refAugment(&d.Samples[si], 3, ox, oy, flip), specs[0])) {
							f := 0
							if flip {
								f = 1
							}
							found = append(found, [3]int{ox, oy, f})
						}
					}
				}
			}
			if len(found) != 1 {
				t.Fatalf("batch %d image %d: %d crops match: %v", b, k, len(found), found)
			}
			offsets[[2]int{found[0][0], found[0][1]}]++
			flips[found[0][2] == 1]++
		}
	}
	if flips[true] < 16 || flips[false] < 16 {
		t.Errorf("flips %v of 64: not about half", flips)
	}
	if len(offsets) < 20 {
		t.Errorf("only %d distinct crop offsets of 49 in 64 images", len(offsets))
	}
	// Without Flip, nothing is flipped; without PadCrop, nothing moves.
	cfg.Flip, cfg.PadCrop = false, 0
	bt = NewBatcher(specs, 2, cfg)
	bt.Train(d, 0, 0, inputs, targets, labels)
	for k, si := range bt.epochPermutation(d, 0)[:32] {
		if !slices.Equal(inputs[0][k*192:(k+1)*192], tensorOf(sampleImage(&d.Samples[si]), specs[0])) {
			t.Fatalf("image %d changed without augmentation", k)
		}
	}
}

func TestBatcherTargetsAndMixup(t *testing.T) {
	const C, B = 5, 16
	d := batchDataset(64, 10, 10, C)
	specs := batchSpecs(10, 6)
	cfg := trainCfg(B)
	eps := float32(cfg.LabelSmoothing)
	plain := cfg
	plain.Mixup = 0
	bp := NewBatcher(specs, C, plain)
	bm := NewBatcher(specs, C, cfg)
	inP, tgP, lbP := batchBufs(specs, B, C)
	inM, tgM, lbM := batchBufs(specs, B, C)
	var lambdas []float64
	for e := 0; e < 3; e++ {
		for b := 0; b < BatchesPerEpoch(d, B); b++ {
			bp.Train(d, e, b, inP, tgP, lbP)
			bm.Train(d, e, b, inM, tgM, lbM)

			// Smoothed one-hot rows without mixup.
			for k := 0; k < B; k++ {
				row := tgP[k*C : (k+1)*C]
				for c, v := range row {
					want := eps / C
					if c == lbP[k] {
						want += 1 - eps
					}
					if math.Abs(float64(v-want)) > 1e-6 {
						t.Fatalf("smoothed target[%d][%d] = %v, want %v", k, c, v, want)
					}
				}
			}

			lam, partner := bm.mixInfo()
			lambdas = append(lambdas, lam)
			if !(lam > 0 && lam < 1) {
				t.Fatalf("λ = %v", lam)
			}
			if p := slices.Sorted(slices.Values(partner[:B])); !slices.Equal(p, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
				t.Fatalf("partners %v: not a permutation", partner[:B])
			}
			l1, l2 := float32(lam), float32(1-lam)
			for k := 0; k < B; k++ {
				p := partner[k]
				// Targets: λ·smooth(y_k) + (1-λ)·smooth(y_p); sum 1.
				var sum float64
				for c := 0; c < C; c++ {
					want := eps / C
					if c == lbP[k] {
						want += l1 * (1 - eps)
					}
					if c == lbP[p] {
						want += l2 * (1 - eps)
					}
					got := tgM[k*C+c]
					sum += float64(got)
					if math.Abs(float64(got-want)) > 1e-6 {
						t.Fatalf("mixed target[%d][%d] = %v, want %v (λ %v, labels %d, %d)", k, c, got, want, lam, lbP[k], lbP[p])
					}
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Fatalf("target row %d sums to %v", k, sum)
				}
				// The dominant label.
				want := lbP[k]
				if lam < 0.5 {
					want = lbP[p]
				}
				if lbM[k] != want {
					t.Fatalf("label %d = %d, want %d (λ %v)", k, lbM[k], want, lam)
				}
				// Inputs: the same mix of the unmixed tensors, per spec.
				for i, sp := range specs {
					n := sp.Resolution * sp.Resolution * 3
					x, y, got := inP[i][k*n:(k+1)*n], inP[i][p*n:(p+1)*n], inM[i][k*n:(k+1)*n]
					for j := range got {
						// Within rounding: the compiler may fuse the
						// multiply-add on some platforms.
						if w := l1*x[j] + l2*y[j]; math.Abs(float64(got[j]-w)) > 1e-5*(1+math.Abs(float64(w))) {
							t.Fatalf("spec %d image %d value %d: %v, want λ·%v + (1-λ)·%v", i, k, j, got[j], x[j], y[j])
						}
					}
				}
			}
		}
	}
	slices.Sort(lambdas)
	if lambdas[0] == lambdas[len(lambdas)-1] {
		t.Error("λ never changes")
	}
}

func TestBatcherNoAllocs(t *testing.T) {
	d := batchDataset(300, 32, 32, 10)
	specs := batchSpecs(32, 28, 24, 16)
	cfg := trainCfg(32)
	bt := NewBatcher(specs, 10, cfg)
	inputs, targets, labels := batchBufs(specs, 32, 10)
	idx := []int{5, 3, 299}
	bt.Train(d, 0, 0, inputs, targets, labels) // warm-up
	bt.Eval(d, idx, inputs, labels)
	e, b := 0, 0
	allocs := testing.AllocsPerRun(20, func() {
		b++
		if b == BatchesPerEpoch(d, 32) {
			e, b = e+1, 0 // a new epoch's permutation, in the same buffer
		}
		bt.Train(d, e, b, inputs, targets, labels)
		bt.Eval(d, idx, inputs, labels)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch after warm-up", allocs)
	}
}

func TestBatcherCallerBugsPanic(t *testing.T) {
	d := batchDataset(10, 4, 4, 2)
	specs := batchSpecs(4)
	cfg := trainCfg(4)
	bt := NewBatcher(specs, 2, cfg)
	in, tg, lb := batchBufs(specs, 4, 2)
	for name, f := range map[string]func(){
		"batch out of range": func() { bt.Train(d, 0, 2, in, tg, lb) },
		"negative batch":     func() { bt.Train(d, 0, -1, in, tg, lb) },
		"short inputs":       func() { bt.Train(d, 0, 0, [][]float32{in[0][:10]}, tg, lb) },
		"missing spec":       func() { bt.Train(d, 0, 0, nil, tg, lb) },
		"short targets":      func() { bt.Train(d, 0, 0, in, tg[:3], lb) },
		"short labels":       func() { bt.Eval(d, []int{0, 1}, in, lb[:1]) },
		"label over classes": func() { NewBatcher(specs, 1, cfg).Train(d, 0, 0, in, tg, lb) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkBatcherTrain builds CIFAR-sized batches (128 images of 32×32,
// pad-crop, flip and mixup on) for four variants at 32, 28, 24 and 16.
func BenchmarkBatcherTrain(b *testing.B) {
	d := batchDataset(2048, 32, 32, 10)
	specs := batchSpecs(32, 28, 24, 16)
	cfg := trainCfg(128)
	cfg.LabelSmoothing = 0.1
	bt := NewBatcher(specs, 10, cfg)
	inputs, targets, labels := batchBufs(specs, 128, 10)
	nb := BatchesPerEpoch(d, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bt.Train(d, i/nb, i%nb, inputs, targets, labels)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(i), "ms/batch")
}

// TestBatcherCutout checks that cutout paints one square of the mean colour,
// clipped at the edges, centred anywhere, on the image that the crop and
// flip (reported by Drawn) made, and changes nothing else.
func TestBatcherCutout(t *testing.T) {
	const side, B = 6, 32
	d := batchDataset(64, 12, 12, 2)
	specs := batchSpecs(12)
	cfg := trainCfg(B)
	cfg.Mixup, cfg.PadCrop, cfg.Cutout = 0, 0, side
	bt := NewBatcher(specs, 2, cfg)
	inputs, targets, labels := batchBufs(specs, B, 2)
	var fill [3]uint8
	for c, m := range specs[0].Mean {
		fill[c] = uint8(math.Round(float64(m) * 255))
	}
	clipped, areas := 0, map[int]bool{}
	for b := 0; b < 2; b++ {
		bt.Train(d, 0, b, inputs, targets, labels)
		n := 12 * 12 * 3
		for k := 0; k < B; k++ {
			si, flip, partner, lam := bt.Drawn(k)
			if partner != k || lam != 1 {
				t.Fatalf("image %d: partner %d, λ %v without mixup", k, partner, lam)
			}
			if si != bt.epochPermutation(d, 0)[b*B+k] {
				t.Fatalf("image %d: Drawn says sample %d, the permutation %d", k, si, bt.epochPermutation(d, 0)[b*B+k])
			}
			want := refAugment(&d.Samples[si], 0, 0, 0, flip)
			got := inputs[0][k*n : (k+1)*n]
			ref := tensorOf(want, specs[0])
			// The pixels that differ form one filled rectangle of at most side×side.
			x0, y0, x1, y1 := 12, 12, -1, -1
			for p := 0; p < 144; p++ {
				if slices.Equal(got[p*3:p*3+3], ref[p*3:p*3+3]) {
					continue
				}
				x, y := p%12, p/12
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
			if x1 < 0 {
				t.Fatalf("image %d: nothing erased", k)
			}
			w, h := x1-x0+1, y1-y0+1
			if w > side || h > side {
				t.Fatalf("image %d: erased %dx%d, more than %d", k, w, h, side)
			}
			if w < side || h < side {
				clipped++
			}
			areas[w*h] = true
			painted := image.NewNRGBA(want.Rect)
			copy(painted.Pix, want.Pix)
			for y := y0; y <= y1; y++ {
				for x := x0; x <= x1; x++ {
					o := painted.PixOffset(x, y)
					painted.Pix[o], painted.Pix[o+1], painted.Pix[o+2] = fill[0], fill[1], fill[2]
				}
			}
			if !slices.Equal(got, tensorOf(painted, specs[0])) {
				t.Fatalf("image %d: not the augmented image with one square of the mean colour", k)
			}
		}
	}
	if clipped == 0 || clipped == 2*B || len(areas) < 3 {
		t.Errorf("squares clipped in %d of %d images, %d distinct areas: centres not spread over the image", clipped, 2*B, len(areas))
	}
}
