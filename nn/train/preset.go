package train

import (
	"fmt"
	"sort"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// cifarSetting is torchvision's inverted_residual_setting with the second
// row's stride set to 1, the usual adaptation for 32x32 inputs (together with
// stem stride 1): the last feature map is 4x4 instead of 1x1.
func cifarSetting() [][4]int {
	return [][4]int{
		{1, 16, 1, 1},
		{6, 24, 2, 1},
		{6, 32, 3, 2},
		{6, 64, 4, 2},
		{6, 96, 3, 1},
		{6, 160, 3, 2},
		{6, 320, 1, 1},
	}
}

// A preset variant: width, resolution and last_channel differ (as in the
// paper); a trimmed variant keeps one 160-channel block instead of three, so
// that a width above 0.35 stays under the parameter budget.
type presetVariant struct {
	width   float64
	res     int
	last    int
	trimmed bool
}

// Preset describes a ready-to-train family: its manifest (weights and hashes
// not yet filled in) and the recipe it is trained with.
type Preset struct {
	Manifest format.Manifest
	Recipe   format.TrainConfig
}

// presets: every variant has at least 5.8x fewer parameters and 4.3x fewer
// MACs than the base (the paper's lower bounds); TestPresetsRatios checks it.
var presets = map[string]struct {
	classes   []string
	res       int
	mean, std [3]float32
	variants  []presetVariant
	recipe    func() format.TrainConfig
}{
	"mnist": {
		classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		res:     28,
		mean:    [3]float32{0.1307, 0.1307, 0.1307},
		std:     [3]float32{0.3081, 0.3081, 0.3081},
		variants: []presetVariant{
			{0.35, 28, 512, false},
			{0.35, 20, 384, false},
			{0.5, 24, 256, true},
			{0.35, 16, 256, false},
			{0.35, 24, 640, false},
			{0.5, 20, 384, true},
		},
		recipe: func() format.TrainConfig {
			c := format.DefaultTrainConfig()
			c.Epochs = 4
			c.PadCrop = 2
			c.Flip = false // digits are not mirror-symmetric
			c.LR = 0.05
			return c
		},
	},
	"cifar10": {
		classes: []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
		res:     32,
		mean:    [3]float32{0.4914, 0.4822, 0.4465},
		std:     [3]float32{0.2470, 0.2435, 0.2616},
		variants: []presetVariant{
			{0.35, 32, 768, false},
			{0.5, 28, 384, true},
			{0.4, 30, 512, true},
			{0.45, 28, 512, true},
			{0.35, 28, 640, false},
			{0.5, 24, 384, true},
		},
		recipe: func() format.TrainConfig {
			c := format.DefaultTrainConfig()
			c.Epochs = 30
			c.Mixup = 0
			c.LabelSmoothing = 0.1
			return c
		},
	},
}

// PresetNames lists the presets `varpar family new` knows.
func PresetNames() []string {
	var out []string
	for k := range presets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NewPreset returns the family preset name with its first n variants (n <= 6)
// and its base model: MobileNetV2 width 1.0 at the dataset's resolution with
// the CIFAR-style stem stride 1.
func NewPreset(name string, n int) (*Preset, error) {
	p, ok := presets[name]
	if !ok {
		return nil, fmt.Errorf("train: no preset %q (have %v)", name, PresetNames())
	}
	if n < 1 || n > len(p.variants) {
		return nil, fmt.Errorf("train: preset %s has 1 to %d variants, not %d", name, len(p.variants), n)
	}
	spec := func(width float64, res, last int, trimmed bool) nn.Spec {
		set := cifarSetting()
		if trimmed {
			set[5][2] = 1
		}
		return nn.Spec{WidthMult: width, RoundNearest: 8, Setting: set, StemStride: 1, LastChannel: last,
			NumClasses: len(p.classes), Resolution: res, Mean: p.mean, Std: p.std}
	}
	m := format.Manifest{Format: format.FamilyFormat, Name: name, Classes: append([]string(nil), p.classes...)}
	for _, v := range p.variants[:n] {
		id := fmt.Sprintf("w%03d-r%d", int(v.width*100+0.5), v.res)
		m.Variants = append(m.Variants, format.VariantInfo{ID: id, Spec: spec(v.width, v.res, v.last, v.trimmed), Weights: id + ".safetensors"})
	}
	m.Base = &format.VariantInfo{ID: fmt.Sprintf("base-w100-r%d", p.res), Spec: spec(1, p.res, 1280, false), Weights: fmt.Sprintf("base-w100-r%d.safetensors", p.res)}
	return &Preset{Manifest: m, Recipe: p.recipe()}, nil
}
