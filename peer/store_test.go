package peer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/varpar/varpar/nn"
)

func putBytes(tb testing.TB, s *Store, data []byte) string {
	tb.Helper()
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	if err := s.Put(sha, "test", func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		tb.Fatal(err)
	}
	return sha
}

// TestStoreReadChecks: Read hands out the bytes Put checked; a file changed
// on disk afterwards, or found damaged by a later process, is refused with
// ErrDamaged and removed so that it is fetched again.
func TestStoreReadChecks(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("weights of a variant")
	sha := putBytes(t, s, data)
	if got, err := s.Read(sha, 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Read after Put: %q, %v", got, err)
	}
	if _, err := s.Read(sha, 3); err == nil || errors.Is(err, ErrDamaged) {
		t.Errorf("Read over the limit: got %v, want a size error", err)
	}

	// Truncated under a running process: the size check catches it.
	if err := os.WriteFile(s.Path(sha), data[:5], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(sha, 1<<20); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Read of a truncated file: got %v, want ErrDamaged", err)
	}
	if s.Has(sha) {
		t.Fatal("a damaged file stays in the store")
	}

	// Stored by an earlier run, then damaged with its size kept: the first
	// Read of a new process hashes it.
	sha = putBytes(t, s, data)
	flipped := bytes.Clone(data)
	flipped[0] ^= 1
	if err := os.WriteFile(s.Path(sha), flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	later, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var hm *HashMismatchError
	if _, err := later.Read(sha, 1<<20); !errors.Is(err, ErrDamaged) || !errors.As(err, &hm) {
		t.Fatalf("first Read of a damaged file from an earlier run: got %v, want ErrDamaged with a HashMismatchError", err)
	}
	if later.Has(sha) {
		t.Fatal("a damaged file stays in the store")
	}

	// Intact from an earlier run: read, and remembered as checked.
	sha = putBytes(t, s, data)
	later, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got, err := later.Read(sha, 1<<20); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Read %d of an intact file from an earlier run: %q, %v", i, got, err)
		}
	}
	if _, err := later.Read(sha[:10], 1<<20); !errors.Is(err, ErrNotStored) {
		t.Errorf("Read of a malformed hash: got %v, want ErrNotStored", err)
	}
}

// TestLoadReplacesDamagedWeights: a variant whose stored weights were
// damaged on disk (found by the first Read of this process) is not served
// from them; the file is removed, and the next load takes the family's copy
// again and serves it.
func TestLoadReplacesDamagedWeights(t *testing.T) {
	p := unitPeer(t, &fakeTransport{})
	p.gossip = &fakeMembership{}
	p.pool = nn.NewPool(1)
	defer p.pool.Close()
	var err error
	if p.store, err = OpenStore(p.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	v := p.manifest.Variants[0]
	if err := p.store.PutFile(filepath.Join(p.famDir, v.Weights), v.SHA256); err != nil {
		t.Fatal(err)
	}
	// Damaged while the peer was down: same size, one byte flipped.
	data, err := os.ReadFile(p.store.Path(v.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(p.store.Path(v.SHA256), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if p.store, err = OpenStore(p.cfg.DataDir); err != nil { // a new process
		t.Fatal(err)
	}

	p.wg.Add(1)
	p.load(v.ID)
	if s := p.serverOf(v.ID); s != nil {
		s.stop()
		t.Fatal("served a variant from damaged weights")
	}
	if p.store.Has(v.SHA256) {
		t.Fatal("damaged weights left in the store")
	}
	p.wg.Add(1)
	p.load(v.ID)
	s := p.serverOf(v.ID)
	if s == nil {
		t.Fatal("variant not served after its damaged weights were removed")
	}
	s.stop()
}
