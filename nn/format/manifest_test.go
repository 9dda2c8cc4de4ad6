package format

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
)

func testManifest() Manifest {
	s := nn.DefaultSpec()
	s.NumClasses = 3
	s.Resolution = 32
	v := VariantInfo{ID: "a", Spec: s, Weights: "a.safetensors", SHA256: strings.Repeat("0", 64)}
	s2 := s
	s2.WidthMult, s2.Resolution = 0.5, 16
	w := VariantInfo{ID: "b", Spec: s2, Weights: "b.safetensors", SHA256: strings.Repeat("1", 64)}
	return Manifest{Format: FamilyFormat, Name: "t", Classes: []string{"x", "y", "z"}, Variants: []VariantInfo{v, w}}
}

func TestManifestErrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(m *Manifest)
		want   string // substring of the error
		isSpec bool
	}{
		{"ok", func(m *Manifest) {}, "", false},
		{"format", func(m *Manifest) { m.Format = "v0" }, "format", true},
		{"no classes", func(m *Manifest) { m.Classes = nil }, "classes: is empty", true},
		{"dup class", func(m *Manifest) { m.Classes[1] = "x" }, `class "x" appears twice`, true},
		{"no variants", func(m *Manifest) { m.Variants = nil }, "variants: is empty", true},
		{"dup id", func(m *Manifest) { m.Variants[1].ID = "a" }, `variant "a": id: appears twice`, true},
		{"bad id", func(m *Manifest) { m.Variants[0].ID = "../x" }, "id: want", true},
		{"path escape", func(m *Manifest) { m.Variants[0].Weights = "../a.safetensors" }, "plain file name", true},
		{"abs path", func(m *Manifest) { m.Variants[0].Weights = "/etc/passwd" }, "plain file name", true},
		{"sha", func(m *Manifest) { m.Variants[0].SHA256 = "ABC" }, "sha256", true},
		{"classes mismatch", func(m *Manifest) { m.Variants[1].Spec.NumClasses = 4 }, "spec.num_classes: 4, but the family has 3", true},
		{"bad width", func(m *Manifest) { m.Variants[1].Spec.WidthMult = 0 }, `variant "b": spec: width_mult`, true},
		{"bad stride", func(m *Manifest) { m.Variants[0].Spec.StemStride = 3 }, "stem_stride: 3", true},
		{"bad setting", func(m *Manifest) { m.Variants[0].Spec.Setting[0][3] = 4 }, "inverted_residual_setting: row 0", true},
		{"bad std", func(m *Manifest) { m.Variants[0].Spec.Std[1] = 0 }, "std: channel 1", true},
		{"negative fusion weight", func(m *Manifest) { m.Variants[0].FusionWeight = -1 }, "fusion_weight", true},
		{"base dup id", func(m *Manifest) { b := m.Variants[0]; m.Base = &b }, `base "a": id: appears twice`, true},
	}
	for _, tt := range tests {
		m := testManifest()
		m.Variants[0].Spec.Setting = nn.ImageNetSetting() // fresh slice per case
		tt.edit(&m)
		data, _ := json.Marshal(m)
		_, err := DecodeManifest("family.json", data)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: got error %v, want none", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
			continue
		}
		var se *nn.SpecError
		if tt.isSpec && !errors.As(err, &se) {
			t.Errorf("%s: got %T, want *SpecError", tt.name, err)
		}
	}
}

func TestManifestSyntax(t *testing.T) {
	for _, in := range []string{``, `{`, `[]`, `{"format":"varpar-family/1","nme":"x"}`, `{} {}`, `{"variants":"x"}`} {
		_, err := DecodeManifest("f.json", []byte(in))
		var fe *nn.FormatError
		if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "f.json: ") {
			t.Errorf("DecodeManifest(%q): got %v, want a FormatError naming f.json", in, err)
		}
	}
}

func TestFusionWeightsDefault(t *testing.T) {
	m := testManifest() // a: width 1.0 @32, b: width 0.5 @16
	w := m.FusionWeights()
	// a: (32/32) * (1/0.5)^2 = 4; b: (16/32) * 1 = 0.5.
	if w[0] != 4 || w[1] != 0.5 {
		t.Fatalf("got %v, want [4 0.5]", w)
	}
	m.Variants[1].FusionWeight = 2
	if w := m.FusionWeights(); w[1] != 2 {
		t.Fatalf("explicit weight: got %v, want 2", w[1])
	}
}

func FuzzDecodeManifest(f *testing.F) {
	m := testManifest()
	data, _ := json.Marshal(m)
	f.Add(data)
	f.Add([]byte(`{"format":"varpar-family/1"}`))
	f.Add([]byte(`{"variants":[{"spec":{"inverted_residual_setting":[[1,1,1,1]]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest("fuzz.json", data)
		if err != nil {
			return
		}
		// A manifest that passes validation must describe buildable networks.
		for _, v := range m.Variants {
			if len(v.Spec.Layers()) < 3 || v.Spec.MACs() <= 0 {
				t.Fatalf("accepted variant %q with no layers", v.ID)
			}
		}
		if w := m.FusionWeights(); len(w) != len(m.Variants) {
			t.Fatalf("fusion weights: %d for %d variants", len(w), len(m.Variants))
		}
	})
}
