package format_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn/format"
)

func TestLoadFamilyChecksum(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "testdata", "golden", "golden10")
	m, err := format.LoadFamily(src)
	if err != nil {
		t.Fatal(err)
	}
	man := *m.Manifest
	man.Variants = man.Variants[:1]
	man.Variants[0].SHA256 = strings.Repeat("ab", 32)
	writeFamily(t, dir, &man, src)
	_, err = format.LoadFamily(dir)
	var ce *format.ChecksumError
	if !errors.As(err, &ce) || ce.Want != man.Variants[0].SHA256 {
		t.Fatalf("got %v, want a format.ChecksumError", err)
	}
}

// writeFamily writes man as dir/family.json and copies its weights from src.
func writeFamily(tb testing.TB, dir string, man *format.Manifest, src string) {
	tb.Helper()
	data, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "family.json"), data, 0o644); err != nil {
		tb.Fatal(err)
	}
	for _, v := range man.Variants {
		b, err := os.ReadFile(filepath.Join(src, v.Weights))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v.Weights), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}
