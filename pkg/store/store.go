// Package store is cairn's content-addressed store: release archives and
// image tarballs kept as blobs by sha256, sources, recipes and seeds as
// trees by their cairn tree digest, step outputs by the sha256 of their
// deterministic tar, and the records that map action keys to them. It is
// the only package that knows the store's folders (docs/store.md, format
// Format): others ask it for a path, a record or a check by digest or key.
//
// Layout under the store directory:
//
//	FORMAT               the layout's version
//	blobs/sha256/HEX     a file whose sha256 is HEX
//	trees/sha256/HEX/    a tree whose cairn tree digest is sha256:HEX
//	outputs/sha256/HEX/  a step output whose tar digest is sha256:HEX
//	actions/HEX          the record of action key sha256:HEX
//	seeds/HEX            the record of the seed whose lock has sha256 HEX
//	index/KIND-HEX       the digest and stat fingerprint an object was last checked with
//	logs/HEX.log         the log of the step run for action key sha256:HEX
//	state/debs/          the seed's .debs (pkg/seed's cache)
//	state/NAME/          private state of a transport (the Debian apt state)
//	tmp/                 work in progress; emptied by the next Open that finds no live user
//	locks/               flock files: one per key, and store.lock
//
// Nothing appears under blobs/, trees/ or outputs/ except by rename from
// tmp/ after its digest was checked: a blob is hashed while it is written,
// a tree or output after its filler wrote it, and a mismatch keeps nothing.
// Before the rename the new content is synced (fsync for a blob, syncfs for
// a tree) and after it the parent directory is synced, so a crash leaves
// either the old state or the complete entry, never a torn one.
//
// Nothing corrupt is used: Check compares an object's stat fingerprint
// with the one taken when it was last hashed and hashes it again when they
// differ (or always, with Full); a corrupt object is removed with every
// record that points at it or was made from it. VerifyAll hashes
// everything.
//
// Several cairn processes may share one store. Every Store holds a shared
// flock on locks/store.lock for its lifetime; Open first tries to take it
// exclusively and, if no one else holds it, removes whatever a crashed run
// left in tmp/ (unmounting what is mounted there) and migrates an older
// format. Adding a key takes an exclusive flock on locks/KIND-HEX.lock,
// and the loser of a race re-checks the store once it holds the lock, so the
// same content is written once and two writers never collide. A store that
// cannot be written is opened read-only.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-build/cairn/internal/ctxio"
	"github.com/cairn-build/cairn/pkg/digest"
)

// DigestMismatchError is returned when content does not hash to what was
// asked for. Nothing of it is kept.
type DigestMismatchError struct {
	What string // what was hashed: "blob", "tree", or a caller's description
	Want string
	Got  string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s digest mismatch: want %s, got %s", e.What, e.Want, e.Got)
}

// ErrNotFound is returned for a key the store does not hold.
var ErrNotFound = errors.New("not in the store")

// Store is an open store. Close releases its shared lock.
type Store struct {
	dir     string
	lock    *os.File
	ro      bool
	hookFn  func(string)
	checked checked
}

var (
	hex64    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	treeForm = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// Open opens (creating if need be) the store at dir and removes what an
// earlier, dead run left in tmp/ when no other process is using the store.
// A store of an older format is migrated; one of a newer format is refused
// with a *FormatError. A store whose directory cannot be written (a
// read-only mount, another user's) is opened read-only: it can be read,
// and every write returns ErrReadOnly.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	format, err := readFormat(abs)
	if err != nil {
		return nil, err
	}
	for _, d := range allDirs {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			if fi, serr := os.Stat(abs); serr == nil && fi.IsDir() && (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)) {
				return openReadOnly(abs, format)
			}
			return nil, fmt.Errorf("store %s: %w", dir, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(abs, dirLocks, "store.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS) {
			return openReadOnly(abs, format)
		}
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	s := &Store{dir: abs, lock: f}
	// Exclusive only if no live process holds the store: then tmp/ holds
	// nothing but the remains of killed runs. flock converts the lock to
	// shared without a window in which another Open could clean.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		if err := s.cleanTmp(); err != nil {
			f.Close()
			return nil, err
		}
		if format != Format {
			if err := s.migrate(format); err != nil {
				f.Close()
				return nil, fmt.Errorf("store %s: migrate from format %d: %w", dir, format, err)
			}
		}
	} else if format != Format {
		// Another cairn holds the store: once it is past its own Open
		// (a shared lock can be had), it has migrated it.
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			f.Close()
			return nil, fmt.Errorf("store %s: lock: %w", dir, err)
		}
		if format, err = readFormat(abs); err == nil && format != Format {
			err = fmt.Errorf("store %s: format %d is in use by an older cairn; run again once it has finished, to migrate it", dir, format)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("store %s: lock: %w", dir, err)
	}
	return s, nil
}

// openReadOnly opens a store that cannot be written: no lock is taken (a
// writer cannot share a read-only filesystem with it, and a lock file is
// not created), nothing is cleaned or migrated.
func openReadOnly(abs string, format int) (*Store, error) {
	if format != 0 && format != Format && format != 1 {
		return nil, &FormatError{Dir: abs, Have: strconv.Itoa(format)}
	}
	s := &Store{dir: abs, ro: true}
	if f, err := os.Open(filepath.Join(abs, dirLocks, "store.lock")); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_SH)
		s.lock = f
	}
	return s, nil
}

// Close releases the store.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir returns the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) cleanTmp() error {
	tmp := filepath.Join(s.dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.dir, err)
	}
	// A killed `cairn verify` may have left a tmpfs mounted under tmp/.
	unmountUnder(tmp)
	for _, e := range ents {
		if err := removeAll(filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("store %s: clean tmp: %w", s.dir, err)
		}
	}
	for _, d := range []string{dirActions, dirSeeds, dirIndex, dirLogs} {
		if err := SweepTemps(filepath.Join(s.dir, d)); err != nil {
			return fmt.Errorf("store %s: clean: %w", s.dir, err)
		}
	}
	return nil
}

// removeAll removes p even where a tree was made read-only.
func removeAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// TempDir makes a fresh directory under tmp/, on the store's filesystem so
// that what is made there can be renamed into place. The caller removes it
// with the returned func; if the process dies, a later Open does.
func (s *Store) TempDir(prefix string) (string, func(), error) {
	if err := s.writable(); err != nil {
		return "", nil, err
	}
	d, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), prefix+"-")
	if err != nil {
		return "", nil, fmt.Errorf("store %s: %w", s.dir, err)
	}
	return d, func() { removeAll(d) }, nil
}

// StateDir returns (creating) state/NAME, where a transport may keep state
// between runs (the Debian transport's private apt state).
func (s *Store) StateDir(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return "", fmt.Errorf("store: bad state name %q", name)
	}
	d := filepath.Join(s.dir, "state", name)
	if s.ro {
		return d, nil
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("store %s: %w", s.dir, err)
	}
	return d, nil
}

// Lock takes an exclusive lock named name (a key such as "tree-HEX"),
// waiting until it is free or ctx is done.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("store: bad lock name %q", name)
	}
	if err := s.writable(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "locks", name+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", s.dir, err)
	}
	// flock has no timeout; poll with LOCK_NB so that ctx can stop the wait.
	wait := 0
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("store %s: lock %s: %w", s.dir, name, err)
		}
		if wait < 50 {
			wait += 5
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-after(wait):
		}
	}
}

func hexOf(treeDigest string) (string, error) {
	if !treeForm.MatchString(treeDigest) {
		return "", fmt.Errorf("store: tree digest %q: want sha256:HEX", treeDigest)
	}
	return strings.TrimPrefix(treeDigest, "sha256:"), nil
}

// TreePath returns where the tree with digest d lives (or would live).
func (s *Store) TreePath(d string) string {
	return s.Path(Ref{Tree, d})
}

// Tree returns the path of the tree with digest d ("sha256:HEX") if the
// store holds it.
func (s *Store) Tree(d string) (string, bool) {
	if _, err := hexOf(d); err != nil {
		return "", false
	}
	p := s.TreePath(d)
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() {
		return "", false
	}
	return p, true
}

// VerifyTree recomputes the digest of the stored tree d.
func (s *Store) VerifyTree(ctx context.Context, d string) error {
	p, ok := s.Tree(d)
	if !ok {
		return fmt.Errorf("tree %s: %w", d, ErrNotFound)
	}
	m, err := digest.FromDir(ctx, p)
	if err != nil {
		return fmt.Errorf("tree %s: %w", d, err)
	}
	if got := m.TreeDigest(); got != d {
		return &DigestMismatchError{What: "stored tree " + p, Want: d, Got: got}
	}
	return nil
}

// AddTree stores the tree that fill writes into the (empty, existing)
// directory it is given, if that tree's digest is want; otherwise it keeps
// nothing and returns a *DigestMismatchError. If the store already holds
// want, fill is not called.
func (s *Store) AddTree(ctx context.Context, want string, fill func(dir string) error) (string, error) {
	h, err := hexOf(want)
	if err != nil {
		return "", err
	}
	if p, ok := s.Tree(want); ok {
		return p, nil
	}
	if err := s.writable(); err != nil {
		return "", err
	}
	unlock, err := s.Lock(ctx, "tree-"+h)
	if err != nil {
		return "", err
	}
	defer unlock()
	if p, ok := s.Tree(want); ok { // another process won the race
		return p, nil
	}
	tmp, done, err := s.TempDir("tree-" + h[:12])
	if err != nil {
		return "", err
	}
	defer done()
	dir := filepath.Join(tmp, "t")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := fill(dir); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m, err := digest.FromDir(ctx, dir)
	if err != nil {
		return "", err
	}
	if got := m.TreeDigest(); got != want {
		return "", &DigestMismatchError{What: "tree", Want: want, Got: got}
	}
	if err := NormaliseModes(dir); err != nil {
		return "", err
	}
	if err := syncfs(dir); err != nil {
		return "", err
	}
	final := s.TreePath(want)
	if err := os.Rename(dir, final); err != nil {
		return "", fmt.Errorf("store %s: %w", s.dir, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return "", err
	}
	if err := s.writeIndex(Ref{Tree, want}, final, 0); err != nil {
		return "", err
	}
	return final, nil
}

// NormaliseModes sets every file to 0644, or 0755 when any execute bit is
// set, and every directory to 0755: a stored tree looks the same whichever
// transport delivered it, since the tree digest records only the execute
// bit. The modes are not the protection: builds see trees through read-only
// mounts as another uid, and VerifyTree re-hashes on demand. Read-only modes
// would leak into builds, as a copied source file the build cannot append to
// (musl's Makefile does exactly that).
func NormaliseModes(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Chmod(p, 0o755)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return os.Chmod(p, mode)
		}
		return nil
	})
}

func syncfs(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", p, err)
	}
	return nil
}

func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return nil
}

// BlobPath returns where the blob with sha256 hex sum lives (or would live).
func (s *Store) BlobPath(sum string) string {
	return filepath.Join(s.dir, dirBlobs, sum)
}

// Blob returns the path of the blob whose sha256 is sum (hex) if the store
// holds it. Its content is checked by OpenBlob or VerifyBlob, not here.
func (s *Store) Blob(sum string) (string, bool) {
	if !hex64.MatchString(sum) {
		return "", false
	}
	p := s.BlobPath(sum)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return p, true
}

// OpenBlob opens the blob sum for reading. The reader re-hashes what it
// reads and, at EOF, returns a *DigestMismatchError instead of io.EOF if the
// stored bytes were changed.
func (s *Store) OpenBlob(sum string) (io.ReadCloser, int64, error) {
	p, ok := s.Blob(sum)
	if !ok {
		return nil, 0, fmt.Errorf("blob sha256:%s: %w", sum, ErrNotFound)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return &checkedReader{f: f, h: sha256.New(), want: sum, what: "stored blob " + p}, fi.Size(), nil
}

// VerifyBlob re-hashes the stored blob sum.
func (s *Store) VerifyBlob(sum string) error {
	r, _, err := s.OpenBlob(sum)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return err
}

type checkedReader struct {
	f    *os.File
	h    hash.Hash
	want string
	what string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, &DigestMismatchError{What: c.what, Want: "sha256:" + c.want, Got: "sha256:" + got}
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.f.Close() }

// AddBlob stores what r yields if its sha256 is want (hex); otherwise it
// keeps nothing and returns a *DigestMismatchError.
func (s *Store) AddBlob(ctx context.Context, want string, r io.Reader) (string, error) {
	if !hex64.MatchString(want) {
		return "", fmt.Errorf("store: blob sha256 %q: want 64 lowercase hex digits", want)
	}
	if p, ok := s.Blob(want); ok {
		return p, nil
	}
	if err := s.writable(); err != nil {
		return "", err
	}
	unlock, err := s.Lock(ctx, "blob-"+want)
	if err != nil {
		return "", err
	}
	defer unlock()
	if p, ok := s.Blob(want); ok {
		return p, nil
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-"+want[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("store %s: %w", s.dir, err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), ctxio.Reader(ctx, r)); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", &DigestMismatchError{What: "blob", Want: "sha256:" + want, Got: "sha256:" + got}
	}
	if err := f.Chmod(0o444); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("store %s: fsync: %w", s.dir, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	final := s.BlobPath(want)
	if err := os.Rename(f.Name(), final); err != nil {
		return "", fmt.Errorf("store %s: %w", s.dir, err)
	}
	keep = true
	if err := syncDir(filepath.Dir(final)); err != nil {
		return "", err
	}
	if err := s.writeIndex(Ref{Blob, "sha256:" + want}, final, 0); err != nil {
		return "", err
	}
	return final, nil
}

// RemoveTree takes the tree d out of the store (a tree that failed
// verification), with every record made from it (see Evict).
func (s *Store) RemoveTree(d string) error {
	_, err := s.Evict(Ref{Tree, d})
	return err
}
