package attest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// ReadFiles and rootfs.List read the same tarball: their SHA256s agree.
func TestReadFilesAgreesWithRootfsList(t *testing.T) {
	in := fixture(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.CopyFS(root, os.DirFS("testdata/stack")); err != nil {
		t.Fatal(err)
	}
	res, err := rootfs.Write(context.Background(), root, dir, "x", rootfs.WithEpoch(in.Stack.SourceDateEpoch))
	if err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(context.Background(), res.Path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := rootfs.ListFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ReadImage(context.Background(), "x", res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != res.Digest || img.DiffID != res.DiffID || img.Tarball != filepath.Base(res.Path) {
		t.Errorf("ReadImage: got digest %s, diff id %s, tarball %s; want %s, %s, %s as rootfs.Write made them",
			img.Digest, img.DiffID, img.Tarball, res.Digest, res.DiffID, filepath.Base(res.Path))
	}
	if len(img.Files) != len(files) {
		t.Errorf("ReadImage: %d files, ReadFiles %d", len(img.Files), len(files))
	}
	want := map[string]string{}
	for _, e := range entries {
		if e.Type == rootfs.TypeFile || e.Type == rootfs.TypeHardlink {
			want[e.Path] = e.SHA256
		}
	}
	if len(files) != len(want) || len(files) < 10 {
		t.Fatalf("got %d files, want %d (and at least 10)", len(files), len(want))
	}
	for _, f := range files {
		if want[f.Path] != f.SHA256 {
			t.Errorf("%s: got %s, want %s as rootfs.List reads it", f.Path, f.SHA256, want[f.Path])
		}
	}
}

// sparseTar has GNU tar pack a 1 GiB hole as a sparse member.
func sparseTar(t *testing.T, format string) []byte {
	tarBin := testenv.NeedTool(t, "tar")
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "hole"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	arc := filepath.Join(t.TempDir(), "sparse.tar")
	if out, err := exec.Command(tarBin, "--sparse", "--format="+format, "-cf", arc, "-C", dir, "hole").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	data, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestReadFilesRefuses(t *testing.T) {
	type entry struct {
		hdr  tar.Header
		body string
	}
	mk := func(es ...entry) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range es {
			h := e.hdr
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(e.body))
			}
			h.Mode = 0o644
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(e.body))
		}
		tw.Close()
		return buf.Bytes()
	}
	reg := func(name, body string) entry {
		return entry{tar.Header{Name: name, Typeflag: tar.TypeReg}, body}
	}
	link := func(name, target string) entry {
		return entry{tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}, ""}
	}
	good := mk(reg("a", "x"), link("b", "a"))
	for _, tc := range []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"hard link to nothing", mk(reg("a", "x"), link("b", "c")), "entry b: hard link to c", nil},
		{"hard link forward", mk(link("b", "a"), reg("a", "x")), "entry b: hard link to a", nil},
		{"listed twice", mk(reg("a", "x"), reg("./a", "y")), "entry a: listed twice", nil},
		{"sparse, GNU", sparseTar(t, "gnu"), "entry hole", ErrSparse},
		{"sparse, PAX", sparseTar(t, "posix"), "entry ", ErrSparse},
		{"truncated", mk(reg("big", strings.Repeat("x", 2000)))[:1000], "entry big", nil},
		{"corrupt xz", append(append([]byte{}, xzMagic...), 0, 0, 0, 0), "xz", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.tar")
			if err := os.WriteFile(file, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			files, err := ReadFiles(context.Background(), file)
			if err == nil {
				t.Fatalf("got %v, want an error", files)
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to name %s and %q", err, file, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("got %v, want errors.Is %v", err, tc.is)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "good.tar")
	if err := os.WriteFile(file, good, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(context.Background(), file)
	if err != nil || len(files) != 2 || files[1].Link != "a" || files[1].SHA1 != files[0].SHA1 {
		t.Errorf("good tar: got %+v, %v", files, err)
	}
	img, err := ReadImage(context.Background(), "good", file)
	if sum := "sha256:" + hexSHA256(good); err != nil || img.Digest != sum || img.DiffID != sum {
		t.Errorf("plain tar: got digest %s, diff id %s (%v), want both %s", img.Digest, img.DiffID, err, sum)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadFiles(ctx, file); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}
