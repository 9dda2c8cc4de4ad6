package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

var varparBin string

// TestMain builds the real binary once: the tests run it as a user would,
// which also proves that it starts at all (gorgonia.org/tensor's old
// go4.org/unsafe/assume-no-moving-gc panics at start-up on new Go versions).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "varpar-cmd")
	if err != nil {
		panic(err)
	}
	varparBin = filepath.Join(dir, "varpar")
	if out, err := exec.Command("go", "build", "-o", varparBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const golden10 = "../../nn/testdata/golden/golden10"

// run executes the binary and returns stdout, stderr and the exit status.
func run(tb testing.TB, args ...string) (string, string, int) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(varparBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestBinaryStarts(t *testing.T) {
	out, errOut, code := run(t, "--version")
	if code != 0 || !strings.Contains(out, "varpar") {
		t.Fatalf("varpar --version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, sub := range []string{"family", "predict", "bench"} {
		out, _, code := run(t, sub, "--help")
		if code != 0 || !strings.Contains(out, "--family") {
			t.Errorf("varpar %s --help: exit %d, output %q", sub, code, out)
		}
	}
}

func TestFamilyCommand(t *testing.T) {
	out, errOut, code := run(t, "family", "--family", golden10, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Name   string
		Models []familyRow
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("family --json: %v in %q", err, out)
	}
	if got.Name != "golden10" || len(got.Models) != 4 {
		t.Fatalf("family --json: name %q with %d models, want golden10 with 4", got.Name, len(got.Models))
	}
	if m := got.Models[0]; m.ID != "w035-r32" || m.Params != 408938 || m.MACs < 1e6 {
		t.Errorf("first model: %+v, want w035-r32 with 408938 params", m)
	}
	out, _, code = run(t, "family", "--family", golden10)
	if code != 0 || !strings.Contains(out, "w075-r33") {
		t.Errorf("family table: exit %d, %q", code, out)
	}
}

func TestPredictMatchesGolden(t *testing.T) {
	for _, id := range []string{"w035-r32", "w050-r48-s1"} {
		ref, err := format.ReadSafetensors(filepath.Join(golden10, id+".golden.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		logits := ref.Tensors["png_logits"].Data().([]float32)
		idx, val := make([]int32, 3), make([]float32, 3)
		nn.TopK(logits, idx, val)
		png := filepath.Join(golden10, id+".png")
		out, errOut, code := run(t, "predict", "--family", golden10, "--variant", id, "--k", "3", "--json", png)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", id, code, errOut)
		}
		var p prediction
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("%s: %v in %q", id, err, out)
		}
		if p.Variant != id || p.Image != png || len(p.Top) != 3 {
			t.Fatalf("%s: got %+v", id, p)
		}
		for i := range idx {
			if p.Top[i].Index != int(idx[i]) || p.Top[i].Class != "c"+string(rune('0'+idx[i])) {
				t.Errorf("%s: top %d is %+v, torch says class %d", id, i, p.Top[i], idx[i])
			}
		}
	}
	// Fused over all variants: one object per image, probabilities in [0, 1], descending.
	pngs, _ := filepath.Glob(filepath.Join(golden10, "*.png"))
	out, errOut, code := run(t, append([]string{"predict", "--family", golden10, "--json"}, pngs...)...)
	if code != 0 {
		t.Fatalf("fused: exit %d: %s", code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for dec.More() {
		var p prediction
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		if p.Variant != "fused" || len(p.Top) != 3 {
			t.Fatalf("fused: got %+v", p)
		}
		for i, c := range p.Top {
			if c.Prob < 0 || c.Prob > 1 || (i > 0 && c.Prob > p.Top[i-1].Prob) {
				t.Errorf("fused: bad probabilities %+v", p.Top)
			}
		}
	}
	if n != len(pngs) {
		t.Errorf("fused: %d objects for %d images", n, len(pngs))
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.jpg")
	os.WriteFile(garbage, []byte("not an image at all"), 0o644)
	// A copy of the family with one weights file changed by one byte.
	tampered := filepath.Join(dir, "tampered")
	os.Mkdir(tampered, 0o755)
	for _, f := range []string{"family.json", "w035-r32.safetensors", "w050-r48-s1.safetensors", "w100-r40.safetensors", "w075-r33.safetensors"} {
		data, err := os.ReadFile(filepath.Join(golden10, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "w100-r40.safetensors" {
			data[len(data)-1] ^= 1
		}
		os.WriteFile(filepath.Join(tampered, f), data, 0o644)
	}
	png := filepath.Join(golden10, "w035-r32.png")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"predict", png}, 2, "--family DIR is required"},
		{[]string{"predict", "--family", golden10}, 2, "requires at least 1 arg"},
		{[]string{"predict", "--family", golden10, "--k", "11", png}, 2, "--k 11: want 1 to 10"},
		{[]string{"predict", "--family", golden10, "--variant", "nope", png}, 2, `--variant "nope"`},
		{[]string{"predict", "--family", golden10, "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"predict", "--family", golden10, garbage}, 1, garbage},
		{[]string{"predict", "--family", filepath.Join(dir, "none"), png}, 1, "no such file"},
		{[]string{"family", "--family", tampered}, 1, "w100-r40.safetensors: sha256 is"},
		{[]string{"bench", "--family", golden10, "--duration", "0s"}, 2, "--duration > 0"},
		{[]string{"train", "--family", golden10, "--data", garbage, "--loss-a", "0", "--loss-b", "0"}, 2, "not both zero"},
		{[]string{"train", "--family", golden10, "--data", garbage, "--loss-b", "-1"}, 2, "loss weights a=1 b=-1, want non-negative"},
		{[]string{"train", "--family", golden10, "--data", garbage, "--mixup", "-0.2"}, 2, "mixup alpha -0.2"},
		{[]string{"train", "--family", golden10, "--data", garbage, "--label-smoothing", "1"}, 2, "label smoothing 1, want [0, 1)"},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("varpar %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
		if tt.code == 2 && out != "" && !strings.Contains(tt.want, "unknown") {
			t.Errorf("varpar %v: wrote %q to stdout on a usage error", tt.args, out)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	out, errOut, code := run(t, "bench", "--family", golden10, "--threads", "1", "--duration", "40ms", "--min-runs", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if rep.Threads != 1 || len(rep.Variants) != 4 {
		t.Fatalf("got %+v, want 4 variants on 1 thread", rep)
	}
	for _, v := range rep.Variants {
		if v.Runs < 3 || !(v.MedianMS > 0) || v.P90MS < v.MedianMS {
			t.Errorf("variant %s: %+v", v.ID, v)
		}
	}
}

// TestCPUProfileOnFailure: --cpuprofile writes its profile also when the
// command fails (cobra skips post-run hooks then).
func TestCPUProfileOnFailure(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	_, errOut, code := run(t, "--cpuprofile", prof, "predict", "--family", filepath.Join(t.TempDir(), "none"), "x.png")
	if code != 1 {
		t.Fatalf("exit %d (%s), want 1", code, errOut)
	}
	fi, err := os.Stat(prof)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("profile of a failed command: %v, %v; want a non-empty file", fi, err)
	}
}
