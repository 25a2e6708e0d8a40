// Package deb reads Debian binary packages (.deb) without dpkg.
//
// A .deb is an ar archive of three members, in this order: debian-binary
// (the format version, "2.0\n"), control.tar[.EXT] (metadata and maintainer
// scripts) and data.tar[.EXT] (the files). dpkg allows extra members whose
// names start with "_" between them; they are skipped. Anything else — a
// missing or misplaced member, an unknown compression, a truncated
// archive — is refused with a *FormatError, since a seed must come from
// exactly the bytes the lock pins and a malformed package is not those.
//
// The ar reader is written here rather than taken from a library: the
// format is a page long, and owning it means every field is checked
// (sizes are decimal and bounded, names are plain file names) and no
// timestamp or owner from the archive is ever exposed.
//
// Data returns the data member as an uncompressed tar stream; extracting
// it safely is pkg/archive's job, not this package's. Compressions read:
// xz (through github.com/ulikunitz/xz), gzip and none. zstd, which some
// Ubuntu packages use, is recognised and refused by name: no package of
// Debian bookworm uses it.
package deb

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ulikunitz/xz"
)

// Compression names a member's compression, from its file name extension.
type Compression string

const (
	None Compression = "none"
	XZ   Compression = "xz"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// ErrUnsupportedCompression is wrapped by Data's error when the data
// member is compressed in a way this package does not read.
var ErrUnsupportedCompression = errors.New("unsupported compression")

func compressionOf(member, base string) (Compression, bool) {
	switch strings.TrimPrefix(member, base) {
	case "":
		return None, true
	case ".xz":
		return XZ, true
	case ".gz":
		return Gzip, true
	case ".zst":
		return Zstd, true
	}
	return "", false
}

// Data reads r, a .deb, up to its data member and returns that member's
// decompressed tar stream with the compression it used. The stream is
// valid until r is read elsewhere; Close releases the decompressor.
func Data(r io.Reader) (io.ReadCloser, Compression, error) {
	ar, err := NewArReader(r)
	if err != nil {
		return nil, "", err
	}
	h, err := ar.Next()
	if err != nil {
		return nil, "", eofIsFormat(err, ar, "empty archive")
	}
	if h.Name != "debian-binary" {
		return nil, "", &FormatError{Offset: ar.off - arHeaderSize, Member: h.Name, Msg: "first member is not debian-binary"}
	}
	var ver [4]byte
	if h.Size < 4 || h.Size > 64 {
		return nil, "", &FormatError{Offset: ar.off, Member: h.Name, Msg: fmt.Sprintf("size %d is not a format version", h.Size)}
	}
	if _, err := io.ReadFull(ar, ver[:]); err != nil {
		return nil, "", err
	}
	if string(ver[:2]) != "2." {
		return nil, "", &FormatError{Offset: ar.off, Member: h.Name, Msg: fmt.Sprintf("format version %q, want 2.x", strings.TrimSpace(string(ver[:])))}
	}

	sawControl := false
	for {
		h, err := ar.Next()
		if err != nil {
			return nil, "", eofIsFormat(err, ar, "no data member")
		}
		switch {
		case strings.HasPrefix(h.Name, "_"):
			continue
		case strings.HasPrefix(h.Name, "control.tar"):
			if _, ok := compressionOf(h.Name, "control.tar"); !ok || sawControl {
				return nil, "", &FormatError{Offset: ar.off - arHeaderSize, Member: h.Name, Msg: "unexpected control member"}
			}
			sawControl = true
		case strings.HasPrefix(h.Name, "data.tar"):
			if !sawControl {
				return nil, "", &FormatError{Offset: ar.off - arHeaderSize, Member: h.Name, Msg: "data member before control member"}
			}
			c, ok := compressionOf(h.Name, "data.tar")
			if !ok {
				return nil, "", &FormatError{Offset: ar.off - arHeaderSize, Member: h.Name, Msg: "unknown data compression"}
			}
			// The xz decoder reads its input a byte at a time; a buffer
			// here keeps that off the ar reader's bookkeeping.
			rc, err := decompress(bufio.NewReaderSize(ar, 64<<10), c)
			if err != nil {
				return nil, c, fmt.Errorf("member %q: %w", h.Name, err)
			}
			return rc, c, nil
		default:
			return nil, "", &FormatError{Offset: ar.off - arHeaderSize, Member: h.Name, Msg: "unexpected member"}
		}
	}
}

func eofIsFormat(err error, ar *ArReader, msg string) error {
	if err == io.EOF {
		return &FormatError{Offset: ar.off, Msg: msg}
	}
	return err
}

func decompress(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case None:
		return io.NopCloser(r), nil
	case XZ:
		// The library's default dictionary cap (8 MiB buffers, streams
		// checked) is what dpkg-deb's xz -6 needs; v0.5.14+ bounds
		// hostile dictionary sizes (CVE-2025-58058).
		x, err := xz.ReaderConfig{}.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(x), nil
	case Gzip:
		return gzip.NewReader(r)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedCompression, c)
}
