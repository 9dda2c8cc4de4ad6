package peer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/varpar/varpar/internal/atomicfile"
)

// ErrNotStored is returned when the store has no file with the asked hash.
var ErrNotStored = errors.New("peer: model not in store")

var shaPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Store keeps model weights on disk, content-addressed: a file's name is its
// SHA-256, and nothing enters the store before its hash is checked.
type Store struct {
	dir string
}

// OpenStore opens (creating if needed) the store under dataDir/models.
func OpenStore(dataDir string) (*Store, error) {
	dir := filepath.Join(dataDir, "models")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Store{dir: dir}, nil
}

// Path is where the file with hash sha lives (whether or not it is there).
func (s *Store) Path(sha string) string { return filepath.Join(s.dir, sha+".safetensors") }

// Has reports whether the store holds sha.
func (s *Store) Has(sha string) bool {
	if !shaPattern.MatchString(sha) {
		return false
	}
	_, err := os.Stat(s.Path(sha))
	return err == nil
}

// Open returns the stored file and its size.
func (s *Store) Open(sha string) (io.ReadCloser, int64, error) {
	if !shaPattern.MatchString(sha) {
		return nil, 0, fmt.Errorf("%w: %q is not a sha256", ErrNotStored, sha)
	}
	f, err := os.Open(s.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotStored, sha)
	} else if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// HashMismatchError reports bytes whose SHA-256 is not the one asked for.
type HashMismatchError struct {
	Source    string
	Got, Want string
}

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("%s: sha256 is %s, want %s", e.Source, e.Got, e.Want)
}

// Put stores the bytes that fill writes, if their SHA-256 is sha; otherwise
// nothing is stored and the error is a *HashMismatchError (or fill's error).
// source names where the bytes came from, for the error.
func (s *Store) Put(sha, source string, fill func(w io.Writer) error) error {
	if !shaPattern.MatchString(sha) {
		return fmt.Errorf("peer: store: %q is not a sha256", sha)
	}
	if s.Has(sha) {
		return nil
	}
	// Mode 0600 as before: weights are the cluster's, not every local user's.
	return atomicfile.WriteFunc(s.Path(sha), 0o600, func(w io.Writer) error {
		h := sha256.New()
		if err := fill(io.MultiWriter(w, h)); err != nil {
			return err
		}
		// Refusing here, after the bytes are written, makes WriteFunc
		// remove them: nothing unchecked is ever under a store name.
		if got := hex.EncodeToString(h.Sum(nil)); got != sha {
			return &HashMismatchError{Source: source, Got: got, Want: sha}
		}
		return nil
	})
}

// PutFile copies a local file into the store, checking its hash.
func (s *Store) PutFile(path, sha string) error {
	return s.Put(sha, path, func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}
