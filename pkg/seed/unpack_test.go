package seed

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/deb"
)

// testdata/hello_1.0_all.deb (made by dpkg-deb) holds usr/bin/hello and
// bin/hi -> ../usr/bin/hello.
const helloLock = `deb hello 1.0 all 740 3e5e13613d6e27ea6bc4d30cff3126539794001e96edb9681e8ae13544f0b907 pool/main/h/hello/hello_1.0_all.deb
symlink usr/bin/hey hello
`

func helloBuild(t *testing.T, lockText string) (string, string, error) {
	t.Helper()
	l, err := ParseLock(strings.NewReader(lockText), "hello.lock")
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "seed")
	d, err := BuildLock(context.Background(), l, dest, WithMirror("testdata"), WithoutApt())
	return dest, d, err
}

func TestBuildFixture(t *testing.T) {
	dest, d1, err := helloBuild(t, helloLock)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64",
		"usr/bin/hi":  "../usr/bin/hello", // as dpkg leaves it on a merged-/usr system
		"usr/bin/hey": "hello",
	} {
		if got, err := os.Readlink(filepath.Join(dest, path)); got != want {
			t.Errorf("%s: got link %q (%v), want %q", path, got, err, want)
		}
	}
	for path, mode := range map[string]os.FileMode{
		"usr/bin/hello": 0o755, "usr": os.ModeDir | 0o755, "dev": os.ModeDir | 0o755, "tmp": os.ModeDir | 0o755,
	} {
		fi, err := os.Lstat(filepath.Join(dest, path))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: got %v (%v), want %v", path, fi.Mode(), err, mode)
		}
	}

	// The same lock under another umask: same modes, same digest.
	old := syscall.Umask(0o077)
	dest2, d2, err := helloBuild(t, helloLock)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("digest under umask 077: got %s, want %s", d2, d1)
	}
	if fi, _ := os.Stat(filepath.Join(dest2, "usr/bin")); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin under umask 077: got %v, want 0755", fi)
	}

	// A lock link changes the identity.
	_, d3, err := helloBuild(t, strings.Replace(helloLock, "symlink usr/bin/hey hello", "symlink usr/bin/hey hi", 1))
	if err != nil {
		t.Fatal(err)
	}
	if d3 == d1 {
		t.Errorf("another link target gave the same digest %s", d1)
	}
}

// A link over a path a package provides means the lock is stale.
func TestBuildLinkCollision(t *testing.T) {
	dest, _, err := helloBuild(t, strings.Replace(helloLock, "usr/bin/hey", "usr/bin/hello", 1))
	var le *LockError
	if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "scripts/lock-seed.sh") {
		t.Fatalf("got %v, want a LockError on line 2 naming scripts/lock-seed.sh", err)
	}
	if _, err := os.Lstat(dest); err == nil {
		t.Errorf("%s exists after a failed build", dest)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// debWithData is a .deb whose data.tar holds one member named name: a
// regular file, or a block device if name starts with ./dev/.
func debWithData(t *testing.T, name string) string {
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: 4}
	if strings.HasPrefix(name, "./dev/") {
		h.Typeflag, h.Size, h.Devmajor = tar.TypeBlock, 0, 8
	}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if h.Size > 0 {
		tw.Write([]byte("evil"))
	}
	tw.Close()
	member := func(n string, b []byte) string {
		s := fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10d`\n", n, "0", "0", "0", "100644", len(b)) + string(b)
		if len(b)%2 == 1 {
			s += "\n"
		}
		return s
	}
	return "!<arch>\n" + member("debian-binary", []byte("2.0\n")) + member("control.tar", nil) + member("data.tar", data.Bytes())
}

// A package whose bytes match the lock but that is not a well-formed .deb
// (the lock itself pins garbage) fails naming the package and its file,
// and leaves nothing.
func TestBuildMalformedDeb(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       any
	}{
		{"not ar", "this is not a .deb\n", new(*deb.FormatError)},
		{"escaping member", debWithData(t, "./../../etc/evil"), new(*archive.EntryError)},
		{"device member", debWithData(t, "./dev/sda"), new(*archive.EntryError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mirror := t.TempDir()
			sum := sha256.Sum256([]byte(tc.body))
			hexsum := hex.EncodeToString(sum[:])
			write(t, filepath.Join(mirror, hexsum), tc.body)
			l := &Lock{File: "x.lock", Packages: []Package{{Name: "evil", Version: "1", Arch: "all", Size: int64(len(tc.body)), SHA256: hexsum, Filename: "pool/e/evil_1_all.deb"}}}
			out := t.TempDir()
			_, err := BuildLock(context.Background(), l, filepath.Join(out, "seed"), WithMirror(mirror), WithoutApt())
			if err == nil {
				t.Fatal("got no error")
			}
			if !errors.As(err, tc.want) {
				t.Errorf("got %T %v, want %T", err, err, tc.want)
			}
			if !strings.Contains(err.Error(), "evil=1") {
				t.Errorf("got %q, want it to name evil=1", err)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
}
