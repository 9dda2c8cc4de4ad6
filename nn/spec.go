package nn

import (
	"fmt"
	"math"
	"strings"
)

// Spec is torchvision's mobilenet_v2 parameterisation plus what serving needs
// (input resolution and normalisation). A Spec plus a weights file is a model.
type Spec struct {
	WidthMult    float64    `json:"width_mult"`
	RoundNearest int        `json:"round_nearest"`
	Setting      [][4]int   `json:"inverted_residual_setting"` // rows of (t, c, n, s)
	StemStride   int        `json:"stem_stride"`               // 2 as ImageNet, 1 as CIFAR models
	LastChannel  int        `json:"last_channel"`              // before width scaling, as torchvision's 1280
	NumClasses   int        `json:"num_classes"`
	Resolution   int        `json:"resolution"` // input is Resolution x Resolution x 3
	Mean         [3]float32 `json:"mean"`
	Std          [3]float32 `json:"std"`
}

// ImageNetSetting is torchvision's default inverted_residual_setting.
func ImageNetSetting() [][4]int {
	return [][4]int{
		{1, 16, 1, 1},
		{6, 24, 2, 2},
		{6, 32, 3, 2},
		{6, 64, 4, 2},
		{6, 96, 3, 1},
		{6, 160, 3, 2},
		{6, 320, 1, 1},
	}
}

// DefaultSpec returns MobileNetV2-1.0 at 224x224 for 1000 ImageNet classes,
// exactly torchvision's mobilenet_v2().
func DefaultSpec() Spec {
	return Spec{
		WidthMult:    1.0,
		RoundNearest: 8,
		Setting:      ImageNetSetting(),
		StemStride:   2,
		LastChannel:  1280,
		NumClasses:   1000,
		Resolution:   224,
		Mean:         [3]float32{0.485, 0.456, 0.406},
		Std:          [3]float32{0.229, 0.224, 0.225},
	}
}

// Limits on specs read from files, so that a hostile manifest cannot ask for
// absurd allocations.
const (
	maxResolution = 4096
	maxClasses    = 1 << 20
	maxChannels   = 1 << 14
	maxBlocks     = 256
)

// Validate checks that the spec describes a buildable network.
func (s *Spec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if !(s.WidthMult > 0 && s.WidthMult <= 16) || math.IsNaN(s.WidthMult) {
		return bad("width_mult", "%v is not in (0, 16]", s.WidthMult)
	}
	if s.RoundNearest < 1 || s.RoundNearest > 1024 {
		return bad("round_nearest", "%d is not in [1, 1024]", s.RoundNearest)
	}
	if len(s.Setting) == 0 {
		return bad("inverted_residual_setting", "is empty")
	}
	blocks := 0
	for i, r := range s.Setting {
		t, c, n, st := r[0], r[1], r[2], r[3]
		if t < 1 || t > 64 || c < 1 || c > maxChannels || n < 1 || n > maxBlocks || (st != 1 && st != 2) {
			return bad("inverted_residual_setting", "row %d (t=%d c=%d n=%d s=%d): want t in [1,64], c in [1,%d], n in [1,%d], s 1 or 2",
				i, t, c, n, st, maxChannels, maxBlocks)
		}
		blocks += n
	}
	if blocks > maxBlocks {
		return bad("inverted_residual_setting", "%d blocks, at most %d", blocks, maxBlocks)
	}
	if s.StemStride != 1 && s.StemStride != 2 {
		return bad("stem_stride", "%d, want 1 or 2", s.StemStride)
	}
	if s.LastChannel < 1 || s.LastChannel > maxChannels {
		return bad("last_channel", "%d is not in [1, %d]", s.LastChannel, maxChannels)
	}
	if s.NumClasses < 1 || s.NumClasses > maxClasses {
		return bad("num_classes", "%d is not in [1, %d]", s.NumClasses, maxClasses)
	}
	if s.Resolution < 1 || s.Resolution > maxResolution {
		return bad("resolution", "%d is not in [1, %d]", s.Resolution, maxResolution)
	}
	for i, v := range s.Std {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return bad("std", "channel %d is %v, want a positive number", i, v)
		}
	}
	for i, v := range s.Mean {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return bad("mean", "channel %d is %v", i, v)
		}
	}
	for _, l := range s.Layers() {
		if l.Out > maxChannels*64 {
			return bad("width_mult", "layer %s has %d channels, too many", l.Name, l.Out)
		}
	}
	return nil
}

// makeDivisible is torchvision's _make_divisible: round v to the nearest
// multiple of divisor, never going below 90% of v.
func makeDivisible(v float64, divisor int) int {
	d := float64(divisor)
	n := int(v+d/2) / divisor * divisor
	if n < divisor {
		n = divisor
	}
	if float64(n) < 0.9*v {
		n += divisor
	}
	return n
}

// LayerKind names the operations of a MobileNetV2.
type LayerKind int

const (
	LayerStem       LayerKind = iota // dense 3x3 conv, 3 input channels, + BN + ReLU6
	LayerExpand                      // 1x1 conv + BN + ReLU6
	LayerDepthwise                   // depthwise 3x3 conv + BN + ReLU6
	LayerProject                     // 1x1 conv + BN, no activation, maybe residual add
	LayerLast                        // final 1x1 conv + BN + ReLU6
	LayerClassifier                  // global average pool then linear
)

// Layer is one convolution (or the classifier) of the network, with the
// torchvision state_dict prefix of its weights.
type Layer struct {
	Kind       LayerKind
	Name       string // state_dict prefix of the conv weight, e.g. "features.2.conv.0.0"
	BN         string // state_dict prefix of its batch norm ("" for the classifier)
	In, Out    int    // channels
	Stride     int
	InH, InW   int // input spatial size
	OutH, OutW int
	Residual   bool // project layer adds the block input
	Block      int  // index into features
}

func convOut(n, stride int) int { return (n+2-3)/stride + 1 }

// Layers expands the spec into its list of layers, in execution order.
func (s *Spec) Layers() []Layer {
	var ls []Layer
	h := s.Resolution
	in := makeDivisible(32*s.WidthMult, s.RoundNearest)
	last := makeDivisible(float64(s.LastChannel)*math.Max(1, s.WidthMult), s.RoundNearest)
	oh := convOut(h, s.StemStride)
	ls = append(ls, Layer{Kind: LayerStem, Name: "features.0.0", BN: "features.0.1", In: 3, Out: in,
		Stride: s.StemStride, InH: h, InW: h, OutH: oh, OutW: oh})
	h = oh
	block := 1
	for _, r := range s.Setting {
		t, c, n, st := r[0], r[1], r[2], r[3]
		out := makeDivisible(float64(c)*s.WidthMult, s.RoundNearest)
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 {
				stride = st
			}
			hidden := int(math.Round(float64(in) * float64(t)))
			p := fmt.Sprintf("features.%d.conv.", block)
			idx := 0
			if t != 1 {
				ls = append(ls, Layer{Kind: LayerExpand, Name: p + "0.0", BN: p + "0.1", In: in, Out: hidden,
					Stride: 1, InH: h, InW: h, OutH: h, OutW: h, Block: block})
				idx = 1
			}
			oh := convOut(h, stride)
			ls = append(ls, Layer{Kind: LayerDepthwise, Name: fmt.Sprintf("%s%d.0", p, idx), BN: fmt.Sprintf("%s%d.1", p, idx),
				In: hidden, Out: hidden, Stride: stride, InH: h, InW: h, OutH: oh, OutW: oh, Block: block})
			ls = append(ls, Layer{Kind: LayerProject, Name: fmt.Sprintf("%s%d", p, idx+1), BN: fmt.Sprintf("%s%d", p, idx+2),
				In: hidden, Out: out, Stride: 1, InH: oh, InW: oh, OutH: oh, OutW: oh,
				Residual: stride == 1 && in == out, Block: block})
			h = oh
			in = out
			block++
		}
	}
	ls = append(ls, Layer{Kind: LayerLast, Name: fmt.Sprintf("features.%d.0", block), BN: fmt.Sprintf("features.%d.1", block),
		In: in, Out: last, Stride: 1, InH: h, InW: h, OutH: h, OutW: h, Block: block})
	ls = append(ls, Layer{Kind: LayerClassifier, Name: "classifier.1", In: last, Out: s.NumClasses, InH: h, InW: h, OutH: 1, OutW: 1})
	return ls
}

// TensorShape is one expected state_dict entry.
type TensorShape struct {
	Name     string
	Shape    []int
	Optional bool // num_batches_tracked may be absent
}

// Tensors lists every state_dict tensor the spec expects, in torchvision's order.
func (s *Spec) Tensors() []TensorShape {
	var ts []TensorShape
	bn := func(p string, c int) {
		ts = append(ts,
			TensorShape{Name: p + ".weight", Shape: []int{c}},
			TensorShape{Name: p + ".bias", Shape: []int{c}},
			TensorShape{Name: p + ".running_mean", Shape: []int{c}},
			TensorShape{Name: p + ".running_var", Shape: []int{c}},
			TensorShape{Name: p + ".num_batches_tracked", Shape: []int{}, Optional: true},
		)
	}
	for _, l := range s.Layers() {
		switch l.Kind {
		case LayerStem:
			ts = append(ts, TensorShape{Name: l.Name + ".weight", Shape: []int{l.Out, 3, 3, 3}})
		case LayerDepthwise:
			ts = append(ts, TensorShape{Name: l.Name + ".weight", Shape: []int{l.Out, 1, 3, 3}})
		case LayerClassifier:
			ts = append(ts,
				TensorShape{Name: l.Name + ".weight", Shape: []int{l.Out, l.In}},
				TensorShape{Name: l.Name + ".bias", Shape: []int{l.Out}})
			continue
		default:
			ts = append(ts, TensorShape{Name: l.Name + ".weight", Shape: []int{l.Out, l.In, 1, 1}})
		}
		bn(l.BN, l.Out)
	}
	return ts
}

// Params counts the learnable parameters (batch-norm running statistics excluded),
// as torchvision's sum(p.numel() for p in model.parameters()).
func (s *Spec) Params() int64 {
	var n int64
	for _, t := range s.Tensors() {
		if t.Optional || strings.HasSuffix(t.Name, ".running_mean") || strings.HasSuffix(t.Name, ".running_var") {
			continue
		}
		p := int64(1)
		for _, d := range t.Shape {
			p *= int64(d)
		}
		n += p
	}
	return n
}

// MACs counts multiply-accumulates of one forward pass at batch 1 (convolutions
// and the classifier; batch norm folds away).
func (s *Spec) MACs() int64 {
	var n int64
	for _, l := range s.Layers() {
		px := int64(l.OutH) * int64(l.OutW)
		switch l.Kind {
		case LayerStem:
			n += px * int64(l.Out) * 27
		case LayerDepthwise:
			n += px * int64(l.Out) * 9
		case LayerClassifier:
			n += int64(l.In) * int64(l.Out)
		default:
			n += px * int64(l.In) * int64(l.Out)
		}
	}
	return n
}
