package pb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates varpar.pb.go the way `make proto` does,
// into a temporary folder, and fails when the committed file differs.
func TestGeneratedCodeIsFresh(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc is not installed (Debian: apt-get install protobuf-compiler); " +
			"cannot check that varpar.pb.go matches varpar.proto")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH; cannot build protoc-gen-gogofaster")
	}
	tmp := t.TempDir()
	plugin := filepath.Join(tmp, "protoc-gen-gogofaster")
	build := exec.Command(goTool, "build", "-o", plugin, "github.com/gogo/protobuf/protoc-gen-gogofaster")
	// The plugin runs here, under protoc, whatever the test was built for.
	build.Env = append(os.Environ(), "GOOS=", "GOARCH=", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building protoc-gen-gogofaster: %v\n%s", err, out)
	}
	outDir := filepath.Join(tmp, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	gen := exec.Command(protoc, "--plugin=protoc-gen-gogofaster="+plugin,
		"--gogofaster_out=paths=source_relative:"+outDir, "-I", ".", "varpar.proto")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(outDir, "varpar.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("varpar.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatalf("p2pnet/pb/varpar.pb.go is stale: run `make proto` and commit the result "+
			"(regenerated %d bytes, committed %d bytes)", len(got), len(committed))
	}
}
