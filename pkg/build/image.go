package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-build/cairn/pkg/oci"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/rootfs"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// imageKeyVersion starts every image key's lines; bump it when they change.
const imageKeyVersion = "cairn image v1"

// Image is a written rootfs tarball.
type Image struct {
	Name   string
	Path   string // out/NAME.rootfs.sha256-HEX.tar.xz
	Size   int64  // compressed bytes
	Digest string // sha256 of the compressed file
	Cached bool

	Layout   string // out/NAME.oci, with out/NAME.docker.tar beside it
	Manifest string // the OCI manifest's digest
}

// ImageLines are the labelled inputs of an image's key: its root (the
// recipe's output digest), the epoch, the compressor and the explicit modes.
func ImageLines(img stack.Image, root string, epoch int64) []string {
	lines := []string{imageKeyVersion, "name " + img.Name, "root " + root,
		"epoch " + strconv.FormatInt(epoch, 10), "compressor " + rootfs.CompressorID,
		"oci " + oci.CompressorID, "config " + strconv.Quote(fmt.Sprintf("%+v", oci.ConfigFor(img, epoch)))}
	for _, m := range img.ModeList() {
		lines = append(lines, "mode "+m)
	}
	return lines
}

// WriteImage writes img's rootfs tarball into outDir from the output of its
// recipe (root, an output digest). The compressed file is kept in the store
// as a blob under an action key, so a second build only copies it again.
// What a cached image reuses is checked first (the blob in the store, the
// files already in outDir): a changed file is written again, never used.
// Older tarballs of the same image in outDir are removed once the new one
// is in place.
func (b *Builder) WriteImage(ctx context.Context, img stack.Image, root, outDir string) (*Image, error) {
	st := b.cfg.Store
	key := plan.KeyOf(ImageLines(img, root, b.cfg.Stack.SourceDateEpoch))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	if err := b.sweepOut(outDir); err != nil {
		return nil, err
	}
	res := &Image{Name: img.Name}
	if rec, err := st.Action(key); err == nil && rec.Blob != "" && rec.Manifest != "" {
		blob := store.Ref{Kind: store.Blob, Digest: rec.Blob}
		if err := st.Check(ctx, blob, store.Full(b.cfg.Verify)); err == nil {
			res.Digest, res.Cached, res.Manifest = rec.Blob, true, rec.Manifest
			if err := b.place(ctx, st.Path(blob), img.Name, rec.Blob, outDir, res); err != nil {
				return nil, err
			}
			var ok bool
			if res.Layout, ok = b.ociPresent(ctx, outDir, img.Name, rec); ok {
				return res, nil
			}
			// The layout was removed from out/ or changed: write both again.
			res = &Image{Name: img.Name}
		}
	}

	tree, ok := b.OutputPath(root)
	if !ok {
		return nil, fmt.Errorf("image %s: output %s of recipe %s is not in the store", img.Name, root, img.Recipe)
	}
	rootRef := store.Ref{Kind: store.Output, Digest: root}
	if err := st.Check(ctx, rootRef, store.Full(b.cfg.Verify), store.Epoch(b.cfg.Stack.SourceDateEpoch)); err != nil {
		return nil, fmt.Errorf("image %s: output of recipe %s: %w; the next build runs it again", img.Name, img.Recipe, err)
	}
	tmp, cleanup, err := st.TempDir("image-" + img.Name)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	opts := []rootfs.Option{rootfs.WithEpoch(b.cfg.Stack.SourceDateEpoch)}
	for p, m := range img.Modes {
		opts = append(opts, rootfs.WithMode(p, m))
	}
	w, err := rootfs.Write(ctx, tree, tmp, img.Name, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	sum := strings.TrimPrefix(w.Digest, "sha256:")
	f, err := os.Open(w.Path)
	if err != nil {
		return nil, err
	}
	blob, err := st.AddBlob(ctx, sum, f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	res.Digest = w.Digest
	if err := b.place(ctx, blob, img.Name, w.Digest, outDir, res); err != nil {
		return nil, err
	}
	// The OCI layout and docker-archive carry the same tar (same DiffID).
	var ociOpts []oci.Option
	if b.cfg.Hook != nil {
		ociOpts = append(ociOpts, oci.WithHook(b.cfg.Hook))
	}
	o, err := oci.WriteTree(ctx, tree, outDir, img.Name, oci.ConfigFor(img, b.cfg.Stack.SourceDateEpoch), opts, ociOpts...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	if o.DiffID != w.DiffID {
		return nil, fmt.Errorf("image %s: OCI layer DiffID %s differs from the rootfs tarball's %s", img.Name, o.DiffID, w.DiffID)
	}
	res.Layout, res.Manifest = o.Layout, o.Manifest
	rec := store.Record{Blob: w.Digest, Manifest: o.Manifest, Uses: []store.Ref{rootRef}}
	if o.Archive != "" {
		if rec.Archive, err = b.noteOut(ctx, o.Archive); err != nil {
			return nil, err
		}
	}
	if err := b.noteLayout(ctx, o.Layout); err != nil {
		return nil, err
	}
	if err := st.PutAction(key, rec); err != nil {
		return nil, err
	}
	return res, nil
}

// sweepOut removes, once per out directory, the temporary files a killed
// cairn left there (.NAME.oci.*.tmp, NAME.rootfs.*.tar.xz.tmp), unless
// another cairn is writing to it: each build holds a shared flock on
// OUT/.cairn.lock while it writes there.
func (b *Builder) sweepOut(outDir string) error {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	abs, _ := filepath.Abs(outDir)
	if b.outLocks == nil {
		b.outLocks = map[string]*os.File{}
	}
	if _, ok := b.outLocks[abs]; ok {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(abs, ".cairn.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		if err := store.SweepTemps(abs); err != nil {
			f.Close()
			return fmt.Errorf("out %s: %w", outDir, err)
		}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return err
	}
	b.outLocks[abs] = f
	return nil
}

// Close releases the out directories' locks.
func (b *Builder) Close() error {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	for k, f := range b.outLocks {
		f.Close()
		delete(b.outLocks, k)
	}
	return nil
}

// noteOut hashes a file just written to out/ and records its fingerprint,
// so that the next build notices a change to it.
func (b *Builder) noteOut(ctx context.Context, p string) (string, error) {
	d, err := store.FileSum(ctx, p)
	if err != nil {
		return "", err
	}
	return d, b.cfg.Store.NoteFile(p, d)
}

// noteLayout records the fingerprints of an OCI layout's blobs, which are
// named by their digests.
func (b *Builder) noteLayout(ctx context.Context, layout string) error {
	dir := filepath.Join(layout, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := b.cfg.Store.NoteFile(filepath.Join(dir, e.Name()), "sha256:"+e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// ociPresent reports whether outDir holds NAME.oci naming the record's
// manifest, with its blobs unchanged, and NAME.docker.tar unchanged.
func (b *Builder) ociPresent(ctx context.Context, outDir, name string, rec store.Record) (string, bool) {
	layout := filepath.Join(outDir, name+".oci")
	idx, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil || !strings.Contains(string(idx), `"`+rec.Manifest+`"`) {
		return "", false
	}
	dir := filepath.Join(layout, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	hasManifest := false
	for _, e := range ents {
		d := "sha256:" + e.Name()
		hasManifest = hasManifest || d == rec.Manifest
		if ok, err := b.cfg.Store.CheckFile(ctx, filepath.Join(dir, e.Name()), d, b.cfg.Verify); err != nil || !ok {
			return "", false
		}
	}
	if !hasManifest {
		return "", false
	}
	archive := filepath.Join(outDir, name+".docker.tar")
	if rec.Archive == "" {
		return "", false
	}
	if ok, err := b.cfg.Store.CheckFile(ctx, archive, rec.Archive, b.cfg.Verify); err != nil || !ok {
		return "", false
	}
	return layout, true
}

// place copies the blob to outDir/NAME.rootfs.sha256-HEX.tar.xz (a reflink
// where the filesystem has them: never a hard link, so that editing out/
// cannot edit the store) unless an unchanged copy is there, and removes
// stale tarballs of the same image.
func (b *Builder) place(ctx context.Context, blob, name, digest, outDir string, res *Image) error {
	final := filepath.Join(outDir, name+".rootfs."+strings.Replace(digest, ":", "-", 1)+".tar.xz")
	ok, err := b.cfg.Store.CheckFile(ctx, final, digest, b.cfg.Verify)
	if err != nil {
		return err
	}
	if ok && sameFile(final, blob) {
		ok = false // a hard link an older cairn made: replace it by a copy
	}
	if !ok {
		tmp := final + ".tmp"
		os.Remove(tmp)
		if err := copyTo(blob, tmp, func() { b.hook("xz") }); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("image %s: %w", name, err)
		}
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
		if err := b.cfg.Store.NoteFile(final, digest); err != nil {
			return err
		}
	}
	fi, err := os.Stat(final)
	if err != nil {
		return err
	}
	res.Path, res.Size = final, fi.Size()
	stale, _ := filepath.Glob(filepath.Join(outDir, name+".rootfs.sha256-*.tar.xz"))
	for _, s := range stale {
		if s != final {
			os.Remove(s)
		}
	}
	return nil
}

// copyTo copies src to a new file dst, by reflink (FICLONE) where the
// filesystem can share the blocks copy-on-write, else byte by byte; mid is
// called once dst exists.
func copyTo(src, dst string, mid func()) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	mid()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sameFile reports whether a and b are one inode.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
