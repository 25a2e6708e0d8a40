package seed

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	type result struct {
		tar  []byte
		comp deb.Compression
		err  error
	}
	n := len(lock.Packages)
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	// A token per package in flight bounds both the CPUs used and the
	// decompressed bytes held in memory.
	tokens := make(chan struct{}, o.jobs)
	go func() {
		for i, p := range lock.Packages {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				b, c, err := decompressDeb(ctx, files[p.Name])
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
		st, err := archive.Unpack(ctx, bytes.NewReader(r.tar), tree,
			archive.Name(p.id()+" data.tar"),
			archive.MapName(mapName),
			archive.RootfsLinks(),
			archive.Merge())
		<-tokens
		if err != nil {
			return err
		}
		o.progress(Event{Kind: EventUnpacked, Package: p.id(), Source: string(r.comp), Bytes: st.Bytes})
	}
	return nil
}

// decompressDeb reads the .deb at file and returns its data.tar,
// decompressed. Reading it whole first means a corrupt xz stream fails
// here, before anything of the package reaches the tree.
func decompressDeb(ctx context.Context, file string) ([]byte, deb.Compression, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	rc, comp, err := deb.Data(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return nil, comp, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ctxReader{ctx, rc}); err != nil {
		return nil, comp, fmt.Errorf("data.tar.%s: %w", comp, err)
	}
	return buf.Bytes(), comp, nil
}
