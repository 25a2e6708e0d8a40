package attest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ulikunitz/xz"
)

// File is one file of an image, as the SBOM lists it. SPDX 2.3 requires a
// SHA1 of every file, which rootfs.Entry does not carry: ReadFiles computes
// both digests in one pass over the tarball.
type File struct {
	Path   string // slash-separated, no leading "./" or "/"
	SHA256 string // "sha256:…"
	SHA1   string // lowercase hex
	Link   string // for a hard link, the earlier file it names
}

// ErrSparse refuses a sparse tar entry: a few bytes of header can declare
// terabytes of zeros.
var ErrSparse = errors.New("sparse entries are not read")

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// ReadFiles lists the regular files and hard links of a rootfs tarball
// (xz-compressed or plain) with their SHA256 and SHA1, sorted by path.
// Directories, symbolic links and special files have no content to list.
func ReadFiles(ctx context.Context, tarball string) ([]File, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files, err := readFiles(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tarball, err)
	}
	return files, nil
}

// ReadImage reads a rootfs tarball once and returns it as an Image: its
// files (as ReadFiles), the sha256 of its bytes and of its uncompressed tar
// (the DiffID). The caller adds Recipe and OCIManifest where it knows them.
func ReadImage(ctx context.Context, name, tarball string) (Image, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return Image{}, err
	}
	defer f.Close()
	raw, tarSum := sha256.New(), sha256.New()
	files, err := readFilesTee(ctx, io.TeeReader(f, raw), tarSum)
	if err == nil {
		// What the readers left unread (padding, trailing blocks) counts.
		_, err = io.Copy(io.Discard, io.TeeReader(f, raw))
	}
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", tarball, err)
	}
	return Image{
		Name:    name,
		Tarball: filepath.Base(tarball),
		Digest:  "sha256:" + hex.EncodeToString(raw.Sum(nil)),
		DiffID:  "sha256:" + hex.EncodeToString(tarSum.Sum(nil)),
		Files:   files,
	}, nil
}

func readFiles(ctx context.Context, r io.Reader) ([]File, error) {
	return readFilesTee(ctx, r, io.Discard)
}

// readFilesTee lists r's files and writes the uncompressed tar, all of it,
// to tarOut.
func readFilesTee(ctx context.Context, r io.Reader, tarOut io.Writer) ([]File, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var plain io.Reader = br
	if magic, _ := br.Peek(len(xzMagic)); bytes.Equal(magic, xzMagic) {
		zr, err := xz.ReaderConfig{}.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		plain = zr
	}
	plain = io.TeeReader(plain, tarOut)
	tr := tar.NewReader(plain)
	var out []File
	byPath := map[string]int{}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after entry %d: %w", n, err)
		}
		if isSparse(hdr) {
			return nil, fmt.Errorf("entry %s: %w", hdr.Name, ErrSparse)
		}
		p := cleanEntry(hdr.Name)
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("entry %s: listed twice", p)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			h256, h1 := sha256.New(), sha1.New()
			got, err := io.Copy(io.MultiWriter(h256, h1), tr)
			if err != nil {
				return nil, fmt.Errorf("entry %s: %w", p, err)
			}
			if got != hdr.Size {
				return nil, fmt.Errorf("entry %s: %d bytes, header says %d", p, got, hdr.Size)
			}
			byPath[p] = len(out)
			out = append(out, File{Path: p, SHA256: "sha256:" + hex.EncodeToString(h256.Sum(nil)), SHA1: hex.EncodeToString(h1.Sum(nil))})
		case tar.TypeLink:
			target := cleanEntry(hdr.Linkname)
			i, ok := byPath[target]
			if !ok || out[i].Link != "" {
				return nil, fmt.Errorf("entry %s: hard link to %s, which is no earlier file", p, target)
			}
			byPath[p] = len(out)
			out = append(out, File{Path: p, SHA256: out[i].SHA256, SHA1: out[i].SHA1, Link: target})
		}
	}
	if _, err := io.Copy(io.Discard, plain); err != nil {
		return nil, fmt.Errorf("after the last entry: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
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

func cleanEntry(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// verificationCode is SPDX's package verification code: the SHA1 of the
// files' sorted SHA1s, concatenated.
func verificationCode(files []File) string {
	sums := make([]string, 0, len(files))
	for _, f := range files {
		sums = append(sums, f.SHA1)
	}
	sort.Strings(sums)
	h := sha1.New()
	for _, s := range sums {
		io.WriteString(h, s)
	}
	return hex.EncodeToString(h.Sum(nil))
}
