package p2pnet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/varpar/varpar/internal/atomicfile"
)

// maxKeyFileSize bounds what LoadOrCreateKey reads; a marshalled Ed25519 key
// is 68 bytes.
const maxKeyFileSize = 4096

// LoadOrCreateKey returns the Ed25519 identity key stored at path. When no
// file exists it generates one and writes it there (mode 0600, atomically, so
// a crash never leaves half a key), and reports created. A file that exists
// but does not hold an Ed25519 key is an error wrapping ErrKeyFile: the
// peer's identity is never silently replaced.
func LoadOrCreateKey(path string) (key crypto.PrivKey, created bool, err error) {
	b, err := readKeyFile(path)
	switch {
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("%w %s: %v (delete it to make a new identity)", ErrKeyFile, path, err)
		}
		if k.Type() != crypto.Ed25519 {
			return nil, false, fmt.Errorf("%w %s: holds a %s key, want Ed25519", ErrKeyFile, path, k.Type())
		}
		return k, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}

	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("p2pnet: generating identity key: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, false, fmt.Errorf("p2pnet: encoding identity key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("p2pnet: writing identity key: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return nil, false, fmt.Errorf("p2pnet: writing identity key: %w", err)
	}
	return k, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("%w %s: not a regular file of at most %d bytes", ErrKeyFile, path, maxKeyFileSize)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKeyFile, path, err)
	}
	return b, nil
}
