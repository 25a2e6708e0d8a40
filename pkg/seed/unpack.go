package seed

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-build/cairn/internal/ctxio"
	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/deb"
	"github.com/cairn-build/cairn/pkg/digest"
)

// treeDigest is the seed's identity: pkg/digest's "cairn tree v1" of the
// unpacked tree ("sha256:HEX"). It records files, executable bits and
// symlinks, not directories, owners or times.
func treeDigest(ctx context.Context, dir string) (string, error) {
	m, err := digest.FromDir(ctx, dir)
	if err != nil {
		return "", err
	}
	return m.TreeDigest(), nil
}

// mountPoints are the empty directories of the skeleton.
var mountPoints = []string{"dev", "proc", "tmp"}

// unpackAll makes the merged-/usr skeleton in tree and unpacks every
// package into it, in lock order. Decompression (the dear part: xz in pure
// Go) runs ahead on up to o.jobs packages at once; the writes into the
// tree stay in lock order, one package at a time, so that where two
// packages ship one path the later name wins, the same on every run.
func unpackAll(ctx context.Context, lock *Lock, files map[string]string, tree string, o *options) error {
	if err := os.Mkdir(tree, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tree, 0o755); err != nil { // not the umask's to decide
		return err
	}
	for _, m := range usrMerged {
		if err := os.MkdirAll(filepath.Join(tree, m.target), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(tree, m.target), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(m.target, filepath.Join(tree, m.name)); err != nil {
			return err
		}
	}
	// Mount points a chroot or sandbox of the seed needs: no package of
	// the closure ships them (base-files would).
	for _, d := range append([]string{"usr"}, mountPoints...) {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Decompressed data tars wait their turn on disk, in a spool beside
	// the tree (removed with it), not in memory: gcc's alone is 70 MB.
	spool := filepath.Join(filepath.Dir(tree), "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	type result struct {
		tar  string
		comp deb.Compression
		err  error
	}
	n := len(lock.Packages)
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	// A token per package in flight bounds the CPUs used and the spool.
	tokens := make(chan struct{}, o.jobs)
	go func() {
		for i, p := range lock.Packages {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				b, c, err := decompressDeb(ctx, files[p.Name], spool)
				results[i] <- result{b, c, err}
			}()
		}
	}()
	for i, p := range lock.Packages {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			<-tokens
			// The bytes are the lock's (verified), so the package, not
			// the file it came from, is what the error names.
			return fmt.Errorf("%s .deb: %w", p.id(), r.err)
		}
		st, err := unpackTar(ctx, r.tar, tree, p)
		<-tokens
		if err != nil {
			return err
		}
		o.progress(Event{Kind: EventUnpacked, Package: p.id(), Source: string(r.comp), Bytes: st.Bytes})
	}
	return nil
}

func unpackTar(ctx context.Context, file, tree string, p Package) (archive.Stats, error) {
	defer os.Remove(file)
	f, err := os.Open(file)
	if err != nil {
		return archive.Stats{}, err
	}
	defer f.Close()
	return archive.Unpack(ctx, bufio.NewReaderSize(f, 256<<10), tree,
		archive.Name(p.id()+" data.tar"),
		archive.MapName(mapName),
		archive.RootfsLinks(),
		archive.Merge())
}

// decompressDeb reads the .deb at file and writes its data.tar,
// decompressed, into spool. Decompressing it whole first means a corrupt
// xz stream fails here, before anything of the package reaches the tree.
func decompressDeb(ctx context.Context, file, spool string) (string, deb.Compression, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	rc, comp, err := deb.Data(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return "", comp, err
	}
	defer rc.Close()
	out, err := os.CreateTemp(spool, "data-*.tar")
	if err != nil {
		return "", comp, err
	}
	_, err = io.Copy(out, ctxio.Reader(ctx, rc))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", comp, fmt.Errorf("data.tar.%s: %w", comp, err)
	}
	return out.Name(), comp, nil
}
