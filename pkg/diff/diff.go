// Package diff compares two file trees file by file: rootfs tarballs (.tar.xz
// or .tar), OCI image layouts (their single layer) and directories (a step's
// output tree in the store, or any tree).
//
// Each input is first listed: every entry's path, type, mode, size, sha256
// and link target, the same facts pkg/rootfs writes and lists. The two
// listings are then walked in sorted path order, so the result never depends
// on map order or on the order an archive or a directory happens to hold its
// entries. A path only one side has is added or removed; a path both have is
// changed when its type, mode, link target or content differs.
//
// For a changed file's content the result also gives the offset of the first
// byte that differs, which points a reader at the spot (a timestamp, a build
// path) without running a diffoscope. Only changed files are read a second
// time for it: a listing already holds every file's sha256, so equal trees
// cost one pass each. Contents larger than MaxCompare are not compared byte
// by byte; their offset is reported as unknown (-1).
//
// A hard link in a tarball is listed as the file it names (its content and
// size), so a tarball and the tree it was made from compare equal. The root
// of a tree (the tar entry "./") is not compared.
//
// Inputs are read as hostile: nothing is extracted, a directory is walked
// without following symlinks, an OCI layout's blob names are checked to be
// sha256 digests before they are opened, and every error names the input.
package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
)

// MaxCompare is the largest file content that is compared byte by byte to
// find the first difference.
const MaxCompare = 64 << 20

// Kind is what happened to a path from A to B.
type Kind string

const (
	Added   Kind = "added"   // only in B
	Removed Kind = "removed" // only in A
	Changed Kind = "changed" // in both, different
)

// Aspect names one way an entry present in both trees differs.
type Aspect string

const (
	AspectType    Aspect = "type"
	AspectMode    Aspect = "mode"
	AspectLink    Aspect = "link"
	AspectContent Aspect = "content"
)

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeOther   = "other" // devices, FIFOs, sockets
)

// Entry is what the comparison knows of one path of a tree.
type Entry struct {
	Type   string `json:"type"`
	Mode   string `json:"mode"` // octal permission and setuid/setgid/sticky bits, e.g. "0755"
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // "sha256:HEX" of a file's bytes
	Link   string `json:"link,omitempty"`   // a symlink's target

	// content is the path whose bytes this entry has: itself, or for a
	// hard link in a tarball the file it names.
	content string
}

// Change is one path that differs.
type Change struct {
	Path string   `json:"path"`
	Kind Kind     `json:"kind"`
	A    *Entry   `json:"a,omitempty"` // nil when Added
	B    *Entry   `json:"b,omitempty"` // nil when Removed
	What []Aspect `json:"what,omitempty"`
	// FirstDifference is the offset of the first differing byte of a
	// changed content (where the shorter content ends, if it is a prefix of
	// the other); -1 when the contents were too large to compare. Nil
	// unless the content changed.
	FirstDifference *int64 `json:"first_difference,omitempty"`
}

// Result is the comparison of two trees.
type Result struct {
	A       string   `json:"a"`
	B       string   `json:"b"`
	Changes []Change `json:"changes"` // sorted by path
}

// Same reports whether the trees are equal.
func (r *Result) Same() bool { return len(r.Changes) == 0 }

// InputError names the input that could not be read.
type InputError struct {
	Input string
	Err   error
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %v", e.Input, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// ErrFormat is the reason for refusing an input that is no tarball, OCI
// layout or directory that this package reads.
var ErrFormat = errors.New("not a tar, tar.xz, OCI image layout or directory")

// tree is one side of a comparison.
type tree interface {
	// list returns the tree's entries by path (slash-separated, no
	// leading "./", the root left out).
	list(ctx context.Context) (map[string]*Entry, error)
	// contents calls fn with the bytes of each path in want that is a
	// regular file, in any order.
	contents(ctx context.Context, want map[string]bool, fn func(path string, r io.Reader) error) error
}

// Paths compares the trees at a and b; each is a rootfs tarball, an OCI
// image layout directory or a plain directory.
func Paths(ctx context.Context, a, b string) (*Result, error) {
	ta, err := open(a)
	if err != nil {
		return nil, &InputError{Input: a, Err: err}
	}
	tb, err := open(b)
	if err != nil {
		return nil, &InputError{Input: b, Err: err}
	}
	return compare(ctx, a, ta, b, tb)
}

func compare(ctx context.Context, na string, a tree, nb string, b tree) (*Result, error) {
	ea, err := a.list(ctx)
	if err != nil {
		return nil, &InputError{Input: na, Err: err}
	}
	eb, err := b.list(ctx)
	if err != nil {
		return nil, &InputError{Input: nb, Err: err}
	}
	paths := make([]string, 0, len(ea)+len(eb))
	for p := range ea {
		paths = append(paths, p)
	}
	for p := range eb {
		if _, ok := ea[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)

	res := &Result{A: na, B: nb, Changes: []Change{}}
	wantA, wantB := map[string]bool{}, map[string]bool{}
	var contentChanged []int
	for _, p := range paths {
		x, y := ea[p], eb[p]
		switch {
		case y == nil:
			res.Changes = append(res.Changes, Change{Path: p, Kind: Removed, A: x})
		case x == nil:
			res.Changes = append(res.Changes, Change{Path: p, Kind: Added, B: y})
		default:
			what := aspects(x, y)
			if len(what) == 0 {
				continue
			}
			c := Change{Path: p, Kind: Changed, A: x, B: y, What: what}
			for _, w := range what {
				if w == AspectContent {
					contentChanged = append(contentChanged, len(res.Changes))
					wantA[x.content], wantB[y.content] = true, true
				}
			}
			res.Changes = append(res.Changes, c)
		}
	}
	if len(contentChanged) > 0 {
		if err := firstDifferences(ctx, na, a, nb, b, wantA, wantB, res.Changes, contentChanged); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func aspects(x, y *Entry) []Aspect {
	if x.Type != y.Type {
		return []Aspect{AspectType}
	}
	var w []Aspect
	if x.Mode != y.Mode {
		w = append(w, AspectMode)
	}
	if x.Link != y.Link {
		w = append(w, AspectLink)
	}
	if x.Type == TypeFile && (x.SHA256 != y.SHA256 || x.Size != y.Size) {
		w = append(w, AspectContent)
	}
	return w
}

// firstDifferences reads A's changed contents into memory (each up to
// MaxCompare), then streams B's and finds where each first differs.
func firstDifferences(ctx context.Context, na string, a tree, nb string, b tree, wantA, wantB map[string]bool, changes []Change, idx []int) error {
	held := map[string][]byte{}
	err := a.contents(ctx, wantA, func(p string, r io.Reader) error {
		data, err := io.ReadAll(io.LimitReader(r, MaxCompare+1))
		if err != nil {
			return err
		}
		if len(data) <= MaxCompare {
			held[p] = data
		}
		return nil
	})
	if err != nil {
		return &InputError{Input: na, Err: err}
	}
	// Several changed paths may share one content (hard links).
	byContent := map[string][]int{}
	for _, i := range idx {
		c := &changes[i]
		unknown := int64(-1)
		c.FirstDifference = &unknown
		if _, ok := held[c.A.content]; ok && c.A.Size <= MaxCompare && c.B.Size <= MaxCompare {
			byContent[c.B.content] = append(byContent[c.B.content], i)
		}
	}
	err = b.contents(ctx, wantB, func(p string, r io.Reader) error {
		for _, i := range byContent[p] {
			c := &changes[i]
			off, err := firstDiff(held[c.A.content], r)
			if err != nil {
				return err
			}
			*c.FirstDifference = off
			// The reader is spent: paths that share this content and the
			// same A content get the same answer; others stay unknown.
			for _, j := range byContent[p] {
				if j != i && changes[j].A.content == c.A.content {
					*changes[j].FirstDifference = off
				}
			}
			break
		}
		return nil
	})
	if err != nil {
		return &InputError{Input: nb, Err: err}
	}
	return nil
}

// firstDiff returns the offset of the first byte where r differs from a:
// where the shorter ends if one is a prefix of the other.
func firstDiff(a []byte, r io.Reader) (int64, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxCompare+1))
	if err != nil {
		return 0, err
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return int64(i), nil
		}
	}
	return int64(n), nil
}

// modeString formats the permission and special bits as octal.
func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// String is a one-line account of a change, as `cairn diff` prints it.
func (c Change) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %s", c.Kind, c.Path)
	switch c.Kind {
	case Added:
		b.WriteString("  " + describe(c.B))
	case Removed:
		b.WriteString("  " + describe(c.A))
	case Changed:
		var parts []string
		for _, w := range c.What {
			switch w {
			case AspectType:
				parts = append(parts, fmt.Sprintf("type %s -> %s", c.A.Type, c.B.Type))
			case AspectMode:
				parts = append(parts, fmt.Sprintf("mode %s -> %s", c.A.Mode, c.B.Mode))
			case AspectLink:
				parts = append(parts, fmt.Sprintf("link %q -> %q", c.A.Link, c.B.Link))
			case AspectContent:
				s := fmt.Sprintf("content %d -> %d bytes, %s -> %s", c.A.Size, c.B.Size, c.A.SHA256, c.B.SHA256)
				if c.FirstDifference != nil {
					if *c.FirstDifference >= 0 {
						s += fmt.Sprintf(", first difference at byte %d", *c.FirstDifference)
					} else {
						s += ", first difference not searched (too large)"
					}
				}
				parts = append(parts, s)
			}
		}
		b.WriteString("  " + strings.Join(parts, "; "))
	}
	return b.String()
}

func describe(e *Entry) string {
	switch e.Type {
	case TypeFile:
		return fmt.Sprintf("(file %s, %d bytes, %s)", e.Mode, e.Size, e.SHA256)
	case TypeSymlink:
		return fmt.Sprintf("(symlink -> %s)", e.Link)
	default:
		return fmt.Sprintf("(%s %s)", e.Type, e.Mode)
	}
}
