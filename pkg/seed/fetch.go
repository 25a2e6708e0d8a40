package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cairn-build/cairn/internal/ctxio"
)

// DigestMismatchError says a .deb's bytes are not the ones the lock pins.
// Nothing of it was kept.
type DigestMismatchError struct {
	Package           string // NAME=VERSION
	Source            string // where the bytes came from
	Want              string // sha256 (hex) from the lock
	Got               string // sha256 (hex) of what was read
	WantSize, GotSize int64
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s from %s: sha256 %s (%d bytes), lock wants %s (%d bytes); nothing kept",
		e.Package, e.Source, e.Got, e.GotSize, e.Want, e.WantSize)
}

// NotServedError says no configured source has a locked .deb: mirrors and
// cache miss it, and the archive (through apt) no longer serves it, or apt
// is off. Re-locking with scripts/lock-seed.sh is the fix.
type NotServedError struct {
	Package string // NAME=VERSION
	Tried   []string
	Err     error // apt's failure, if apt was tried
}

func (e *NotServedError) Error() string {
	msg := fmt.Sprintf("%s: not found in %s", e.Package, strings.Join(e.Tried, ", "))
	if e.Err != nil {
		msg += fmt.Sprintf("; the archive no longer serves it (%v)", e.Err)
	}
	return msg + "; re-lock the seed with scripts/lock-seed.sh"
}

func (e *NotServedError) Unwrap() error { return e.Err }

// MissingError says that, with apt off, the cache and mirrors lack some
// locked packages: the fix is a mirror that has them, or the archive.
type MissingError struct {
	Packages []string // NAME=VERSION, sorted
	Tried    []string
}

func (e *MissingError) Error() string {
	list := e.Packages
	more := ""
	if len(list) > 5 {
		list, more = list[:5], fmt.Sprintf(" and %d more", len(e.Packages)-5)
	}
	tried := "nothing (no cache, no mirror)"
	if len(e.Tried) > 0 {
		tried = strings.Join(e.Tried, ", ")
	}
	return fmt.Sprintf("%d locked packages not in %s, and the archive is off: %s%s",
		len(e.Packages), tried, strings.Join(list, ", "), more)
}

func (p Package) id() string { return p.Name + "=" + p.Version }

// aptFileName is the name apt-get download gives a .deb: the epoch's colon
// written as %3a.
func (p Package) aptFileName() string {
	return p.Name + "_" + strings.ReplaceAll(p.Version, ":", "%3a") + "_" + p.Arch + ".deb"
}

// mirrorCandidates are the names a package may have in a mirror directory,
// most specific first: a copy of the archive's pool, a flat directory of
// pool file names, one of apt-get download's names, one named by sha256.
func (p Package) mirrorCandidates() []string {
	c := []string{p.Filename, path.Base(p.Filename), p.aptFileName(), p.SHA256 + ".deb", p.SHA256}
	out := c[:0]
	seen := map[string]bool{}
	for _, s := range c {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// cachePath is where a verified .deb is kept: by its sha256, so that two
// locks sharing a package share the file and a name can never lie.
func cachePath(dir string, p Package) string {
	return filepath.Join(dir, "sha256", p.SHA256[:2], p.SHA256+".deb")
}

// copyVerified copies src into dir as name, hashing as it goes; on any
// mismatch or error nothing is left in dir.
func copyVerified(ctx context.Context, p Package, source string, src io.Reader, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	// Read one byte past the locked size: a longer file is a mismatch, and
	// an endless one must not fill the disk.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxio.Reader(ctx, src), p.Size+1))
	if err != nil {
		return fmt.Errorf("%s from %s: %w", p.id(), source, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != p.Size || got != p.SHA256 {
		if n > p.Size {
			got = "(longer than locked; not hashed to the end)"
		}
		return &DigestMismatchError{Package: p.id(), Source: source, Want: p.SHA256, Got: got, WantSize: p.Size, GotSize: n}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	ok = true
	return nil
}

// verifyFile checks that file holds exactly p's bytes.
func verifyFile(p Package, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, p.Size+1))
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != p.Size || got != p.SHA256 {
		return &DigestMismatchError{Package: p.id(), Source: file, Want: p.SHA256, Got: got, WantSize: p.Size, GotSize: n}
	}
	return nil
}

// fromMirror looks p up in each mirror directory and copies the first hit,
// verified, to dst. found is false when no mirror has it.
func fromMirror(ctx context.Context, mirrors []string, p Package, dst string) (source string, found bool, err error) {
	for _, m := range mirrors {
		for _, name := range p.mirrorCandidates() {
			file := filepath.Join(m, filepath.FromSlash(name))
			f, err := os.Open(file)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return file, true, fmt.Errorf("%s: %w", p.id(), err)
			}
			err = copyVerified(ctx, p, file, f, dst)
			f.Close()
			return file, true, err
		}
	}
	return "", false, nil
}
