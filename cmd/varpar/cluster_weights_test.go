//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/nn/format"
)

// TestClusterFetchesWeights: a peer whose family folder holds only the
// manifest gets its variants' weights from the others, hash-checked.
func TestClusterFetchesWeights(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	bare := t.TempDir()
	manifest, err := os.ReadFile(filepath.Join(fam, "family.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bare, "family.json"), string(manifest))
	man, err := format.DecodeManifest("family.json", manifest)
	if err != nil {
		t.Fatal(err)
	}
	shas := map[string]string{} // sha → variant
	for _, v := range man.Variants {
		shas[v.SHA256] = v.ID
	}
	ps := startPeers(t, c, local.Spec{Name: "full0"}, local.Spec{Name: "full1"}, local.Spec{Name: "bare", Family: bare})
	cv := waitReady(t, c, ps)
	mine := []string{}
	for v, holders := range cv.Assignment {
		if slices.Contains(holders, "bare") {
			mine = append(mine, v)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("the plan %v gives the bare peer nothing", cv.Assignment)
	}
	bareView, err := ps[2].API.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(ps[2].DataDir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(ps[2].DataDir, "models", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		got := hex.EncodeToString(sum[:])
		if e.Name() != got+".safetensors" || shas[got] == "" {
			t.Errorf("bare peer's store holds %s with sha256 %s: not a weights file of the family named by its hash", e.Name(), got)
		}
		stored[shas[got]] = true
	}
	for _, v := range mine {
		if !stored[v] {
			t.Errorf("the bare peer serves %s without its weights in its store (%v)", v, stored)
		}
		if !slices.Contains(bareView.Serving[v], "bare") {
			t.Errorf("the bare peer's view: %s served by %v, want bare among them", v, bareView.Serving[v])
		}
	}
	if !strings.Contains(ps[2].Tail(200), "fetched weights") {
		t.Errorf("the bare peer's log does not mention fetching weights")
	}
}
