package digest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/pjbgf/sha1cd"
)

// muslTarball finds musl-1.2.5's release tarball: CAIRN_MUSL_TARBALL, or
// the copy a Debian source download leaves in /tmp/apttest/dl.
func muslTarball(b *testing.B) string {
	for _, p := range []string{os.Getenv("CAIRN_MUSL_TARBALL"), "/tmp/apttest/dl/musl_1.2.5.orig.tar.gz"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	b.Skip("musl tarball not found; set CAIRN_MUSL_TARBALL")
	return ""
}

// muslTree unpacks the musl tarball (one component stripped) for b.
func muslTree(b *testing.B) string {
	f, err := os.Open(muslTarball(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	dir := filepath.Join(b.TempDir(), "musl")
	if _, err := archive.Unpack(context.Background(), f, dir, archive.Strip(1)); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkTreeDigestDir: both digests of the unpacked musl tree. Compare
// with BenchmarkGitWriteTree on the same tree.
func BenchmarkTreeDigestDir(b *testing.B) {
	dir := muslTree(b)
	for _, w := range []int{1, 0} {
		name := "workers=GOMAXPROCS"
		opts := []DirOption{}
		if w == 1 {
			name = "workers=1"
			opts = append(opts, Workers(1))
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				m, err := FromDir(context.Background(), dir, opts...)
				if err != nil {
					b.Fatal(err)
				}
				if m.GitTree() != "2deb5f7c62d8c9e9733c9ed77d9210b708bbb69e" {
					b.Fatal("wrong git tree")
				}
				_ = m.TreeDigest()
			}
		})
	}
}

// BenchmarkGitWriteTree: what a user runs for the git tree id, in a fresh
// repository each time.
func BenchmarkGitWriteTree(b *testing.B) {
	git, err := exec.LookPath("git")
	if err != nil {
		b.Skip("git not on PATH")
	}
	dir := muslTree(b)
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	run := func(args ...string) []byte {
		cmd := exec.Command(git, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("git %v: %v", args, err)
		}
		return out
	}
	for b.Loop() {
		os.RemoveAll(filepath.Join(dir, ".git"))
		run("init", "-q")
		run("add", "-A", "-f")
		if out := run("write-tree"); !bytes.HasPrefix(out, []byte("2deb5f7c62d8c9e9733c9ed77d9210b708bbb69e")) {
			b.Fatalf("git write-tree: %s", out)
		}
	}
}

// BenchmarkDigestArchive: both digests straight from the musl tar.gz,
// against `gzip -dc | sha256sum`, which only decompresses and hashes.
func BenchmarkDigestArchive(b *testing.B) {
	p := muslTarball(b)
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cairn", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m, err := FromArchive(context.Background(), bytes.NewReader(data), Strip(1))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = m.TreeDigest(), m.GitTree()
		}
	})
	b.Run("gzip-dc|sha256sum", func(b *testing.B) {
		sh, err := exec.LookPath("sh")
		if err != nil {
			b.Skip("no sh")
		}
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			cmd := exec.Command(sh, "-c", `gzip -dc < "$1" | sha256sum`, "sh", p)
			if out, err := cmd.Output(); err != nil || len(out) < 64 {
				b.Fatalf("%v: %s", err, out)
			}
		}
	})
}

// BenchmarkSHA1 weighs sha1cd (collision detection, as git) against
// crypto/sha1, with SHA-256 (which every file pays anyway) for scale.
func BenchmarkSHA1(b *testing.B) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for _, h := range []struct {
		name string
		new  func() hash.Hash
	}{{"crypto-sha1", sha1.New}, {"sha1cd", sha1cd.New}, {"sha256", sha256.New}} {
		b.Run(h.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				x := h.new()
				x.Write(buf)
				x.Sum(nil)
			}
		})
	}
}
