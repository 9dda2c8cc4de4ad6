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
	"sync"

	"github.com/varpar/varpar/internal/atomicfile"
)

// ErrNotStored is returned when the store has no file with the asked hash.
var ErrNotStored = errors.New("peer: model not in store")

// ErrDamaged is wrapped by Read for a stored file whose bytes changed on
// disk since they were checked. Read removes such a file, so that the peer
// fetches it again.
var ErrDamaged = errors.New("peer: stored model damaged")

var shaPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Store keeps model weights on disk, content-addressed: a file's name is its
// SHA-256, and nothing enters the store before its hash is checked.
//
// Read hands out the bytes so checked, so that nothing downstream (nn) hashes
// them again. A file this process stored (Put) was hashed on the way in; a
// file already on disk at start is hashed at its first Read, since a disk or
// SD card can damage a file while the peer is down, or a person can edit it.
// After that a Read only checks the size against the one hashed (a
// truncated or replaced file shows there): hashing every model again at
// every load (a variant handed back, a retry) costs a Pi 4, which has no
// SHA instructions, on the order of 10 ms a megabyte, to catch damage that
// is very unlikely while the peer runs.
type Store struct {
	dir string

	mu       sync.Mutex
	verified map[string]int64 // sha → size, for files hashed by this process
}

// OpenStore opens (creating if needed) the store under dataDir/models.
func OpenStore(dataDir string) (*Store, error) {
	dir := filepath.Join(dataDir, "models")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Store{dir: dir, verified: map[string]int64{}}, nil
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
	var size int64
	// Mode 0600 as before: weights are the cluster's, not every local user's.
	err := atomicfile.WriteFunc(s.Path(sha), 0o600, func(w io.Writer) error {
		h := sha256.New()
		cw := &countingWriter{w: io.MultiWriter(w, h)}
		if err := fill(cw); err != nil {
			return err
		}
		// Refusing here, after the bytes are written, makes WriteFunc
		// remove them: nothing unchecked is ever under a store name.
		if got := hex.EncodeToString(h.Sum(nil)); got != sha {
			return &HashMismatchError{Source: source, Got: got, Want: sha}
		}
		size = cw.n
		return nil
	})
	if err == nil {
		s.mu.Lock()
		s.verified[sha] = size
		s.mu.Unlock()
	}
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Read returns the bytes of the stored file with hash sha, refusing a file
// larger than limit. The bytes are checked (see Store): a file whose hash or
// size is not what was checked is removed, and the error wraps ErrDamaged.
func (s *Store) Read(sha string, limit int64) ([]byte, error) {
	f, size, err := s.Open(sha)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	path := s.Path(sha)
	if size > limit {
		return nil, fmt.Errorf("peer: store: %s: %d bytes, the limit is %d", path, size, limit)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("peer: store: %s: %w", path, err)
	}
	s.mu.Lock()
	want, checked := s.verified[sha]
	s.mu.Unlock()
	var bad error
	if checked {
		if size != want {
			bad = fmt.Errorf("%w: %s is %d bytes, %d when checked", ErrDamaged, path, size, want)
		}
	} else {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != sha {
			bad = fmt.Errorf("%w: %w", ErrDamaged, &HashMismatchError{Source: path, Got: got, Want: sha})
		}
	}
	if bad != nil {
		s.mu.Lock()
		delete(s.verified, sha)
		s.mu.Unlock()
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%w (and removing it: %v)", bad, err)
		}
		return nil, fmt.Errorf("%w; removed", bad)
	}
	if !checked {
		s.mu.Lock()
		s.verified[sha] = size
		s.mu.Unlock()
	}
	return data, nil
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
