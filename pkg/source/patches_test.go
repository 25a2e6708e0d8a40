package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/patch"
	"github.com/cairn-build/cairn/pkg/store"
)

const (
	readmePatch = `Description: a Debian-style patch with a header
--- a/README
+++ b/README
@@ -1 +1,2 @@
 a fixture source p
+patched by 01
`
	unusedPatch = `--- a/README
+++ b/README
@@ -1 +1 @@
-not what README holds
+x
`
	mainPatch = `diff --git a/src/main.c b/src/main.c
index 1111111..2222222 100644
--- a/src/main.c
+++ b/src/main.c
@@ -1 +1 @@
-int main(void) { return 0; } /* p */
+int main(void) { return 3; } /* p */
`
	localPatch = `--- /dev/null
+++ b/LOCAL
@@ -0,0 +1 @@
+added by cairn's own patch
`
)

// debianTar makes a NAME_VERSION.debian.tar.gz holding debian/patches.
func debianTarball(t *testing.T, series string, patches map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name, content string) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		tw.Write([]byte(content))
	}
	tw.WriteHeader(&tar.Header{Name: "debian/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "debian/patches/", Typeflag: tar.TypeDir, Mode: 0o755})
	add("debian/patches/series", series)
	for n, c := range patches {
		add("debian/patches/"+n, c)
	}
	tw.Close()
	zw.Close()
	s := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(s[:])
}

// patchedFixture sets up a mirror with the fixture's orig tarball and a
// packaging tarball, a local patch beside the stack, and returns the stack
// directory, the mirror and the packaging tarball's sha256 and the digest
// of the tree the patches should give (computed from files written here,
// not by applying anything).
func patchedFixture(t *testing.T) (f *fixture, stackDir, mirror, tarSum, want string) {
	t.Helper()
	f = newFixture(t, "p")
	stackDir, mirror = t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(mirror, "fixture_1.0.orig.tar.gz"), f.tgz, 0o644)
	tgz, sum := debianTarball(t, "# Debian's series\n01-readme.patch\n02-unused.patch\n03-main.patch\n",
		map[string]string{"01-readme.patch": readmePatch, "02-unused.patch": unusedPatch, "03-main.patch": mainPatch})
	os.WriteFile(filepath.Join(mirror, "fixture_1.0-1.debian.tar.gz"), tgz, 0o644)
	os.MkdirAll(filepath.Join(stackDir, "patches"), 0o755)
	os.WriteFile(filepath.Join(stackDir, "patches", "0001-local.patch"), []byte(localPatch), 0o644)

	exp := t.TempDir()
	f.writeFiles(t, exp)
	os.WriteFile(filepath.Join(exp, "README"), []byte("a fixture source p\npatched by 01\n"), 0o644)
	os.WriteFile(filepath.Join(exp, "src/main.c"), []byte("int main(void) { return 3; } /* p */\n"), 0o644)
	os.WriteFile(filepath.Join(exp, "LOCAL"), []byte("added by cairn's own patch\n"), 0o644)
	m, err := digest.FromDir(context.Background(), exp)
	if err != nil {
		t.Fatal(err)
	}
	return f, stackDir, mirror, sum, m.TreeDigest()
}

func patchesTOML(tarSum, series, tree string) string {
	return fmt.Sprintf("debian = \"fixture=1.0-1\"\n\n[source.patches]\ndebian_tar_sha256 = %q\nseries = %s\nlocal = [\"patches/0001-local.patch\"]\ntree = %q\n",
		tarSum, series, tree)
}

func TestFetchPatched(t *testing.T) {
	f, dir, mirror, tarSum, want := patchedFixture(t)
	st := stackOf(t, dir, sourceTOML("fixture", f, patchesTOML(tarSum, `["01-readme.patch", "03-main.patch"]`, want)))
	s := openStore(t)
	ctx := context.Background()
	r, err := New(s, WithMirrors(mirror), WithOffline(true)).Fetch(ctx, st, st.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Tree != want || r.Pristine != f.tree || r.Transport != "mirror" {
		t.Errorf("got tree %s pristine %s via %s, want %s, %s via mirror", r.Tree, r.Pristine, r.Transport, want, f.tree)
	}
	if got, _ := os.ReadFile(filepath.Join(r.Path, "src/main.c")); !strings.Contains(string(got), "return 3") {
		t.Errorf("src/main.c in the patched tree: %q", got)
	}
	if _, ok := s.Tree(f.tree); !ok {
		t.Error("the pristine tree is not in the store")
	}
	if _, ok := s.Blob(tarSum); !ok {
		t.Error("the packaging tarball is not in the store")
	}
	// Next time the store alone delivers it, with no mirror.
	r2, err := New(s, WithOffline(true), WithVerify(true)).Fetch(ctx, st, st.Sources[0])
	if err != nil || r2.Transport != "store" || r2.Path != r.Path {
		t.Errorf("second fetch: %+v, %v; want the stored patched tree", r2, err)
	}
}

func TestFetchPatchedWholeSeriesFails(t *testing.T) {
	// ["*"] takes 02-unused.patch too, whose context is not in README.
	f, dir, mirror, tarSum, want := patchedFixture(t)
	st := stackOf(t, dir, sourceTOML("fixture", f, patchesTOML(tarSum, `["*"]`, want)))
	s := openStore(t)
	_, err := New(s, WithMirrors(mirror), WithOffline(true)).Fetch(context.Background(), st, st.Sources[0])
	var pe *PatchError
	var ape *patch.Error
	if !errors.As(err, &pe) || pe.Source != "fixture" || !errors.As(err, &ape) || ape.Patch != "02-unused.patch" || !errors.Is(err, patch.ErrConflict) {
		t.Fatalf("got %v, want a PatchError naming fixture and 02-unused.patch", err)
	}
	if _, ok := s.Tree(want); ok {
		t.Error("a patched tree was stored")
	}
	for _, e := range storeEntries(t, s) {
		if strings.HasPrefix(e, "tmp/") {
			t.Errorf("left behind: %s", e)
		}
	}
}

func TestFetchPatchedFailures(t *testing.T) {
	f, dir, mirror, tarSum, want := patchedFixture(t)
	const other = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	for _, tc := range []struct {
		name, toml string
		check      func(t *testing.T, err error)
	}{
		{"patched tree is not the pin", patchesTOML(tarSum, `["01-readme.patch", "03-main.patch"]`, other), func(t *testing.T, err error) {
			var dm *store.DigestMismatchError
			if !errors.As(err, &dm) || dm.Want != other || dm.Got != want || !strings.Contains(err.Error(), "source fixture") {
				t.Errorf("got %v, want a mismatch naming %s and %s", err, other, want)
			}
		}},
		{"name not in the series", patchesTOML(tarSum, `["04-none.patch"]`, want), func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "04-none.patch is not in the series") {
				t.Errorf("got %v", err)
			}
		}},
		{"out of series order", patchesTOML(tarSum, `["03-main.patch", "01-readme.patch"]`, want), func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "series order") {
				t.Errorf("got %v", err)
			}
		}},
		{"packaging tarball not the pin", patchesTOML(strings.Repeat("2", 64), `["01-readme.patch"]`, want), func(t *testing.T, err error) {
			var dm *store.DigestMismatchError
			if !errors.As(err, &dm) || !strings.Contains(err.Error(), "Debian packaging tarball") {
				t.Errorf("got %v, want a digest mismatch of the packaging tarball", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := stackOf(t, dir, sourceTOML("fixture", f, tc.toml))
			s := openStore(t)
			_, err := New(s, WithMirrors(mirror), WithOffline(true)).Fetch(context.Background(), st, st.Sources[0])
			tc.check(t, err)
			for _, e := range storeEntries(t, s) {
				if strings.HasPrefix(e, "tmp/") || e == "trees/sha256/"+strings.TrimPrefix(want, "sha256:") || e == "trees/sha256/"+strings.TrimPrefix(other, "sha256:") {
					t.Errorf("left behind: %s", e)
				}
			}
		})
	}
}

func TestDebianTarNames(t *testing.T) {
	f := newFixture(t, "n")
	st := stackOf(t, t.TempDir(), sourceTOML("djbdns", f, `debian = "djbdns=1:1.05-15"`))
	got := strings.Join(DebianTarNames(st.Sources[0]), " ")
	if want := "djbdns_1.05-15.debian.tar.xz djbdns_1.05-15.debian.tar.gz djbdns_1.05-15.debian.tar.bz2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A packaging tarball whose patch is a symlink (here to another file of
// the tarball) is refused: a patch is read as a regular file or not at all.
func TestFetchPatchedSymlinkInTarball(t *testing.T) {
	f, dir, mirror, _, want := patchedFixture(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "debian/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "debian/patches/", Typeflag: tar.TypeDir, Mode: 0o755})
	series := "01-readme.patch\n"
	tw.WriteHeader(&tar.Header{Name: "debian/patches/series", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(series))})
	tw.Write([]byte(series))
	tw.WriteHeader(&tar.Header{Name: "debian/rules", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(readmePatch))})
	tw.Write([]byte(readmePatch))
	tw.WriteHeader(&tar.Header{Name: "debian/patches/01-readme.patch", Typeflag: tar.TypeSymlink, Linkname: "../rules"})
	tw.Close()
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	os.WriteFile(filepath.Join(mirror, "fixture_1.0-1.debian.tar.gz"), buf.Bytes(), 0o644)
	st := stackOf(t, dir, sourceTOML("fixture", f, patchesTOML(hex.EncodeToString(sum[:]), `["01-readme.patch"]`, want)))
	s := openStore(t)
	_, err := New(s, WithMirrors(mirror), WithOffline(true)).Fetch(context.Background(), st, st.Sources[0])
	var pe *PatchError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "01-readme.patch: not a regular file") {
		t.Fatalf("got %v, want the symlinked patch refused", err)
	}
}
