package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/varpar/varpar/internal/atomicfile"
	"github.com/varpar/varpar/nn"
	"gorgonia.org/tensor"
)

// SaveWeights writes a variant's tensors to dir/v.Weights, atomically (a
// reader sees the old file or the new one, never half of one), and records the
// file's SHA-256 in v.
func SaveWeights(dir string, v *VariantInfo, names []string, tensors map[string]*tensor.Dense) error {
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, names, tensors, map[string]string{"format": "pt", "variant": v.ID}); err != nil {
		return fmt.Errorf("%s: %w", v.Weights, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, v.Weights), buf.Bytes(), 0o644); err != nil { // shared, not secret
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	v.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

// SaveManifest validates m and writes it as dir/family.json, atomically.
func SaveManifest(dir string, m *Manifest) error {
	path := filepath.Join(dir, "family.json")
	if err := m.Validate(path); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644) // shared, not secret
}

// Family is a loaded family: its manifest and one Model per variant, in manifest order.
type Family struct {
	Dir      string
	Manifest *Manifest
	Models   []*nn.Model
	Weights  []float64 // fusion weights, as FusionWeights
	Base     *nn.Model // nil when the manifest has no base
}

// ReadManifest reads and validates dir/family.json, refusing a file larger
// than a manifest may be before reading all of it.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, "family.json")
	data, err := readFileCapped(path, maxManifestBytes)
	if err != nil {
		return nil, err
	}
	return DecodeManifest(path, data)
}

// LoadFamily reads dir/family.json and every variant's weights, checking each
// file's SHA-256 against the manifest before decoding a byte of it.
func LoadFamily(dir string) (*Family, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	f := &Family{Dir: dir, Manifest: m, Weights: m.FusionWeights()}
	for _, v := range m.Variants {
		mod, err := LoadVariant(dir, v)
		if err != nil {
			return nil, err
		}
		f.Models = append(f.Models, mod)
	}
	if m.Base != nil {
		if f.Base, err = LoadVariant(dir, *m.Base); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// LoadVariant reads, verifies and builds one variant of the family in dir.
func LoadVariant(dir string, v VariantInfo) (*nn.Model, error) {
	path := filepath.Join(dir, v.Weights)
	data, err := readFileCapped(path, MaxSafetensorsBytes)
	if err != nil {
		return nil, err
	}
	return DecodeVariant(path, data, v)
}

// readFileCapped reads a whole file, refusing one larger than limit.
func readFileCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &nn.FormatError{File: path, Msg: fmt.Sprintf("larger than the %d-byte limit", limit)}
	}
	return data, nil
}

// ReadSafetensors reads and decodes the safetensors file at path, refusing a
// file larger than MaxSafetensorsBytes before reading it whole.
func ReadSafetensors(path string) (*Safetensors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError already names the path
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxSafetensorsBytes {
		return nil, &nn.SizeError{File: path, What: "safetensors file", Size: fi.Size(), Limit: MaxSafetensorsBytes}
	}
	// The limit is enforced while reading too: Stat can be stale or, for a
	// pipe or device, meaningless.
	data, err := io.ReadAll(io.LimitReader(f, MaxSafetensorsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxSafetensorsBytes {
		return nil, &nn.SizeError{File: path, What: "safetensors file", Size: int64(len(data)), Limit: MaxSafetensorsBytes}
	}
	return DecodeSafetensors(path, data)
}
