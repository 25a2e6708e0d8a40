// Package rootfs turns a directory tree (a step's /out) into a deterministic
// rootfs tarball, NAME.rootfs.sha256-HEX.tar.xz, and lists such tarballs.
//
// The tree is written by a build, so it is read as hostile: every entry is
// opened relative to its parent directory's descriptor with O_NOFOLLOW, a
// symbolic link is stored as a link and never followed, and device nodes,
// FIFOs, sockets and setuid/setgid files are refused with the path named.
//
// Determinism is by construction, not by cleaning up what the host reports:
// headers are built from scratch (never tar.FileInfoHeader) with uid/gid 0,
// empty user and group names, no access or change times, and USTAR as the
// format, falling back to PAX (a "path" or "linkpath" record, nothing else)
// only for an entry whose name USTAR cannot hold. Entries are sorted bytewise
// by path, component by component (a, a/b, a-b, as GNU tar --sort=name), so
// a directory comes first and its whole subtree follows it. Modes are normalised: directories
// 0755, files 0755 if any execute bit is set and 0644 otherwise, symlinks
// 0777; the caller may set explicit modes per path (WithMode, e.g. tmp 1777).
//
// Every mtime is SOURCE_DATE_EPOCH, not min(mtime, epoch): the files of /out
// were all written by the build after the epoch, so the clamp would set them
// all to the epoch anyway, and the exceptions (a file copied with its mtime
// kept from a source) carry the source transport's times (a release tarball's
// versus a git checkout's), which must not reach the output.
//
// Hard links are kept: the first path in sorted order holds the content and
// later paths are link entries naming it. Expanding them instead would make a
// BusyBox tree installed with hard links hundreds of copies of one binary.
// The archive ends with the two zero blocks tar requires and no further
// record padding.
//
// The identity of a rootfs is the sha256 of the uncompressed tar, the OCI
// DiffID: compressed bytes change with the compressor's version. The xz
// compressor (github.com/ulikunitz/xz, single block, every setting fixed) is
// described by CompressorID, which belongs in any cache key of a step that
// writes a tarball. The file name carries the sha256 of the compressed file
// itself, so the name can be checked against the bytes.
package rootfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// xzModule is the compressor's module and version; a test checks it against
// go.mod so that a dependency bump cannot silently keep the old CompressorID.
const xzModule = "github.com/ulikunitz/xz@v0.5.17"

// xzConfig returns the compressor settings, every field set so that a change
// of a library default cannot change the output: LZMA lc=3 lp=0 pb=2, an
// 8 MiB dictionary (as xz -6), one block (as xz -T1), CRC64 as xz(1) writes,
// and the hash-table matcher: the library's binary-tree matcher measured here
// at 0.01 MB/s with a worse ratio (4.3 MB of source and ELF in 5 minutes).
func xzConfig() xz.WriterConfig {
	return xz.WriterConfig{
		Properties: &lzma.Properties{LC: 3, LP: 0, PB: 2},
		DictCap:    8 << 20,
		BufSize:    64 << 10,
		BlockSize:  1<<63 - 1,
		CheckSum:   xz.CRC64,
		NoCheckSum: false,
		Matcher:    lzma.HashTable4,
	}
}

// CompressorID names the compressor, its version and every setting that can
// change the compressed bytes. Put it in the action key of a step whose output
// is a tarball.
var CompressorID = func() string {
	c := xzConfig()
	return fmt.Sprintf("xz %s lc=%d lp=%d pb=%d dict=%d buf=%d block=%d check=crc64 matcher=%v",
		xzModule, c.Properties.LC, c.Properties.LP, c.Properties.PB, c.DictCap, c.BufSize, c.BlockSize, c.Matcher)
}()

// Result describes a written rootfs tarball.
type Result struct {
	Path             string // the file: DIR/NAME.rootfs.sha256-HEX.tar.xz
	Size             int64  // bytes of the compressed file
	UncompressedSize int64  // bytes of the tar
	DiffID           string // "sha256:…" of the uncompressed tar: the identity
	Digest           string // "sha256:…" of the compressed file: the HEX in its name
}

// Option adjusts how a tree is written.
type Option func(*config)

type config struct {
	epoch int64
	modes map[string]fs.FileMode
}

// WithEpoch sets the mtime of every entry, in seconds since 1970
// (SOURCE_DATE_EPOCH, parsed by the caller). The default is 0.
func WithEpoch(sec int64) Option { return func(c *config) { c.epoch = sec } }

// WithMode sets the mode of one path explicitly (slash-separated, relative to
// the tree; a leading "/" is ignored), overriding the normalised mode. It may
// carry the sticky, setuid and setgid bits. The path must exist in the tree
// and must not be a symbolic link.
func WithMode(path string, mode fs.FileMode) Option {
	return func(c *config) {
		if c.modes == nil {
			c.modes = map[string]fs.FileMode{}
		}
		c.modes[cleanRel(path)] = mode
	}
}

func cleanRel(p string) string {
	return strings.Trim(filepath.ToSlash(filepath.Clean("/"+p)), "/")
}

// Write packs the tree at src into DIR/NAME.rootfs.sha256-HEX.tar.xz. The
// file is written under a temporary name in dir, synced and renamed, and the
// directory synced; on any error nothing is left in dir.
func Write(ctx context.Context, src, dir, name string, opts ...Option) (*Result, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, "."+name+".rootfs.*.tmp")
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", name, err)
	}
	res, err := writeTo(ctx, src, tmp, opts)
	if err == nil {
		res.Path = filepath.Join(dir, name+".rootfs."+strings.Replace(res.Digest, ":", "-", 1)+".tar.xz")
		err = commit(tmp, res.Path)
	} else {
		tmp.Close()
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("rootfs %s from %s: %w", name, src, err)
	}
	return res, nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("rootfs: invalid image name %q", name)
	}
	return nil
}

// writeTo streams tar → (DiffID hash, xz → (file, file hash)).
func writeTo(ctx context.Context, src string, f *os.File, opts []Option) (*Result, error) {
	fileHash := sha256.New()
	fileCount := &counter{}
	buf := bufio.NewWriterSize(io.MultiWriter(f, fileHash, fileCount), 256<<10)
	zw, err := xzConfig().NewWriter(buf)
	if err != nil {
		return nil, err
	}
	diffHash := sha256.New()
	tarCount := &counter{}
	if err := WriteTar(ctx, src, io.MultiWriter(zw, diffHash, tarCount), opts...); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return nil, err
	}
	return &Result{
		Size:             fileCount.n,
		UncompressedSize: tarCount.n,
		DiffID:           digestOf(diffHash),
		Digest:           digestOf(fileHash),
	}, nil
}

func commit(tmp *os.File, path string) error {
	// CreateTemp makes 0600; the result is a public artifact, whatever the umask.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot sync a directory (EINVAL); the rename stands.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
