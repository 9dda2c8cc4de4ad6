package train

import "testing"

// The paper's lower bounds: every variant has at least 5.8x fewer parameters
// and 4.3x fewer MACs than the base model.
func TestPresetsRatios(t *testing.T) {
	for _, name := range PresetNames() {
		p, err := NewPreset(name, 6)
		if err != nil {
			t.Fatal(err)
		}
		base := p.Manifest.Base.Spec
		ids := map[string]bool{}
		for _, v := range p.Manifest.Variants {
			if err := v.Spec.Validate(); err != nil {
				t.Fatalf("%s/%s: %v", name, v.ID, err)
			}
			if ids[v.ID] {
				t.Errorf("%s: id %s twice", name, v.ID)
			}
			ids[v.ID] = true
			pr := float64(base.Params()) / float64(v.Spec.Params())
			mr := float64(base.MACs()) / float64(v.Spec.MACs())
			if pr < 5.8 || mr < 4.3 {
				t.Errorf("%s/%s: %.2fx fewer params and %.2fx fewer MACs than the base, want >= 5.8x and >= 4.3x", name, v.ID, pr, mr)
			}
		}
	}
	if _, err := NewPreset("imagenet", 4); err == nil {
		t.Error("unknown preset accepted")
	}
	if _, err := NewPreset("mnist", 7); err == nil {
		t.Error("7 variants accepted from a preset of 6")
	}
}
