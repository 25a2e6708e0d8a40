package seed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

// benchCache fills a cache with the locked .debs once per process.
func benchCache(b *testing.B) (*Lock, string) {
	b.Helper()
	testenv.NeedNetwork(b)
	l, err := ParseLockFile("../../toolchain/seed.lock")
	if err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(os.TempDir(), "cairn-seed-bench-cache")
	if _, err := Fetch(context.Background(), l, "", WithCache(cache)); err != nil {
		b.Fatal(err)
	}
	return l, cache
}

// BenchmarkBuildWarm is a seed build with every .deb in the cache: verify,
// decompress, unpack, link, digest. Its reference is
// BenchmarkReferenceDpkgDeb, the same .debs unpacked by dpkg-deb and tar.
func BenchmarkBuildWarm(b *testing.B) {
	l, cache := benchCache(b)
	dir := b.TempDir()
	b.SetBytes(l.Bytes())
	for i := 0; b.Loop(); i++ {
		dest := filepath.Join(dir, fmt.Sprint(i))
		if _, err := BuildLock(context.Background(), l, dest, WithCache(cache), WithoutApt()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dest)
		b.StartTimer()
	}
}

// BenchmarkReferenceDpkgDeb unpacks the same .debs with the system's tools:
// dpkg-deb --fsys-tarfile | tar -x, one package after another, into one
// directory (no merged-/usr mapping, no verification, no digest).
func BenchmarkReferenceDpkgDeb(b *testing.B) {
	testenv.NeedTool(b, "dpkg-deb")
	l, cache := benchCache(b)
	dir := b.TempDir()
	b.SetBytes(l.Bytes())
	for i := 0; b.Loop(); i++ {
		dest := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(dest, 0o755); err != nil {
			b.Fatal(err)
		}
		for _, p := range l.Packages {
			cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2"`, "sh", cachePath(cache, p), dest)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", p.id(), err, out)
			}
		}
		b.StopTimer()
		os.RemoveAll(dest)
		b.StartTimer()
	}
}
