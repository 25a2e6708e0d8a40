package archive

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cairn-build/cairn/internal/testenv"
	"testing"
)

// filter pipes in through a tool (bzip2, xz) and returns its output.
func filter(t testing.TB, in []byte, tool string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	return out
}

// putCRC rewrites the CRC32 in the last four bytes of an xz block header.
func putCRC(hdr []byte) {
	n := len(hdr) - 4
	binary.LittleEndian.PutUint32(hdr[n:], crc32.ChecksumIEEE(hdr[:n]))
}

func gzip9(w io.Writer) *gzip.Writer {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
	return zw
}

// sparseTar has GNU tar pack a file with a hole in the given format, the
// way the 100 GiB-from-10 KiB bombs are made.
func sparseTar(t testing.TB, format string) []byte {
	t.Helper()
	tarPath := testenv.NeedTool(t, "tar")
	d := t.TempDir()
	f, err := os.Create(filepath.Join(d, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 20)
	f.WriteAt([]byte("end"), 1<<20)
	f.Close()
	cmd := exec.Command(tarPath, "--sparse", "--format="+format, "-C", d, "-cf", "-", "sparse")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar: %v", err)
	}
	return out
}
