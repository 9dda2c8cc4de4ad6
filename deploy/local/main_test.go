package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// varparBin is the binary TestMain builds: the peers are real processes of
// it, as in a deployment.
var varparBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "varpar-local")
	if err != nil {
		panic(err)
	}
	varparBin = filepath.Join(dir, "varpar")
	if out, err := exec.Command("go", "build", "-o", varparBin, "github.com/varpar/varpar/cmd/varpar").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
