// Package atomicfile writes a file so that a reader sees either the old file
// or the whole new one: the bytes go to a temporary file beside the target,
// which is synced, given its mode (not the umask's), renamed onto the
// target, and the directory synced. On any error the temporary is removed.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes what r yields to name with mode perm.
func Write(name string, r io.Reader, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteBytes writes data to name with mode perm.
func WriteBytes(name string, data []byte, perm os.FileMode) error {
	return Write(name, bytes.NewReader(data), perm)
}

// Copy copies the file src to dst with mode perm.
func Copy(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return Write(dst, in, perm)
}
