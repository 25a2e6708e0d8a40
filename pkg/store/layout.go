package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-build/cairn/internal/atomicfile"
	"github.com/cairn-build/cairn/internal/mountinfo"
)

// The store's folders: only this package knows them (docs/store.md).
const (
	dirBlobs   = "blobs/sha256"
	dirTrees   = "trees/sha256"
	dirOutputs = "outputs/sha256"
	dirActions = "actions"
	dirSeeds   = "seeds"
	dirLogs    = "logs"
	dirIndex   = "index"
	dirDebs    = "state/debs"
	dirState   = "state"
	dirTmp     = "tmp"
	dirLocks   = "locks"
	formatFile = "FORMAT"
)

// Format is the version of the store's layout and record formats this
// cairn writes. Version 1 (no FORMAT file) kept action records as bare
// digests and seed records under state/seeds/; Open migrates it.
const Format = 2

var allDirs = []string{dirBlobs, dirTrees, dirOutputs, dirActions, dirSeeds, dirLogs, dirIndex, dirState, dirTmp, dirLocks}

// FormatError says the store was written by a newer cairn, or is not a
// store at all.
type FormatError struct {
	Dir  string
	Have string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("store %s has format %q; this cairn reads format %d: use the cairn that wrote it, or another --store (a store is a cache: removing it costs only a rebuild)", e.Dir, e.Have, Format)
}

// readFormat returns the store's format: 1 for a store with content and no
// FORMAT file, 0 for an empty or new one.
func readFormat(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, formatFile))
	if errors.Is(err, fs.ErrNotExist) {
		for _, d := range []string{"blobs", "trees", "outputs", "actions", "state"} {
			if ents, err := os.ReadDir(filepath.Join(dir, d)); err == nil && len(ents) > 0 {
				return 1, nil
			}
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", dir, err)
	}
	v, ok := strings.CutPrefix(string(bytes.TrimSpace(data)), "cairn store ")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 2 || n > Format {
		return 0, &FormatError{Dir: dir, Have: string(bytes.TrimSpace(data))}
	}
	return n, nil
}

// migrate brings a format-1 store to the current format: its action
// records get their sum line, its seed records move to seeds/. Called with
// the store held exclusively.
func (s *Store) migrate(from int) error {
	if from == 1 {
		acts, _ := os.ReadDir(filepath.Join(s.dir, dirActions))
		for _, a := range acts {
			p := filepath.Join(s.dir, dirActions, a.Name())
			if strings.HasPrefix(a.Name(), ".") {
				os.Remove(p)
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r := Record{UsesUnknown: true}
			switch f := strings.Fields(string(data)); len(f) {
			case 1:
				r.Output = f[0]
			case 2:
				r.Blob, r.Manifest = f[0], f[1]
			}
			if r.Output == "" && r.Blob == "" {
				os.Remove(p) // unreadable: a cache miss
				continue
			}
			if err := writeFile(p, r.encode("sha256:"+a.Name()), 0o444); err != nil {
				return err
			}
		}
		old := filepath.Join(s.dir, dirState, "seeds")
		seeds, _ := os.ReadDir(old)
		for _, e := range seeds {
			data, err := os.ReadFile(filepath.Join(old, e.Name()))
			if err != nil {
				return err
			}
			r := Record{Tree: strings.TrimSpace(string(data))}
			if err := writeFile(filepath.Join(s.dir, dirSeeds, e.Name()), r.encode("sha256:"+e.Name()), 0o444); err != nil {
				return err
			}
		}
		if err := os.RemoveAll(old); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(s.dir, formatFile), []byte("cairn store "+strconv.Itoa(Format)+"\n"), 0o444)
}

// ErrReadOnly is returned by a write to a store opened read-only.
var ErrReadOnly = errors.New("the store is read-only")

func (s *Store) writable() error {
	if s.ro {
		return fmt.Errorf("store %s: %w", s.dir, ErrReadOnly)
	}
	return nil
}

// ReadOnly reports whether the store was opened read-only (its directory
// cannot be written).
func (s *Store) ReadOnly() bool { return s.ro }

// writeFile writes a record atomically; its temporary file is one that
// cleanTmp recognises.
func writeFile(p string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(p, data, perm); err != nil {
		return err
	}
	return nil
}

// isTempName reports whether a name is a temporary file of atomicfile
// (".NAME.tmp-N") or of cairn's out/ writers (".NAME.oci.N.tmp", "X.tmp").
func isTempName(n string) bool {
	return (strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp")) || strings.HasSuffix(n, ".tmp")
}

// SweepTemps removes the temporary files a killed cairn left in dir (an
// out directory, or one of the store's record folders). The caller makes
// sure no live cairn is writing there.
func SweepTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if isTempName(e.Name()) {
			if err := removeAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Hook, when set, is called at named points of the store's writes
// ("storing": an output synced, not yet renamed into place). Tests use it
// to kill cairn at that point; it is nil otherwise.
func (s *Store) SetHook(fn func(point string)) { s.hookFn = fn }

func (s *Store) hook(point string) {
	if s.hookFn != nil {
		s.hookFn(point)
	}
}

// unmountUnder detaches every mount whose mount point is under dir,
// deepest first, as /proc/self/mountinfo lists them.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, mountinfo.Unescape(f[4]))
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// UnmountUnder is unmountUnder for callers that keep mounts in their own
// work directories (cairn verify's tmpfs).
func UnmountUnder(dir string) { unmountUnder(dir) }
