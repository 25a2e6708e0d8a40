package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzUnpack feeds arbitrary bytes to Unpack and checks that nothing is
// written outside DIR, that a refusal leaves nothing at all, that what is
// written holds only files, directories and symlinks that stay inside, and
// that Walk (the digest's reader) refuses exactly what Unpack refuses.
func FuzzUnpack(f *testing.F) {
	f.Add(makeTar(f, dir("a/"), reg("a/f", "x"), symlink("a/l", "f"), hardlink("h", "a/f")), false)
	f.Add(makeTar(f, reg("../x", "evil")), false)
	f.Add(makeTar(f, symlink("l", "/etc"), reg("l/passwd", "x")), true)
	f.Add(makeTar(f, symlink("l", "../.."), reg("l/x", "x")), false)
	f.Add(makeTar(f, reg("f", "x"), hardlink("g", "f"), reg("f", "y")), false)
	f.Add(gz(f, makeTar(f, dir("d/"), exe("d/x", "#!"))), false)
	f.Add(makeTar(f, member{name: "p", typ: tar.TypeFifo}), false)
	f.Add(makeTar(f, dir("a/"), symlink("y", "x/.."), symlink("a/l1", ".."), symlink("x", "a/l1")), false)
	f.Add(makeTar(f, symlink("a/up", "."), symlink("a/b/c", "../up/../x"), reg("a/b/d", "")), false)
	f.Fuzz(func(t *testing.T, data []byte, rootfs bool) {
		box := t.TempDir()
		outside := filepath.Join(box, "outside")
		in := filepath.Join(box, "in")
		for _, d := range []string{outside, in} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("s"), 0o644); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(in, "dst")
		opts := []Option{MaxBytes(1 << 20), MaxEntries(1000)}
		if rootfs {
			opts = append(opts, RootfsLinks())
		}
		_, uerr := Unpack(context.Background(), bytes.NewReader(data), dst, opts...)
		_, werr := Walk(context.Background(), bytes.NewReader(data), func(e *Entry, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}, opts...)
		if (uerr == nil) != (werr == nil) {
			t.Fatalf("Unpack: %v; Walk: %v; want both to fail or neither", uerr, werr)
		}
		var ue, we *EntryError
		if errors.As(uerr, &ue) && errors.As(werr, &we) && (ue.Reason != we.Reason || ue.Entry != we.Entry) {
			t.Fatalf("Unpack refused %q for %v, Walk %q for %v", ue.Entry, ue.Reason, we.Entry, we.Reason)
		}
		if got, want := listTree(t, outside), []string{"sentinel -rw-r--r-- s"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("outside DIR changed: got %q", got)
		}
		ents, _ := os.ReadDir(in)
		if uerr != nil {
			if len(ents) != 0 {
				t.Fatalf("refused (%v) but left %d entries beside DIR", uerr, len(ents))
			}
			return
		}
		if len(ents) != 1 || ents[0].Name() != "dst" {
			t.Fatalf("beside DIR: %v", ents)
		}
		dirfd, err := unix.Open(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dirfd)
		err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dst, p)
			switch mode := d.Type(); {
			case mode&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				if strings.HasPrefix(target, "/") {
					if !rootfs {
						t.Errorf("%s: absolute target %q", rel, target)
					}
				} else if j := path.Join(path.Dir(rel), target); j == ".." || strings.HasPrefix(j, "../") {
					t.Errorf("%s: target %q leaves DIR", rel, target)
				}
				if !rootfs {
					// The kernel's own answer, chains of links included.
					fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH})
					if err == nil {
						unix.Close(fd)
					} else if errors.Is(err, unix.EXDEV) {
						t.Errorf("%s -> %q resolves outside DIR", rel, target)
					}
				}
			case mode.IsDir(), mode.IsRegular():
				fi, _ := d.Info()
				if perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); perm != 0o644 && perm != 0o755 {
					t.Errorf("%s: mode %v", rel, fi.Mode())
				}
			default:
				t.Errorf("%s: special file %v", rel, mode)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
