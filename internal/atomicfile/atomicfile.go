// Package atomicfile writes files so that a reader, or the next start after a
// crash (kill -9, power loss), sees either the old file or the whole new one,
// never a part: the bytes go to a temporary file beside the target, which is
// synced, closed and renamed over it, and the folder is synced so that the
// rename itself survives.
//
// It is the one place in varpar that writes a file this way: manifests,
// weights, checkpoints, identity keys and the peer's model store all use it.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes data to path with permissions perm.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc writes what fill writes to path with permissions perm. If fill,
// or anything after it, fails, path is left as it was and the temporary file
// is removed. A fill that wants to refuse its own bytes (a hash that does not
// match, say) returns an error after writing them.
func WriteFunc(path string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; set the wanted mode before a byte is in it.
	err = f.Chmod(perm)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("atomicfile: %s: %w", path, cerr)
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	// Make the rename durable; not every filesystem can sync a folder, so this
	// is best effort.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
