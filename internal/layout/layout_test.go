package layout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/varpar/varpar"

// pkg is what the rules need of `go list -json`.
type pkg struct {
	ImportPath string
	Dir        string
	Doc        string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	Deps       []string
}

// listModule returns every package of the module, with its transitive
// dependencies, for GOOS/GOARCH as set in the environment.
func listModule(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	cmd.Dir = moduleRoot(t)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(&out)
	for {
		p := new(pkg)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages of %s; the module cannot be that small", len(pkgs), module)
	}
	return pkgs
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return dir
}

// within reports whether import path p is the package rel of the module or
// one below it ("nn" matches nn and nn/format, not nnx).
func within(p, rel string) bool {
	full := module + "/" + rel
	return p == full || strings.HasPrefix(p, full+"/")
}

// imports lists the module packages among p's transitive dependencies that
// lie within any of rels.
func imports(p *pkg, rels ...string) []string {
	var bad []string
	for _, d := range p.Deps {
		for _, r := range rels {
			if within(d, r) {
				bad = append(bad, d)
			}
		}
	}
	return bad
}

// The direction of imports: cmd -> {peer, deploy, nn/train} -> {gossip,
// p2pnet, consensus, nn}. Dependencies are transitive, so a rule cannot be
// dodged through a third package.
func TestImportRules(t *testing.T) {
	pkgs := listModule(t)
	var sawKernels, sawConsensus, sawNN, sawGossip, sawP2P bool
	for path, p := range pkgs {
		switch {
		case within(path, "nn/internal/kernels"):
			sawKernels = true
			for _, d := range p.Deps {
				if strings.HasPrefix(d, module+"/") {
					t.Errorf("%s imports %s: the kernels import nothing of the project", path, d)
				}
			}
		case within(path, "consensus"):
			sawConsensus = true
			for _, d := range p.Deps {
				if !isStd(d) {
					t.Errorf("%s imports %s: consensus imports only the standard library", path, d)
				}
			}
		}
		if within(path, "nn") {
			sawNN = true
			for _, d := range imports(p, "peer", "gossip", "p2pnet", "deploy", "cmd") {
				t.Errorf("%s imports %s: nn knows nothing of the network, the peer or the binary", path, d)
			}
		}
		if within(path, "gossip") || within(path, "p2pnet") {
			if within(path, "gossip") {
				sawGossip = true
			} else {
				sawP2P = true
			}
			for _, d := range imports(p, "nn", "peer") {
				t.Errorf("%s imports %s: gossip and p2pnet carry bytes and metadata, not models or peers", path, d)
			}
		}
		if !within(path, "cmd") {
			for _, d := range imports(p, "cmd") {
				t.Errorf("%s imports %s: nothing imports the binary", path, d)
			}
		}
	}
	for name, saw := range map[string]bool{"nn/internal/kernels": sawKernels, "consensus": sawConsensus,
		"nn": sawNN, "gossip": sawGossip, "p2pnet": sawP2P} {
		if !saw {
			t.Errorf("no package %s in the module: the rules above check nothing for it", name)
		}
	}
}

// isStd reports whether an import path is the standard library's: its first
// element has no dot (a module path's host always has one).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// maxPackageLines bounds a package's hand-written Go code (tests, generated
// files and assembly excluded): past it a package holds more than one concern.
const maxPackageLines = 4000

func TestPackageSizeAndDoc(t *testing.T) {
	for path, p := range listModule(t) {
		if len(p.GoFiles)+len(p.CgoFiles) == 0 {
			continue // a test-only folder
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc (a doc.go saying what it is for)", path)
		}
		lines := 0
		for _, f := range append(p.GoFiles, p.CgoFiles...) {
			n, generated := countLines(t, filepath.Join(p.Dir, f))
			if !generated {
				lines += n
			}
		}
		if lines > maxPackageLines {
			t.Errorf("%s has %d lines of hand-written Go, over %d: split it by concern", path, lines, maxPackageLines)
		}
	}
}

// maxCmdFileLines bounds a file of the binary: cmd parses flags, calls
// packages and prints; logic that grows past this belongs in a package.
const maxCmdFileLines = 300

func TestCmdFilesSmall(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), "cmd", "varpar")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		checked++
		if n, _ := countLines(t, filepath.Join(dir, e.Name())); n > maxCmdFileLines {
			t.Errorf("cmd/varpar/%s has %d lines, over %d: move its logic into a package", e.Name(), n, maxCmdFileLines)
		}
	}
	if checked == 0 {
		t.Fatal("no Go files in cmd/varpar")
	}
}

// countLines counts a file's lines and reports whether it says it is
// generated (the convention `go generate` tools follow).
func countLines(t *testing.T, path string) (n int, generated bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "// Code generated ") && strings.HasSuffix(line, " DO NOT EDIT.") {
			generated = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n, generated
}

// The rules' helpers on made-up packages: a rule that can never fire would
// pass on any layout.
func TestRuleHelpers(t *testing.T) {
	p := &pkg{Deps: []string{"fmt", module + "/nn/format", module + "/nnx", "github.com/rs/zerolog"}}
	if got := imports(p, "nn"); len(got) != 1 || got[0] != module+"/nn/format" {
		t.Errorf("imports(nn) = %v, want [%s/nn/format]", got, module)
	}
	if got := imports(p, "peer"); len(got) != 0 {
		t.Errorf("imports(peer) = %v, want none", got)
	}
	for path, want := range map[string]bool{"fmt": true, "crypto/sha256": true,
		"github.com/rs/zerolog": false, "gorgonia.org/tensor": false, module + "/nn": false} {
		if got := isStd(path); got != want {
			t.Errorf("isStd(%q) = %v, want %v", path, got, want)
		}
	}
}
