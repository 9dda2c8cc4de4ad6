package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
)

func TestVersionWrite(t *testing.T) {
	v := versionInfo{Version: "1.2.3", GoVersion: "go1.26.0", OS: "linux", Arch: "arm", GOARM: "7", ISA: "generic"}
	var b bytes.Buffer
	if err := v.write(&b, false); err != nil {
		t.Fatal(err)
	}
	want := "varpar 1.2.3\ngo: go1.26.0\nplatform: linux/arm (GOARM=7)\nisa: generic\n"
	if got := b.String(); got != want {
		t.Errorf("text:\ngot  %q\nwant %q", got, want)
	}
	b.Reset()
	if err := v.write(&b, true); err != nil {
		t.Fatal(err)
	}
	var back versionInfo
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back != v {
		t.Errorf("json %s: got %+v (%v), want %+v", b.String(), back, err, v)
	}
}

// TestVersionCommand runs the test binary (built without a stamp: "dev") and
// one stamped as make release stamps it.
func TestVersionCommand(t *testing.T) {
	out, errOut, code := run(t, "version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || lines[0] != "varpar dev" {
		t.Fatalf("varpar version: exit %d, stdout %q, stderr %q; want 4 lines, the first \"varpar dev\"", code, out, errOut)
	}
	if want := "platform: " + runtime.GOOS + "/" + runtime.GOARCH; !strings.HasPrefix(lines[2], want) {
		t.Errorf("line 3 %q, want %q", lines[2], want)
	}
	if want := "isa: " + nn.ISA(); lines[3] != want {
		t.Errorf("line 4 %q, want %q", lines[3], want)
	}
	out, _, code = run(t, "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version != "dev" || v.GoVersion != runtime.Version() || v.ISA == "" {
		t.Errorf("varpar version --json: exit %d, %q (%v)", code, out, err)
	}
	if _, _, code := run(t, "version", "extra"); code != 2 {
		t.Errorf("varpar version extra: exit %d, want 2 (usage)", code)
	}

	if testing.Short() {
		t.Skip("builds a stamped binary (skipped with -short)")
	}
	stamped := filepath.Join(t.TempDir(), "varpar")
	const ver = "v9.8.7-test+abc"
	if b, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+ver, "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := exec.Command(stamped, "version").Output()
	if first, _, _ := strings.Cut(string(b), "\n"); err != nil || first != "varpar "+ver {
		t.Errorf("stamped binary: first line %q (%v), want %q", first, err, "varpar "+ver)
	}
}
