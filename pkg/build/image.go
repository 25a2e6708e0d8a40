package build

import (
	"context"
	"fmt"
	"github.com/cairn-build/cairn/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-build/cairn/pkg/oci"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/rootfs"
	"github.com/cairn-build/cairn/pkg/stack"
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
// as a blob under an action key, so a second build only links it again.
// Older tarballs of the same image in outDir are removed once the new one
// is in place.
func (b *Builder) WriteImage(ctx context.Context, img stack.Image, root, outDir string) (*Image, error) {
	key := plan.KeyOf(ImageLines(img, root, b.cfg.Stack.SourceDateEpoch))
	h, _ := hexOf(key)
	record := filepath.Join(b.cfg.Store.Dir(), "actions", h)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	res := &Image{Name: img.Name}
	if data, err := os.ReadFile(record); err == nil {
		f := strings.Fields(string(data))
		sum := ""
		if len(f) > 0 {
			sum = strings.TrimPrefix(f[0], "sha256:")
		}
		if blob, ok := b.cfg.Store.Blob(sum); ok && len(f) == 2 {
			res.Digest, res.Cached, res.Manifest = "sha256:"+sum, true, f[1]
			if err := b.place(blob, img.Name, sum, outDir, res); err != nil {
				return nil, err
			}
			if res.Layout, ok = ociPresent(outDir, img.Name, res.Manifest); ok {
				return res, nil
			}
			// The layout was removed from out/: write both again.
			res = &Image{Name: img.Name}
		}
	}

	tree, ok := b.OutputPath(root)

	if !ok {
		return nil, fmt.Errorf("image %s: output %s of recipe %s is not in the store", img.Name, root, img.Recipe)
	}
	tmp, cleanup, err := b.cfg.Store.TempDir("image-" + img.Name)
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
	blob, err := b.cfg.Store.AddBlob(ctx, sum, f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	res.Digest = w.Digest
	if err := b.place(blob, img.Name, sum, outDir, res); err != nil {
		return nil, err
	}
	// The OCI layout and docker-archive carry the same tar (same DiffID).
	o, err := oci.WriteTree(ctx, tree, outDir, img.Name, oci.ConfigFor(img, b.cfg.Stack.SourceDateEpoch), opts)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	if o.DiffID != w.DiffID {
		return nil, fmt.Errorf("image %s: OCI layer DiffID %s differs from the rootfs tarball's %s", img.Name, o.DiffID, w.DiffID)
	}
	res.Layout, res.Manifest = o.Layout, o.Manifest
	if err := atomicfile.WriteBytes(record, []byte(w.Digest+" "+o.Manifest+"\n"), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// ociPresent reports whether outDir holds NAME.oci naming manifest, with
// its blob, and NAME.docker.tar.
func ociPresent(outDir, name, manifest string) (string, bool) {
	layout := filepath.Join(outDir, name+".oci")
	idx, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil || !strings.Contains(string(idx), `"`+manifest+`"`) {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(manifest, "sha256:"))); err != nil {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(outDir, name+".docker.tar")); err != nil {
		return "", false
	}
	return layout, true
}

// place puts the blob at outDir/NAME.rootfs.sha256-HEX.tar.xz (a hard link
// where the filesystem allows, else a copy) and removes stale tarballs of
// the same image.
func (b *Builder) place(blob, name, sum, outDir string, res *Image) error {
	final := filepath.Join(outDir, name+".rootfs.sha256-"+sum+".tar.xz")
	if _, err := os.Lstat(final); err != nil {
		tmp := final + ".tmp"
		os.Remove(tmp)
		if err := os.Link(blob, tmp); err != nil {
			if err := copyTo(blob, tmp); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, final); err != nil {
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

func copyTo(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
