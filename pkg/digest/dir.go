package digest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// ErrSpecialFile is returned by FromDir for a device node, socket or FIFO:
// a source tree holds none, and no digest could describe one.
var ErrSpecialFile = errors.New("not a regular file, directory or symlink")

// DirOption configures FromDir.
type DirOption func(*dirConfig)

type dirConfig struct {
	skipGit bool
	workers int
}

// SkipGitDirs leaves out every directory named .git, as git itself does:
// use it for a git checkout, so that its tree hashes like the commit's.
func SkipGitDirs() DirOption { return func(c *dirConfig) { c.skipGit = true } }

// Workers sets how many files are hashed at once (default GOMAXPROCS).
func Workers(n int) DirOption { return func(c *dirConfig) { c.workers = n } }

// FromDir returns the manifest of the tree under dir. Symlinks under dir
// are recorded, never followed. Files are hashed in parallel.
func FromDir(ctx context.Context, dir string, opts ...DirOption) (Manifest, error) {
	c := &dirConfig{workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(c)
	}
	if c.workers < 1 {
		c.workers = 1
	}
	// The root is what the caller named, so a symlink to it is followed;
	// nothing under it ever is.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}

	var m Manifest
	bh := newBlobHasher()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			if c.skipGit && d.Name() == ".git" {
				return filepath.SkipDir
			}
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e := Entry{Path: rel, Kind: Symlink, Size: int64(len(target)), Target: target}
			bh.hashBytes(&e, []byte(target))
			m = append(m, e)
		case t.IsRegular():
			if c.skipGit && d.Name() == ".git" {
				return nil // a worktree's or submodule's gitdir pointer file
			}
			m = append(m, Entry{Path: rel, Kind: File})
		default:
			return fmt.Errorf("%s: %w", p, ErrSpecialFile)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	// WalkDir visits in lexical order per directory, which is not bytewise
	// order of full paths ("a/b" after "a.b").
	sortManifest(m)

	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := range m {
			if m[i].Kind == Symlink {
				continue
			}
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for w := 0; w < c.workers; w++ {
		g.Go(func() error {
			bh := newBlobHasher()
			buf := make([]byte, 128<<10)
			for i := range next {
				if err := hashFile(gctx, filepath.Join(dir, filepath.FromSlash(m[i].Path)), &m[i], bh, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return m, nil
}

// hashFile hashes one regular file, opened without following a symlink
// that may have replaced it since the walk, and fills e.
func hashFile(ctx context.Context, p string, e *Entry, bh *blobHasher, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", p, ErrSpecialFile)
	}
	e.Size = fi.Size()
	if fi.Mode()&0o100 != 0 {
		e.Kind = Exec
	}
	bh.start(e.Size)
	n, err := io.CopyBuffer(bh, io.LimitReader(f, e.Size+1), buf)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n != e.Size {
		return fmt.Errorf("%s: changed while being read (%d bytes, then %d)", p, e.Size, n)
	}
	bh.finish(e)
	return nil
}
