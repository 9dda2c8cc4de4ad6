package nn

import "testing"

// torchvision lists mobilenet_v2() at 3,504,872 parameters and 0.30 G
// multiply-adds at 224x224.
func TestDefaultSpecSize(t *testing.T) {
	s := DefaultSpec()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.Params(); got != 3504872 {
		t.Errorf("params: got %d, want 3504872", got)
	}
	if got := s.MACs(); got < 300e6 || got > 302e6 {
		t.Errorf("MACs: got %d, want about 300.8M", got)
	}
	ls := s.Layers()
	if n := len(ls); n != 1+17*3-1+1+1 {
		t.Errorf("layers: got %d, want 52", n)
	}
	last := ls[len(ls)-2]
	if last.Name != "features.18.0" || last.Out != 1280 || last.OutH != 7 {
		t.Errorf("last conv: got %s out %d at %dx%d, want features.18.0 out 1280 at 7x7", last.Name, last.Out, last.OutH, last.OutW)
	}
}

func TestMakeDivisible(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		d    int
		want int
	}{{32 * 0.35, 8, 16}, {16 * 0.35, 8, 8}, {24 * 0.35, 8, 8}, {320 * 0.35, 8, 112}, {96 * 0.5, 8, 48}, {1280 * 1.4, 8, 1792}, {160 * 0.75, 8, 120}, {3, 8, 8}} {
		if got := makeDivisible(tt.v, tt.d); got != tt.want {
			t.Errorf("makeDivisible(%v, %d) = %d, want %d", tt.v, tt.d, got, tt.want)
		}
	}
}
