package oci

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// EntryError is a rootfs tar member a layer must not carry, or a tar that is
// not one (Entry names the last good member then).
type EntryError struct {
	Entry string
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("tar entry %q: %v", e.Entry, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// Reasons an EntryError gives, for errors.Is.
var (
	ErrEntryName = errors.New("name is absolute, not clean or climbs out with ..")
	ErrEntryType = errors.New("type is not a directory, file, symlink or hard link")
	ErrEntryLink = errors.New("hard link names no earlier file")
	ErrNotTar    = errors.New("not a tar")
)

// checkTar reads a tar stream to its end and refuses what a rootfs layer of
// cairn's must not hold: names that escape the root, device nodes, FIFOs,
// sparse files, dangling hard links, and input that is no tar at all (an
// xz file handed in uncompressed, a truncated tar). Runtimes extract layers
// with their own checks; this one stops a bad image being made at all.
func checkTar(r io.Reader) error {
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	last, n := "", 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return &EntryError{Entry: "", Err: fmt.Errorf("%w: no entries", ErrNotTar)}
			}
			return nil
		}
		if err != nil {
			return &EntryError{Entry: last, Err: fmt.Errorf("%w: after it: %v", ErrNotTar, err)}
		}
		n++
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || name == "." {
			last = h.Name
			continue // the root itself
		}
		if path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
			return &EntryError{Entry: h.Name, Err: ErrEntryName}
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeSymlink:
		case tar.TypeReg:
			seen[name] = true
		case tar.TypeLink:
			if !seen[strings.TrimPrefix(h.Linkname, "./")] {
				return &EntryError{Entry: h.Name, Err: ErrEntryLink}
			}
		default:
			return &EntryError{Entry: h.Name, Err: ErrEntryType}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return &EntryError{Entry: h.Name, Err: fmt.Errorf("%w: %v", ErrNotTar, err)}
		}
		last = h.Name
	}
}
