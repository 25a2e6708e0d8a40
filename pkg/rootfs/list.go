package rootfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/ulikunitz/xz"
)

// Type is the kind of a listed entry.
type Type string

const (
	TypeDir      Type = "dir"
	TypeFile     Type = "file"
	TypeSymlink  Type = "symlink"
	TypeHardlink Type = "hardlink"
	TypeOther    Type = "other" // devices, FIFOs: never written by this package
)

// Entry is one member of a rootfs tarball.
type Entry struct {
	Path   string      // slash-separated, no leading "./" or "/", no trailing "/"
	Type   Type        //
	Mode   fs.FileMode // permission bits plus setuid, setgid, sticky
	Size   int64       // file bytes; for a hard link, its target's
	SHA256 string      // "sha256:…" of a file's bytes; for a hard link, its target's
	Link   string      // symlink target, or the path a hard link names
}

// ErrSparse refuses a sparse tar entry: a few KiB of header can declare
// terabytes of zeros.
var ErrSparse = errors.New("sparse entries are not read")

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// List reads a rootfs tarball, xz-compressed or plain, and returns its entries
// in archive order. A hard link must name an earlier file entry.
func List(r io.Reader) ([]Entry, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(len(xzMagic))
	var tr *tar.Reader
	if bytes.Equal(magic, xzMagic) {
		zr, err := xz.ReaderConfig{}.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		tr = tar.NewReader(zr)
	} else {
		tr = tar.NewReader(br)
	}
	var out []Entry
	files := map[string]int{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("after entry %d: %w", len(out), err)
		}
		if isSparse(hdr) {
			return nil, fmt.Errorf("entry %s: %w", hdr.Name, ErrSparse)
		}
		e := Entry{Path: cleanEntry(hdr.Name), Mode: modeOf(hdr.Mode), Link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.Type = TypeDir
		case tar.TypeReg:
			e.Type, e.Size = TypeFile, hdr.Size
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, fmt.Errorf("entry %s: %w", e.Path, err)
			}
			if n != hdr.Size {
				return nil, fmt.Errorf("entry %s: %d bytes, header says %d", e.Path, n, hdr.Size)
			}
			e.SHA256 = digestOf(h)
			files[e.Path] = len(out)
		case tar.TypeSymlink:
			e.Type = TypeSymlink
		case tar.TypeLink:
			e.Type, e.Link = TypeHardlink, cleanEntry(hdr.Linkname)
			i, ok := files[e.Link]
			if !ok {
				return nil, fmt.Errorf("entry %s: hard link to %s, which is no earlier file", e.Path, e.Link)
			}
			e.Size, e.SHA256 = out[i].Size, out[i].SHA256
		default:
			e.Type = TypeOther
		}
		out = append(out, e)
	}
}

// ListFile lists the rootfs tarball at name.
func ListFile(name string) ([]Entry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	es, err := List(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return es, nil
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func cleanEntry(name string) string {
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p
}

func modeOf(m int64) fs.FileMode {
	v := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		v |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		v |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		v |= fs.ModeSticky
	}
	return v
}
