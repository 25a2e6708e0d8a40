package seed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// usrMerged are the top-level links of a merged-/usr root, made before any
// package is unpacked; a package's entry under one of them is rewritten to
// the usr/ path (see mapName).
var usrMerged = []struct{ name, target string }{
	{"bin", "usr/bin"},
	{"lib", "usr/lib"},
	{"lib64", "usr/lib64"},
	{"sbin", "usr/sbin"},
}

// mapName rewrites a cleaned data.tar member name into the merged-/usr
// tree: "bin/sh" becomes "usr/bin/sh", "usr/bin/gcc" stays. A package's
// own "bin" directory maps to "usr/bin", so it never replaces the link.
func mapName(name string) (string, error) {
	for _, m := range usrMerged {
		if name == m.name {
			return m.target, nil
		}
		if rest, ok := strings.CutPrefix(name, m.name+"/"); ok {
			return m.target + "/" + rest, nil
		}
	}
	return name, nil
}

// Build makes the seed described by the lock file at lockFile in dest and
// returns its tree digest. dest must not exist, or be an empty directory;
// the tree is made in a temporary sibling and renamed onto dest only when
// complete, so a failed or cancelled Build leaves dest as it was.
func Build(ctx context.Context, lockFile, dest string, opts ...Option) (string, error) {
	lock, err := ParseLockFile(lockFile)
	if err != nil {
		return "", err
	}
	return BuildLock(ctx, lock, dest, opts...)
}

// BuildLock is Build from a parsed lock.
func BuildLock(ctx context.Context, lock *Lock, dest string, opts ...Option) (digest string, err error) {
	o := defaults()
	for _, f := range opts {
		f(&o)
	}
	dest = filepath.Clean(dest)
	if err := checkDest(dest); err != nil {
		return "", err
	}
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return "", err
	}
	defer func() {
		if work != "" {
			os.RemoveAll(work)
		}
	}()

	debDir := ""
	if o.cache == "" {
		debDir = filepath.Join(work, "debs")
	}
	files, err := fetchAll(ctx, lock, debDir, &o)
	if err != nil {
		return "", fmt.Errorf("seed %s: %w", lock.File, err)
	}

	tree := filepath.Join(work, "root")
	if err := unpackAll(ctx, lock, files, tree, &o); err != nil {
		return "", fmt.Errorf("seed %s: %w", lock.File, err)
	}
	if err := makeLinks(lock, tree, &o); err != nil {
		return "", err
	}
	if debDir != "" {
		if err := os.RemoveAll(debDir); err != nil {
			return "", err
		}
	}
	digest, err = treeDigest(ctx, tree)
	if err != nil {
		return "", fmt.Errorf("seed %s: digest: %w", lock.File, err)
	}
	o.progress(Event{Kind: EventDigested, Source: digest})

	// The root goes onto dest; work (now holding nothing else) is removed.
	if err := os.Rename(tree, dest); err != nil {
		return "", fmt.Errorf("seed: put the tree in place: %w", err)
	}
	return digest, nil
}

func checkDest(dest string) error {
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("seed: %s exists and is not a directory", dest)
	}
	ents, err := os.ReadDir(dest)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("seed: %s exists and is not empty", dest)
	}
	return nil
}

// makeLinks makes the lock's links, in lock order, through an os.Root so
// that no path can reach outside the tree. A link whose path a package
// already provides means the lock no longer matches its packages.
func makeLinks(lock *Lock, tree string, o *options) error {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, l := range lock.Links {
		if _, err := root.Lstat(l.Path); err == nil {
			return &LockError{File: lock.File, Line: l.Line, Msg: fmt.Sprintf("symlink %s: a package already provides it; re-lock with scripts/lock-seed.sh", l.Path)}
		}
		if err := root.MkdirAll(filepath.Dir(l.Path), 0o755); err != nil {
			return &LockError{File: lock.File, Line: l.Line, Msg: fmt.Sprintf("symlink %s: %v", l.Path, err)}
		}
		if err := root.Symlink(l.Target, l.Path); err != nil {
			return &LockError{File: lock.File, Line: l.Line, Msg: fmt.Sprintf("symlink %s: %v", l.Path, err)}
		}
		o.progress(Event{Kind: EventLinked, Package: l.Path, Source: l.Target})
	}
	return nil
}
