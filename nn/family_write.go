package nn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
	if err := writeFileAtomic(filepath.Join(dir, v.Weights), buf.Bytes()); err != nil {
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
	return writeFileAtomic(path, append(data, '\n'))
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o644) // weights and manifests are shared, not secret
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
