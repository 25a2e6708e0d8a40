package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Unpack extracts the archive r into dir, refusing every member Walk
// refuses (see the package doc). Without Merge, dir must be absent or an
// empty directory; the archive is extracted into a temporary sibling that
// replaces dir only once the whole archive is in, so on any error dir is
// left as it was and nothing else remains (a process killed outright
// leaves its ".DIR.unpack-*" sibling for the caller to clear). With Merge,
// dir is created if needed and written in place.
func Unpack(ctx context.Context, r io.Reader, dir string, opts ...Option) (Stats, error) {
	c := newConfig(opts)
	if c.merge {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Stats{}, err
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return Stats{}, err
		}
		defer root.Close()
		x := &extractor{root: root, cfg: c, dirs: map[string]bool{}, merge: true}
		return walk(ctx, r, c, x.place)
	}

	if err := checkEmpty(dir); err != nil {
		return Stats{}, err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".unpack-")
	if err != nil {
		return Stats{}, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return Stats{}, err
	}
	x := &extractor{root: root, cfg: c, dirs: map[string]bool{}}
	st, err := walk(ctx, r, c, x.place)
	root.Close()
	if err != nil {
		return st, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return st, err
	}
	// rename(2) replaces an empty directory atomically (os.Rename refuses
	// any existing directory); a dir filled meanwhile fails with ENOTEMPTY.
	if err := unix.Rename(tmp, dir); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return st, fmt.Errorf("unpack into %s: %w", dir, ErrDirNotEmpty)
		}
		return st, &os.LinkError{Op: "rename", Old: tmp, New: dir, Err: err}
	}
	ok = true
	return st, nil
}

func checkEmpty(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("unpack into %s: not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return fmt.Errorf("unpack into %s: %w", dir, ErrDirNotEmpty)
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// extractor places validated entries under root, never following a
// symlink: parents are checked with Lstat, files are created with O_EXCL
// after the old entry is removed, and os.Root refuses anything that would
// resolve outside even if the tree changes underneath.
type extractor struct {
	root  *os.Root
	cfg   *config
	dirs  map[string]bool // directories made or checked in this run
	merge bool
	buf   []byte
}

func (x *extractor) refuse(e *Entry, reason, detail error) error {
	return &EntryError{Archive: x.cfg.name, Entry: e.Raw, Reason: reason, Err: detail}
}

func (x *extractor) place(e *Entry, content io.Reader) error {
	if err := x.parents(e); err != nil {
		return err
	}
	switch e.Type {
	case TypeDir:
		return x.mkdir(e, e.Name)
	case TypeFile:
		if err := x.removeOld(e); err != nil {
			return err
		}
		mode := fileMode(e.Exec)
		f, err := x.root.OpenFile(e.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
		if err != nil {
			return x.ioErr(e, err)
		}
		if x.buf == nil {
			x.buf = make([]byte, 256<<10)
		}
		n, err := io.CopyBuffer(f, content, x.buf)
		if err == nil && n != e.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = f.Chmod(mode) // the umask is not ours to inherit
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return x.ioErr(e, err)
		}
	case TypeSymlink:
		if err := x.removeOld(e); err != nil {
			return err
		}
		if err := x.root.Symlink(e.Linkname, e.Name); err != nil {
			return x.ioErr(e, err)
		}
	case TypeHardlink:
		if err := x.removeOld(e); err != nil {
			return err
		}
		if err := x.root.Link(e.Linkname, e.Name); err != nil {
			return x.ioErr(e, err)
		}
	}
	return nil
}

func (x *extractor) ioErr(e *Entry, err error) error {
	return fmt.Errorf("%s: entry %q: %w", x.cfg.name, e.Raw, err)
}

func fileMode(exec bool) os.FileMode {
	if exec {
		return 0o755
	}
	return 0o644
}

// parents makes or checks every parent directory of e, one component at a
// time, refusing a symlink or a non-directory on the way.
func (x *extractor) parents(e *Entry) error {
	for i := 0; i < len(e.Name); i++ {
		if e.Name[i] != '/' {
			continue
		}
		if err := x.mkdir(e, e.Name[:i]); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) mkdir(e *Entry, p string) error {
	if x.dirs[p] {
		return nil
	}
	fi, err := x.root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := x.root.Mkdir(p, 0o755); err != nil {
			return x.ioErr(e, err)
		}
		// Mkdir is subject to the umask; fix the mode through the fd.
		d, err := x.root.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return x.ioErr(e, err)
		}
		err = d.Chmod(0o755)
		d.Close()
		if err != nil {
			return x.ioErr(e, err)
		}
	case err != nil:
		return x.ioErr(e, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return x.refuse(e, ErrThroughSymlink, fmt.Errorf("%q is a symlink on disk", p))
	case !fi.IsDir():
		return x.refuse(e, ErrTypeChange, fmt.Errorf("%q is not a directory on disk", p))
	}
	x.dirs[p] = true
	return nil
}

// removeOld clears the way for a file, symlink or hardlink at e.Name: an
// old file or symlink is removed (never opened, so a hardlinked inode or a
// link's target is never written through); a directory is refused.
func (x *extractor) removeOld(e *Entry) error {
	fi, err := x.root.Lstat(e.Name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return x.ioErr(e, err)
	}
	isLink := fi.Mode()&fs.ModeSymlink != 0
	switch {
	case fi.IsDir():
		return x.refuse(e, ErrTypeChange, fmt.Errorf("%q is a directory on disk", e.Name))
	case x.merge && isLink != (e.Type == TypeSymlink):
		return x.refuse(e, ErrTypeChange, fmt.Errorf("%q is a %s on disk", e.Name, kindOf(fi)))
	case !fi.Mode().IsRegular() && !isLink:
		return x.refuse(e, ErrExists, fmt.Errorf("%q is a %s on disk", e.Name, kindOf(fi)))
	}
	if err := x.root.Remove(e.Name); err != nil {
		return x.ioErr(e, err)
	}
	return nil
}

func kindOf(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}
