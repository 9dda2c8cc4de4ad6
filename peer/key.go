package peer

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gorgonia.org/tensor"

	"github.com/varpar/varpar/models"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// ClusterKeySize is the length of a cluster key: AES-256 for the gossip, and
// the seed of the libp2p private-network key.
const ClusterKeySize = 32

// NewClusterKey writes a fresh random cluster key to path (base64, mode 0600).
// It refuses to overwrite an existing file: losing a key splits a cluster.
func NewClusterKey(path string) error {
	key := make([]byte, ClusterKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, base64.StdEncoding.EncodeToString(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadClusterKey reads a key written by NewClusterKey.
func ReadClusterKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != ClusterKeySize {
		return nil, fmt.Errorf("cluster key %s: want %d bytes in base64 (made by varpar keygen)", path, ClusterKeySize)
	}
	return key, nil
}

// randomWeights builds a weights set of the right shapes for spec (zeros, and
// ones for batch-norm variances): enough to time a forward pass.
func randomWeights(spec nn.Spec) *format.Safetensors {
	st := &format.Safetensors{Tensors: map[string]*tensor.Dense{}, DTypes: map[string]string{}}
	for _, t := range spec.Tensors() {
		if t.Optional {
			continue
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		data := make([]float32, n)
		if strings.HasSuffix(t.Name, "running_var") {
			for i := range data {
				data[i] = 1
			}
		}
		st.Names = append(st.Names, t.Name)
		st.Tensors[t.Name] = tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(data))
		st.DTypes[t.Name] = "F32"
	}
	return st
}

// extractDefaultFamily writes the family built into the binary under
// dataDir/family/<name> (refreshing files that differ) and returns that
// directory.
func extractDefaultFamily(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "family", models.Default)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	entries, err := fs.ReadDir(models.FS, models.Default)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(models.FS, models.Default+"/"+e.Name())
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, e.Name())
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}
