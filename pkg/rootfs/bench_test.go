package rootfs

import (
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

// benchTree copies about 10 MB of the Go toolchain (half source text, half
// ELF binaries, like a rootfs) into a new directory.
func benchTree(b *testing.B) (dir string, size int64) {
	b.Helper()
	dir = b.TempDir()
	goroot := runtime.GOROOT()
	for _, part := range []struct {
		from  string
		limit int64
	}{{"src/net", 5 << 20}, {"pkg/tool", 5 << 20}} {
		var files []string
		filepath.WalkDir(filepath.Join(goroot, part.from), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		sort.Strings(files)
		var n int64
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil || n+int64(len(data)) > part.limit {
				continue
			}
			rel, _ := filepath.Rel(goroot, f)
			to := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(to, data, 0o644); err != nil {
				b.Fatal(err)
			}
			n += int64(len(data))
		}
		size += n
	}
	if size < 8<<20 {
		b.Skipf("only %d bytes of GOROOT to copy", size)
	}
	return dir, size
}

// BenchmarkWrite compares cairn's tar+xz with GNU tar piped to xz -6 -T1 on
// the same tree in the same process. It reports MB/s of tree and the
// compressed size of each.
func BenchmarkWrite(b *testing.B) {
	dir, size := benchTree(b)
	b.Run("cairn", func(b *testing.B) {
		b.SetBytes(size)
		var res *Result
		for b.Loop() {
			out := b.TempDir()
			var err error
			if res, err = Write(context.Background(), dir, out, "bench", WithEpoch(0)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(res.Size), "xz-bytes")
	})
	b.Run("tar-only", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if err := WriteTar(context.Background(), dir, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gnutar+xz-6-T1", func(b *testing.B) {
		testenv.NeedTool(b, "tar")
		testenv.NeedTool(b, "xz")
		b.SetBytes(size)
		var n int64
		for b.Loop() {
			out := filepath.Join(b.TempDir(), "ref.tar.xz")
			cmd := exec.Command("sh", "-c", `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf - . | xz -6 -T1 > "$2"`, "sh", dir, out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, o)
			}
			fi, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			n = fi.Size()
		}
		b.ReportMetric(float64(n), "xz-bytes")
	})
}
