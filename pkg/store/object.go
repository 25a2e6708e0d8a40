package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cairn-build/cairn/internal/ctxio"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// Kind is a kind of stored object.
type Kind string

const (
	Tree   Kind = "tree"   // a source, recipe or seed tree by its cairn tree digest
	Output Kind = "output" // a step's output tree by the sha256 of its deterministic tar
	Blob   Kind = "blob"   // a file by its sha256 (archives, image tarballs)
)

// Ref names a stored object.
type Ref struct {
	Kind   Kind
	Digest string // sha256:HEX
}

func (r Ref) String() string { return string(r.Kind) + " " + r.Digest }

// CorruptError says a stored object does not hash to its digest. Whoever
// found it has taken it out of the store (unless the store is read-only),
// with every record that pointed at it or was made from it.
type CorruptError struct {
	Ref     Ref
	Path    string
	Got     string
	Removed bool
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("stored %s %s (%s) does not match its digest (got %s)", e.Ref.Kind, e.Ref.Digest, e.Path, e.Got)
	if e.Removed {
		msg += "; removed from the store with the records made from it"
	}
	return msg
}

// Path returns where the object ref lives (or would live).
func (s *Store) Path(ref Ref) string {
	h := strings.TrimPrefix(ref.Digest, "sha256:")
	switch ref.Kind {
	case Tree:
		return filepath.Join(s.dir, dirTrees, h)
	case Output:
		return filepath.Join(s.dir, dirOutputs, h)
	case Blob:
		return filepath.Join(s.dir, dirBlobs, h)
	}
	return ""
}

// Has reports whether the store holds ref (its content is checked by
// Check, not here).
func (s *Store) Has(ref Ref) (string, bool) {
	if !treeForm.MatchString(ref.Digest) {
		return "", false
	}
	p := s.Path(ref)
	if p == "" {
		return "", false
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return "", false
	}
	if ref.Kind == Blob {
		return p, fi.Mode().IsRegular()
	}
	return p, fi.IsDir()
}

// OutputPath returns the path of the step output d if the store holds it.
func (s *Store) OutputPath(d string) (string, bool) { return s.Has(Ref{Output, d}) }

// OutputDigest is the identity of a step's output tree: the sha256 of its
// deterministic tar (pkg/rootfs), which covers paths, types, modes, link
// targets and bytes, with times clamped to epoch.
func OutputDigest(ctx context.Context, dir string, epoch int64) (string, error) {
	h := sha256.New()
	if err := rootfs.WriteTar(ctx, dir, h, rootfs.WithEpoch(epoch)); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// AddOutput moves the finished output tree dir into the store as the
// output d (its OutputDigest at epoch), unless the store already holds d.
// The modes are normalised first, as the output digest sees them.
func (s *Store) AddOutput(ctx context.Context, dir, d string, epoch int64) (string, error) {
	if err := s.writable(); err != nil {
		return "", err
	}
	ref := Ref{Output, d}
	if _, err := hexOf(d); err != nil {
		return "", err
	}
	if p, ok := s.Has(ref); ok {
		return p, nil
	}
	h := strings.TrimPrefix(d, "sha256:")
	unlock, err := s.Lock(ctx, "output-"+h)
	if err != nil {
		return "", err
	}
	defer unlock()
	if p, ok := s.Has(ref); ok {
		return p, nil
	}
	if err := NormaliseModes(dir); err != nil {
		return "", err
	}
	if err := syncfs(dir); err != nil {
		return "", err
	}
	s.hook("storing")
	final := s.Path(ref)
	if err := os.Rename(dir, final); err != nil {
		return "", fmt.Errorf("store output %s: %w", d, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return "", err
	}
	// Hashed by the caller just before: record it as checked.
	if err := s.writeIndex(ref, final, epoch); err != nil {
		return "", err
	}
	return final, nil
}

// index is the per-object record: the digest it was checked against and a
// fingerprint of the stat data of every file under it (size, mode, mtime,
// ctime, inode; as git's index keeps), taken right after the check. A
// fingerprint that still matches means nothing was written since; one that
// does not makes the next use hash the object again.
type index struct {
	digest string
	epoch  int64 // outputs: the epoch their tar digest clamps times to
	stat   string
}

const indexHeader = "cairn index 1"

func (s *Store) indexPath(ref Ref) string {
	return filepath.Join(s.dir, dirIndex, string(ref.Kind)+"-"+strings.TrimPrefix(ref.Digest, "sha256:"))
}

func (s *Store) pathIndexPath(p string) string {
	sum := sha256.Sum256([]byte(p))
	return filepath.Join(s.dir, dirIndex, "path-"+hex.EncodeToString(sum[:]))
}

func readIndex(p string) (index, bool) {
	data, err := os.ReadFile(p)
	if err != nil {
		return index{}, false
	}
	var ix index
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) == 0 || lines[0] != indexHeader {
		return index{}, false
	}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "digest":
			ix.digest = v
		case "epoch":
			ix.epoch, _ = strconv.ParseInt(v, 10, 64)
		case "stat":
			ix.stat = v
		}
	}
	return ix, ix.digest != "" && ix.stat != ""
}

func writeIndexFile(p string, ix index) error {
	text := indexHeader + "\ndigest " + ix.digest + "\nepoch " + strconv.FormatInt(ix.epoch, 10) + "\nstat " + ix.stat + "\n"
	return writeFile(p, []byte(text), 0o444)
}

func (s *Store) writeIndex(ref Ref, p string, epoch int64) error {
	if s.ro {
		return nil
	}
	fp, err := fingerprint(p)
	if err != nil {
		return err
	}
	s.markChecked(ref.String())
	return writeIndexFile(s.indexPath(ref), index{digest: ref.Digest, epoch: epoch, stat: fp})
}

// fingerprint hashes the stat data of p and, for a directory, of everything
// under it, in walk order.
func fingerprint(p string) (string, error) {
	h := sha256.New()
	var line []byte
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(q, &st); err != nil {
			return err
		}
		// Appended by hand: this runs for every file of every object a
		// build uses, and fmt costs more than the lstat.
		line = append(line[:0], q[len(p):]...)
		for _, n := range []int64{int64(st.Mode), st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, int64(st.Ino)} {
			line = strconv.AppendInt(append(line, ' '), n, 10)
		}
		h.Write(append(line, '\n'))
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashObject computes the digest of what is at p as kind.
func hashObject(ctx context.Context, kind Kind, p string, epoch int64) (string, error) {
	switch kind {
	case Tree:
		m, err := digest.FromDir(ctx, p)
		if err != nil {
			return "", err
		}
		return m.TreeDigest(), nil
	case Output:
		return OutputDigest(ctx, p, epoch)
	default:
		return FileSum(ctx, p)
	}
}

// FileSum is the sha256 of the file at p, as sha256:HEX.
func FileSum(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxio.Reader(ctx, f)); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// CheckOption adjusts Check.
type CheckOption func(*checkOpts)

type checkOpts struct {
	full  bool
	epoch int64
	keep  bool
}

// Full re-hashes the object whatever its fingerprint says (build --verify).
func Full(v bool) CheckOption { return func(o *checkOpts) { o.full = v } }

// Epoch is the epoch an output is hashed at when the store has no index
// record of it yet (an output stored by an older cairn).
func Epoch(e int64) CheckOption { return func(o *checkOpts) { o.epoch = e } }

// KeepCorrupt reports a corrupt object without removing it.
func KeepCorrupt() CheckOption { return func(o *checkOpts) { o.keep = true } }

// ErrUnchecked is returned by Check for an output that has no index record
// and no Epoch to hash it with.
var ErrUnchecked = errors.New("no digest record and no epoch to hash it at")

// Check makes sure the stored object ref still has its digest before it is
// used: if its fingerprint matches the one taken when it was last hashed,
// cheaply; otherwise (or with Full) by hashing it again. A corrupt object is
// removed, with every record that points at it or was made from it, and a
// *CorruptError returned, so that the next build rebuilds or re-fetches.
// Each object is checked once per open Store.
func (s *Store) Check(ctx context.Context, ref Ref, opts ...CheckOption) error {
	var o checkOpts
	for _, opt := range opts {
		opt(&o)
	}
	p, ok := s.Has(ref)
	if !ok {
		return fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	memo := ref.String()
	if o.full {
		memo += " full"
	}
	if s.wasChecked(memo) || (!o.full && s.wasChecked(ref.String()+" full")) {
		return nil
	}
	ix, hasIndex := readIndex(s.indexPath(ref))
	if hasIndex && ix.digest == ref.Digest {
		o.epoch = ix.epoch
		if !o.full {
			if fp, err := fingerprint(p); err == nil && fp == ix.stat {
				s.markChecked(memo)
				return nil
			}
		}
	} else if ref.Kind == Output && o.epoch == 0 {
		return fmt.Errorf("%s: %w", ref, ErrUnchecked)
	}
	got, err := hashObject(ctx, ref.Kind, p, o.epoch)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		got = "unreadable: " + err.Error()
	}
	if got != ref.Digest {
		ce := &CorruptError{Ref: ref, Path: p, Got: got}
		if !o.keep && !s.ro {
			if _, err := s.Evict(ref); err == nil {
				ce.Removed = true
			}
		}
		return ce
	}
	if err := s.writeIndex(ref, p, o.epoch); err != nil {
		return err
	}
	s.markChecked(memo)
	return nil
}

// CheckFile checks a file outside the store that cairn wrote (an image in
// out/) against its digest d, the same way: by fingerprint, or by hashing
// when the fingerprint changed or full is set. It returns false, not an
// error, when the file is missing or differs; the caller writes it again.
func (s *Store) CheckFile(ctx context.Context, p, d string, full bool) (bool, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(abs)
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	if !full {
		if ix, ok := readIndex(s.pathIndexPath(abs)); ok && ix.digest == d {
			if fp, err := fingerprint(abs); err == nil && fp == ix.stat {
				return true, nil
			}
		}
	}
	got, err := FileSum(ctx, abs)
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		return false, nil
	}
	if got != d {
		return false, nil
	}
	return true, s.NoteFile(abs, d)
}

// NoteFile records the fingerprint of the file p, just written with digest
// d, for CheckFile.
func (s *Store) NoteFile(p, d string) error {
	if s.ro {
		return nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	fp, err := fingerprint(abs)
	if err != nil {
		return err
	}
	return writeIndexFile(s.pathIndexPath(abs), index{digest: d, stat: fp})
}

// Evict takes ref out of the store with its index record and every record
// that points at it or lists it among the objects it was made from: the
// outputs built from a bad tree are not trusted either. It returns the
// records removed.
func (s *Store) Evict(ref Ref) ([]string, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	var removed []string
	for _, ns := range []string{dirActions, dirSeeds} {
		names, err := os.ReadDir(filepath.Join(s.dir, ns))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, n := range names {
			rec, err := s.readRecord(ns, n.Name())
			if err != nil || rec.refers(ref) {
				if err := os.Remove(filepath.Join(s.dir, ns, n.Name())); err == nil {
					removed = append(removed, ns+"/"+n.Name())
				}
			}
		}
	}
	os.Remove(s.indexPath(ref))
	s.forget(ref)
	p, ok := s.Has(ref)
	if !ok {
		return removed, nil
	}
	if ref.Kind == Blob {
		if err := os.Remove(p); err != nil {
			return removed, fmt.Errorf("store %s: %w", s.dir, err)
		}
		return removed, syncDir(filepath.Dir(p))
	}
	// Renamed into tmp/ first, so that no reader ever sees it half removed.
	tmp, done, err := s.TempDir("evict")
	if err != nil {
		return removed, err
	}
	defer done()
	os.Chmod(p, 0o755)
	if err := os.Rename(p, filepath.Join(tmp, "t")); err != nil {
		return removed, fmt.Errorf("store %s: %w", s.dir, err)
	}
	return removed, syncDir(filepath.Dir(p))
}

// checked remembers, per open Store, the objects already checked.
type checked struct {
	mu   sync.Mutex
	done map[string]bool
}

func (s *Store) wasChecked(k string) bool {
	s.checked.mu.Lock()
	defer s.checked.mu.Unlock()
	return s.checked.done[k]
}

func (s *Store) markChecked(k string) {
	s.checked.mu.Lock()
	defer s.checked.mu.Unlock()
	if s.checked.done == nil {
		s.checked.done = map[string]bool{}
	}
	s.checked.done[k] = true
}

func (s *Store) forget(ref Ref) {
	s.checked.mu.Lock()
	defer s.checked.mu.Unlock()
	delete(s.checked.done, ref.String())
	delete(s.checked.done, ref.String()+" full")
}

// Fingerprint is the stat fingerprint Check compares for the file or tree
// at p (exported for tests that forge an index record).
func Fingerprint(p string) (string, error) { return fingerprint(p) }
