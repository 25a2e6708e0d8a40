package oci

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// benchTar copies about size bytes of the Go toolchain (source text and ELF
// binaries, like a rootfs) into a tree and returns its rootfs tar.
func benchTar(b *testing.B, size int64) []byte {
	b.Helper()
	dir := b.TempDir()
	goroot := runtime.GOROOT()
	var n int64
	for _, part := range []string{"pkg/tool", "src"} {
		var files []string
		filepath.WalkDir(filepath.Join(goroot, part), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		sort.Strings(files)
		for _, f := range files {
			// Half binaries, half text.
			if n >= size/2 && part == "pkg/tool" || n >= size {
				break
			}
			data, err := os.ReadFile(f)
			if err != nil || n+int64(len(data)) > size {
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
	}
	if n < size*8/10 {
		b.Skipf("only %d bytes of GOROOT to copy, want %d", n, size)
	}
	var buf bytes.Buffer
	if err := rootfs.WriteTar(context.Background(), dir, &buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkWrite times the OCI layout plus docker-archive (and the layout
// alone) for a ~2 MB and a ~20 MB rootfs tar, against gzip -6 -n of the
// same tar, the reference for the dominant cost. MB/s is of the tar.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int64
	}{{"2MB", 2 << 20}, {"20MB", 20 << 20}} {
		tarball := benchTar(b, size.n)
		b.Run(size.name+"/layout+archive", func(b *testing.B) {
			b.SetBytes(int64(len(tarball)))
			for b.Loop() {
				if _, err := Write(context.Background(), bytes.NewReader(tarball), b.TempDir(), "bench", Config{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/layout", func(b *testing.B) {
			b.SetBytes(int64(len(tarball)))
			for b.Loop() {
				if _, err := Write(context.Background(), bytes.NewReader(tarball), b.TempDir(), "bench", Config{}, WithoutArchive()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/gzip-6-n", func(b *testing.B) {
			testenv.NeedTool(b, "gzip")
			b.SetBytes(int64(len(tarball)))
			for b.Loop() {
				out, err := os.Create(filepath.Join(b.TempDir(), "layer.gz"))
				if err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command("gzip", "-6", "-n", "-c")
				cmd.Stdin, cmd.Stdout = bytes.NewReader(tarball), out
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				out.Close()
			}
		})
	}
}
