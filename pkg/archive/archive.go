// Package archive reads and unpacks tar archives (plain, gzip, bzip2 or xz,
// told apart by their magic bytes) without trusting them.
//
// Every member goes through one validator, Walk, which both Unpack and the
// digest package use, so that an archive cairn would refuse to unpack can
// never hash "successfully" either. The validator cleans each name (no
// absolute paths, no ".." component, no name over 4096 bytes or component
// over 255), strips leading components, applies an optional name mapping, and
// keeps a map of every path the archive has produced so far, including the
// directories that names imply. Against that map it refuses an entry that
// would be written through an earlier symlink, a duplicate that changes a
// path's type (file, directory, symlink), a hardlink that does not name an
// earlier regular file, and a symlink whose target, read lexically from the
// link's own directory, leaves the tree; once the whole archive is read,
// every symlink is resolved through the others too, so that a chain of
// links each harmless alone cannot climb out. Device nodes, FIFOs, sparse members,
// setuid/setgid/sticky bits (unless ClearSpecialBits) and members past the
// size and count limits are refused too. Each refusal is an *EntryError
// naming the archive and the member, with a sentinel Reason for errors.Is.
//
// Unpack then never follows a symlink: every filesystem call goes through an
// os.Root opened on the destination, every parent component is checked with
// Lstat before it is used, and files are created with O_EXCL after any old
// entry is removed, so a hardlinked inode is never written through either.
// It extracts into a temporary sibling of DIR and renames it into place only
// when the whole archive has been read, so on any error DIR is left exactly
// as it was. Owners, mtimes and most mode bits are not content and are not
// restored: files are 0644 or 0755, directories 0755.
package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
)

// Compression is the outer compression of an archive stream.
type Compression uint8

const (
	None Compression = iota
	Gzip
	Bzip2
	Xz
)

func (c Compression) String() string {
	switch c {
	case None:
		return "tar"
	case Gzip:
		return "gzip"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// xzDictCap bounds the LZMA dictionary a stream may ask for: xz -9 uses
// 64 MiB, so 128 MiB accepts every preset while refusing the multi-GiB
// allocation a hostile header could request (CVE-2025-58058). In
// ulikunitz/xz ReaderConfig.DictCap is only a floor that a block header can
// raise, so the cap is enforced by checkXzDict on the stream's first block.
const xzDictCap = 128 << 20

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Open detects r's compression by its magic bytes and returns the
// decompressed tar stream. Anything that is not gzip, bzip2 or xz is
// returned as is and taken to be a plain tar; the tar reader rejects it if
// it is not.
func Open(r io.Reader) (io.Reader, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicXz))
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, None, err
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("gzip: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(head, magicBzip2):
		return bzip2.NewReader(br), Bzip2, nil
	case bytes.HasPrefix(head, magicXz):
		if err := checkXzDict(br); err != nil {
			return nil, Xz, err
		}
		zr, err := xz.ReaderConfig{}.NewReader(br)
		if err != nil {
			return nil, Xz, fmt.Errorf("xz: %w", err)
		}
		return zr, Xz, nil
	}
	return br, None, nil
}

// checkXzDict peeks at the first block header of an xz stream and refuses
// an LZMA2 dictionary over xzDictCap. Layout (xz file format 1.2.1): a
// 12-byte stream header, then the block header: size byte, flags, optional
// compressed and uncompressed sizes (varints), then per filter its id, the
// size of its properties and the properties; LZMA2 (id 0x21) has one
// property byte encoding the dictionary size.
func checkXzDict(br *bufio.Reader) error {
	buf, _ := br.Peek(12 + 1024)
	if len(buf) < 14 {
		return nil // too short: the decoder reports it
	}
	b := buf[12:]
	if b[0] == 0 {
		return nil // the index: an empty stream
	}
	hdrLen := (int(b[0]) + 1) * 4
	if hdrLen > len(b) {
		return nil
	}
	h := b[1:hdrLen]
	flags := h[0]
	h = h[1:]
	varint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && i < len(h); i++ {
			v |= uint64(h[i]&0x7f) << (7 * i)
			if h[i]&0x80 == 0 {
				h = h[i+1:]
				return v, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	if flags&0x80 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	nfilters := int(flags&0x03) + 1
	for i := 0; i < nfilters; i++ {
		id, ok := varint()
		if !ok {
			return nil
		}
		n, ok := varint()
		if !ok || n > uint64(len(h)) {
			return nil
		}
		props := h[:n]
		h = h[n:]
		if id == 0x21 && n == 1 {
			p := props[0]
			if p > 40 {
				return fmt.Errorf("xz: bad LZMA2 dictionary size %d", p)
			}
			var size uint64
			if p == 40 {
				size = 1<<32 - 1
			} else {
				size = uint64(2|p&1) << (p/2 + 11)
			}
			if size > xzDictCap {
				return fmt.Errorf("xz: dictionary of %d bytes exceeds the limit of %d", size, xzDictCap)
			}
		}
	}
	return nil
}
