package diff

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/cairn-build/cairn/internal/ctxio"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// open picks the reader for the input at p by what it is.
func open(p string) (tree, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if _, err := os.Lstat(filepath.Join(p, "oci-layout")); err == nil {
			return &ociTree{dir: p}, nil
		}
		return &dirTree{dir: p}, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, ErrFormat
	}
	return &tarTree{open: func() (io.ReadCloser, error) { return os.Open(p) }}, nil
}

// tarTree is a tar stream, xz- or gzip-compressed or plain, that can be
// opened again for the second pass.
type tarTree struct {
	open func() (io.ReadCloser, error)
}

var (
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	gzipMagic = []byte{0x1f, 0x8b}
)

// decompressed returns the tar bytes of r, decompressing by magic number.
func decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(len(xzMagic))
	switch {
	case bytes.HasPrefix(magic, xzMagic):
		zr, err := xz.ReaderConfig{}.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	}
	return br, nil
}

func (t *tarTree) list(ctx context.Context) (map[string]*Entry, error) {
	f, err := t.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := decompressed(f)
	if err != nil {
		return nil, err
	}
	es, err := rootfs.List(ctxio.Reader(ctx, r))
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("%w: no tar entries", ErrFormat)
	}
	out := make(map[string]*Entry, len(es))
	for _, e := range es {
		if e.Path == "" {
			continue
		}
		n := &Entry{Mode: modeString(e.Mode), Size: e.Size, SHA256: e.SHA256, content: e.Path}
		switch e.Type {
		case rootfs.TypeFile:
			n.Type = TypeFile
		case rootfs.TypeHardlink:
			n.Type, n.content = TypeFile, e.Link
		case rootfs.TypeDir:
			n.Type = TypeDir
		case rootfs.TypeSymlink:
			n.Type, n.Link = TypeSymlink, e.Link
		default:
			n.Type = TypeOther
		}
		if n.Type != TypeFile {
			n.Size, n.SHA256 = 0, ""
		}
		out[e.Path] = n
	}
	return out, nil
}

func (t *tarTree) contents(ctx context.Context, want map[string]bool, fn func(string, io.Reader) error) error {
	f, err := t.open()
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompressed(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(ctxio.Reader(ctx, r))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Typeflag == tar.TypeReg && want[p] {
			if err := fn(p, tr); err != nil {
				return fmt.Errorf("entry %s: %w", p, err)
			}
		}
	}
}

// ociTree is an OCI image layout holding one image of one layer.
type ociTree struct {
	dir   string
	layer *tarTree
}

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

func (o *ociTree) blob(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if _, err := hex.DecodeString(h); !ok || err != nil || len(h) != 64 {
		return "", fmt.Errorf("%w: blob digest %q is not sha256:HEX", ErrFormat, d)
	}
	return filepath.Join(o.dir, "blobs", "sha256", h), nil
}

// readJSON reads a small JSON document, checking a blob's digest when want
// is set.
func readJSON(p, want string, v any) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return err
	}
	if want != "" {
		if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != want {
			return fmt.Errorf("blob %s: content does not match its digest", want)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(p), err)
	}
	return nil
}

func (o *ociTree) resolve() error {
	if o.layer != nil {
		return nil
	}
	var idx struct {
		Manifests []ociDescriptor `json:"manifests"`
	}
	if err := readJSON(filepath.Join(o.dir, "index.json"), "", &idx); err != nil {
		return err
	}
	if len(idx.Manifests) != 1 {
		return fmt.Errorf("%w: index.json has %d manifests, want 1", ErrFormat, len(idx.Manifests))
	}
	mp, err := o.blob(idx.Manifests[0].Digest)
	if err != nil {
		return err
	}
	var m struct {
		Layers []ociDescriptor `json:"layers"`
	}
	if err := readJSON(mp, idx.Manifests[0].Digest, &m); err != nil {
		return err
	}
	if len(m.Layers) != 1 {
		return fmt.Errorf("%w: manifest %s has %d layers, want 1", ErrFormat, idx.Manifests[0].Digest, len(m.Layers))
	}
	if strings.Contains(m.Layers[0].MediaType, "zstd") {
		return fmt.Errorf("%w: layer media type %s is not read", ErrFormat, m.Layers[0].MediaType)
	}
	lp, err := o.blob(m.Layers[0].Digest)
	if err != nil {
		return err
	}
	o.layer = &tarTree{open: func() (io.ReadCloser, error) { return os.Open(lp) }}
	return nil
}

func (o *ociTree) list(ctx context.Context) (map[string]*Entry, error) {
	if err := o.resolve(); err != nil {
		return nil, err
	}
	return o.layer.list(ctx)
}

func (o *ociTree) contents(ctx context.Context, want map[string]bool, fn func(string, io.Reader) error) error {
	if err := o.resolve(); err != nil {
		return err
	}
	return o.layer.contents(ctx, want, fn)
}

// dirTree is a directory, walked without following symlinks.
type dirTree struct{ dir string }

func (d *dirTree) list(ctx context.Context) (map[string]*Entry, error) {
	root, err := os.OpenRoot(d.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	out := map[string]*Entry{}
	buf := make([]byte, 256<<10)
	err = fs.WalkDir(root.FS(), ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		e := &Entry{Mode: modeString(fi.Mode()), content: p}
		switch {
		case fi.Mode().IsRegular():
			e.Type, e.Size = TypeFile, fi.Size()
			if e.SHA256, err = hashFile(root, p, buf); err != nil {
				return err
			}
		case fi.IsDir():
			e.Type = TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = TypeSymlink
			if e.Link, err = root.Readlink(p); err != nil {
				return err
			}
		default:
			e.Type = TypeOther
		}
		out[p] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func hashFile(root *os.Root, p string, buf []byte) (string, error) {
	f, err := root.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func (d *dirTree) contents(ctx context.Context, want map[string]bool, fn func(string, io.Reader) error) error {
	root, err := os.OpenRoot(d.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for p := range want {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		err = fn(p, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}
