package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

// zeroReader yields n zero bytes, to build bombs without holding them.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// bomb is a gzip'd tar holding one file of size zero bytes.
func bomb(t *testing.T, size int64) []byte {
	var buf bytes.Buffer
	zw := gzip9(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(tw, &zeroReader{size}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestUnpackRefuses(t *testing.T) {
	outside := t.TempDir() // hostile names aim here; it must stay empty
	benign := makeTar(t, dir("d/"), reg("d/f", "data"), reg("d/g", strings.Repeat("x", 3000)))
	tests := []struct {
		name   string
		data   []byte
		opts   []Option
		reason error
		entry  string
	}{
		{"dotdot", makeTar(t, reg("../x", "evil")), nil, ErrUnsafePath, "../x"},
		{"absolute", makeTar(t, reg(outside+"/abs", "evil")), nil, ErrUnsafePath, outside + "/abs"},
		{"inner dotdot climbs out", makeTar(t, reg("a/../../x", "evil")), nil, ErrUnsafePath, "a/../../x"},
		{"dotdot after strip", makeTar(t, reg("top/../../x", "evil")), []Option{Strip(1)}, ErrUnsafePath, "top/../../x"},
		{"absolute symlink", makeTar(t, symlink("l", "/etc"), reg("l/passwd", "root::0:0")), nil, ErrLinkEscape, "l"},
		{"write through absolute symlink (rootfs)", makeTar(t, symlink("l", "/etc"), reg("l/passwd", "root::0:0")),
			[]Option{RootfsLinks()}, ErrThroughSymlink, "l/passwd"},
		{"write through inner symlink", makeTar(t, dir("sub/"), symlink("l", "sub"), reg("l/x", "x")), nil, ErrThroughSymlink, "l/x"},
		{"dir through symlink", makeTar(t, symlink("l", "."), dir("l/d/")), nil, ErrThroughSymlink, "l/d/"},
		{"hardlink through symlink", makeTar(t, reg("f", "x"), symlink("l", "."), hardlink("l/h", "f")), nil, ErrThroughSymlink, "l/h"},
		{"symlink climbs out", makeTar(t, symlink("l", "../..")), nil, ErrLinkEscape, "l"},
		{"nested symlink climbs out", makeTar(t, dir("a/"), symlink("a/l", "../../x")), nil, ErrLinkEscape, "a/l"},
		{"symlink chain climbs out", makeTar(t, dir("a/"), symlink("y", "x/.."), symlink("a/l1", ".."), symlink("x", "a/l1")), nil, ErrLinkEscape, "y"},
		{"symlink chain through parent", makeTar(t, symlink("a/up", ".."), symlink("a/b/c", "../up/../x")), nil, ErrLinkEscape, "a/b/c"},
		{"rootfs chain climbs out", makeTar(t, symlink("etc/l", "/"), symlink("m", "etc/l/..")), []Option{RootfsLinks()}, ErrLinkEscape, "m"},
		{"rootfs symlink climbs out", makeTar(t, symlink("usr/l", "../../etc")), []Option{RootfsLinks()}, ErrLinkEscape, "usr/l"},
		{"empty symlink target", makeTar(t, symlink("l", "")), nil, ErrLinkEscape, "l"},
		{"symlink then dir of same name", makeTar(t, symlink("l", "."), dir("l/")), nil, ErrTypeChange, "l/"},
		{"file then dir of same name", makeTar(t, reg("f", "x"), dir("f/")), nil, ErrTypeChange, "f/"},
		{"dir then file of same name", makeTar(t, dir("d/"), reg("d", "x")), nil, ErrTypeChange, "d"},
		{"dir then symlink of same name", makeTar(t, reg("d/f", "x"), symlink("d", ".")), nil, ErrTypeChange, "d"},
		{"file used as dir", makeTar(t, reg("f", "x"), reg("f/g", "y")), nil, ErrTypeChange, "f/g"},
		{"hardlink to absolute", makeTar(t, hardlink("h", "/etc/passwd")), nil, ErrHardlink, "h"},
		{"hardlink out", makeTar(t, hardlink("h", "../x")), nil, ErrHardlink, "h"},
		{"hardlink to later entry", makeTar(t, hardlink("h", "f"), reg("f", "x")), nil, ErrHardlink, "h"},
		{"hardlink to dir", makeTar(t, dir("d/"), hardlink("h", "d")), nil, ErrHardlink, "h"},
		{"hardlink to symlink", makeTar(t, symlink("s", "x"), hardlink("h", "s")), nil, ErrHardlink, "h"},
		{"hardlink to itself", makeTar(t, reg("f", "x"), hardlink("f", "f")), nil, ErrHardlink, "f"},
		{"char device", makeTar(t, member{name: "null", typ: tar.TypeChar, mode: 0o666}), nil, ErrDevice, "null"},
		{"block device", makeTar(t, member{name: "sda", typ: tar.TypeBlock, mode: 0o660}), nil, ErrDevice, "sda"},
		{"fifo", makeTar(t, member{name: "p", typ: tar.TypeFifo, mode: 0o644}), nil, ErrFIFO, "p"},
		{"setuid file", makeTar(t, reg("ok", "x"), member{name: "su", typ: tar.TypeReg, mode: 0o4755, body: "x"}), nil, ErrSpecialBits, "su"},
		{"setgid dir", makeTar(t, member{name: "g/", typ: tar.TypeDir, mode: 0o2755}), nil, ErrSpecialBits, "g/"},
		{"sticky dir", makeTar(t, member{name: "tmp/", typ: tar.TypeDir, mode: 0o1777}), nil, ErrSpecialBits, "tmp/"},
		{"gnu sparse (patched header)", gnuSparse(t, "sparse"), nil, ErrSparse, "sparse"},
		{"gnu sparse (GNU tar)", sparseTar(t, "gnu"), nil, ErrSparse, "sparse"},
		{"pax sparse (GNU tar)", sparseTar(t, "pax"), nil, ErrSparse, "sparse"},
		{"name over 4096 bytes", makeTar(t, reg(strings.Repeat("d/", 2048)+"x", "x")), nil, ErrNameTooLong, strings.Repeat("d/", 2048) + "x"},
		{"component over 255 bytes", makeTar(t, reg(strings.Repeat("n", 256), "x")), nil, ErrNameTooLong, strings.Repeat("n", 256)},
		{"decompression bomb", bomb(t, 64<<20), []Option{MaxBytes(1 << 20)}, ErrTooLarge, "zeros"},
		{"bomb in a stripped member", makeTar(t, reg("top", strings.Repeat("z", 100)), reg("top2/f", "x")), []Option{Strip(1), MaxBytes(50)}, ErrTooLarge, "top"},
		{"total size over limit", makeTar(t, reg("a", "12345"), reg("b", "67890")), []Option{MaxBytes(8)}, ErrTooLarge, "b"},
		{"too many entries", makeTar(t, reg("a", ""), reg("b", ""), reg("c", ""), reg("d", "")), []Option{MaxEntries(3)}, ErrTooManyEntries, "d"},
		{"truncated inside a file", benign[:2048+100], nil, ErrCorrupt, "d/g"},
		{"truncated at a block boundary", benign[:5120], nil, ErrCorrupt, "d/g"},
		{"truncated gzip", func() []byte { b := gz(t, benign); return b[:len(b)-10] }(), nil, ErrCorrupt, "d/g"},
		{"not an archive", []byte("hello, this is not a tar archive at all\n"), nil, ErrCorrupt, ""},
		{"empty input", nil, nil, ErrCorrupt, ""},
	}
	for _, tc := range tests {
		for _, pre := range []string{"absent", "empty"} {
			t.Run(tc.name+"/"+pre, func(t *testing.T) {
				parent := t.TempDir()
				dst := filepath.Join(parent, "dst")
				if pre == "empty" {
					if err := os.Mkdir(dst, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				opts := append([]Option{Name("hostile.tar")}, tc.opts...)
				_, err := Unpack(context.Background(), bytes.NewReader(tc.data), dst, opts...)
				var ee *EntryError
				if !errors.As(err, &ee) {
					t.Fatalf("got error %v, want an *EntryError", err)
				}
				if !errors.Is(err, tc.reason) {
					t.Errorf("got reason %v, want %v (error: %v)", ee.Reason, tc.reason, err)
				}
				if ee.Entry != tc.entry {
					t.Errorf("got entry %q, want %q", ee.Entry, tc.entry)
				}
				if ee.Archive != "hostile.tar" || !strings.Contains(err.Error(), "hostile.tar") {
					t.Errorf("error %q does not name the archive", err)
				}
				want := []string(nil)
				if pre == "empty" {
					want = []string{"dst drwxr-xr-x"}
				}
				if got := listTree(t, parent); !reflect.DeepEqual(got, want) {
					t.Errorf("after refusal the parent holds %q, want %q", got, want)
				}
				if got := listTree(t, outside); len(got) != 0 {
					t.Errorf("written outside: %q", got)
				}
			})
		}
	}
}

// TestWalkRefusesAsUnpack checks that Walk (what the digest package uses)
// refuses the same members for the same reasons.
func TestWalkRefusesAsUnpack(t *testing.T) {
	for _, tc := range []struct {
		data   []byte
		reason error
	}{
		{makeTar(t, reg("../x", "evil")), ErrUnsafePath},
		{makeTar(t, symlink("l", "sub"), reg("l/x", "y")), ErrThroughSymlink},
		{makeTar(t, hardlink("h", "/etc/passwd")), ErrHardlink},
		{makeTar(t, member{name: "p", typ: tar.TypeFifo}), ErrFIFO},
	} {
		_, err := Walk(context.Background(), bytes.NewReader(tc.data), func(*Entry, io.Reader) error { return nil })
		if !errors.Is(err, tc.reason) {
			t.Errorf("Walk: got %v, want %v", err, tc.reason)
		}
	}
}

func TestUnpackRefusesNonEmptyDir(t *testing.T) {
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "keep"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Unpack(context.Background(), bytes.NewReader(makeTar(t, reg("keep", "theirs"))), dst)
	if !errors.Is(err, ErrDirNotEmpty) {
		t.Fatalf("got %v, want ErrDirNotEmpty", err)
	}
	if got, want := listTree(t, dst), []string{"keep -rw-r--r-- mine"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUnpack(t *testing.T) {
	// A umask that would strip bits: modes must come out as the archive's.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	data := makeTar(t,
		member{name: "pkg-1.0/", typ: tar.TypeDir, mode: 0o700},
		member{name: "pkg-1.0/configure", typ: tar.TypeReg, mode: 0o775, body: "#!/bin/sh\n"},
		member{name: "pkg-1.0/README", typ: tar.TypeReg, mode: 0o600, body: "read me"},
		member{name: "pkg-1.0/odd", typ: tar.TypeReg, mode: 0o641, body: "others may exec, owner may not"},
		reg("pkg-1.0/src/deep/er/x.c", "int x;"),
		symlink("pkg-1.0/src/link", "deep/er/x.c"),
		symlink("pkg-1.0/top", "."),
		reg("pkg-1.0/a", "first"),
		hardlink("pkg-1.0/h", "pkg-1.0/a"),
		reg("pkg-1.0/a", "replaced"), // must not change h: a new inode, not a write through
		member{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
	)
	dst := filepath.Join(t.TempDir(), "out")
	st, err := Unpack(context.Background(), bytes.NewReader(data), dst, Strip(1))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README -rw-r--r-- read me",
		"a -rw-r--r-- replaced",
		"configure -rwxr-xr-x #!/bin/sh\n",
		"h -rw-r--r-- first",
		"odd -rw-r--r-- others may exec, owner may not",
		"src drwxr-xr-x",
		"src/deep drwxr-xr-x",
		"src/deep/er drwxr-xr-x",
		"src/deep/er/x.c -rw-r--r-- int x;",
		"src/link Lrwxrwxrwx -> deep/er/x.c",
		"top Lrwxrwxrwx -> .",
	}
	if got := listTree(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("tree:\ngot  %q\nwant %q", got, want)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o755 {
		t.Errorf("DIR mode: got %v, want 0755", fi.Mode().Perm())
	}
	if st.Files != 6 || st.Hardlinks != 1 || st.Symlinks != 2 || st.Compression != None {
		t.Errorf("stats: got %+v", st)
	}
}

func TestUnpackOptions(t *testing.T) {
	usrMerge := func(name string) (string, error) {
		for _, d := range []string{"bin/", "lib/", "sbin/"} {
			if strings.HasPrefix(name, d) || name+"/" == d {
				return "usr/" + name, nil
			}
		}
		return name, nil
	}
	t.Run("MapName and RootfsLinks", func(t *testing.T) {
		data := makeTar(t, dir("./"), dir("./bin/"), exe("./bin/sh", "dash"),
			symlink("./usr/bin/awk", "/etc/alternatives/awk"), hardlink("./bin/sh2", "./bin/sh"))
		dst := filepath.Join(t.TempDir(), "root")
		if _, err := Unpack(context.Background(), bytes.NewReader(data), dst, MapName(usrMerge), RootfsLinks()); err != nil {
			t.Fatal(err)
		}
		want := []string{"usr drwxr-xr-x", "usr/bin drwxr-xr-x", "usr/bin/awk Lrwxrwxrwx -> /etc/alternatives/awk",
			"usr/bin/sh -rwxr-xr-x dash", "usr/bin/sh2 -rwxr-xr-x dash"}
		if got := listTree(t, dst); !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("MapName result validated", func(t *testing.T) {
		bad := func(string) (string, error) { return "../escape", nil }
		_, err := Unpack(context.Background(), bytes.NewReader(makeTar(t, reg("f", "x"))), filepath.Join(t.TempDir(), "d"), MapName(bad))
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("got %v, want ErrUnsafePath", err)
		}
	})
	t.Run("Merge", func(t *testing.T) {
		dst := t.TempDir()
		os.MkdirAll(filepath.Join(dst, "usr/bin"), 0o755)
		os.Symlink("usr/bin", filepath.Join(dst, "bin"))
		os.WriteFile(filepath.Join(dst, "usr/bin/old"), []byte("old"), 0o644)
		os.WriteFile(filepath.Join(dst, "usr/bin/keep"), []byte("keep"), 0o644)
		if _, err := Unpack(context.Background(), bytes.NewReader(makeTar(t, reg("usr/bin/old", "new"), reg("usr/bin/more", "more"))), dst, Merge()); err != nil {
			t.Fatal(err)
		}
		// A later package may not write through the tree's own symlink.
		_, err := Unpack(context.Background(), bytes.NewReader(makeTar(t, reg("bin/evil", "x"))), dst, Merge(), Name("evil.deb"))
		if !errors.Is(err, ErrThroughSymlink) {
			t.Errorf("got %v, want ErrThroughSymlink", err)
		}
		_, err = Unpack(context.Background(), bytes.NewReader(makeTar(t, reg("bin", "x"))), dst, Merge())
		if !errors.Is(err, ErrTypeChange) {
			t.Errorf("file over an on-disk symlink: got %v, want ErrTypeChange", err)
		}
		want := []string{"bin Lrwxrwxrwx -> usr/bin", "usr drwxr-xr-x", "usr/bin drwxr-xr-x",
			"usr/bin/keep -rw-r--r-- keep", "usr/bin/more -rw-r--r-- more", "usr/bin/old -rw-r--r-- new"}
		if got := listTree(t, dst); !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("ClearSpecialBits", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "d")
		data := makeTar(t, member{name: "su", typ: tar.TypeReg, mode: 0o4755, body: "x"})
		if _, err := Unpack(context.Background(), bytes.NewReader(data), dst, ClearSpecialBits()); err != nil {
			t.Fatal(err)
		}
		if got, want := listTree(t, dst), []string{"su -rwxr-xr-x x"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("Progress", func(t *testing.T) {
		data := gz(t, makeTar(t, reg("a", strings.Repeat("a", 100000))))
		var last int64
		calls := 0
		if _, err := Unpack(context.Background(), bytes.NewReader(data), filepath.Join(t.TempDir(), "d"),
			Progress(func(n int64) { last = n; calls++ })); err != nil {
			t.Fatal(err)
		}
		if calls == 0 || last != int64(len(data)) {
			t.Errorf("progress: %d calls, last %d, want at least one and last %d", calls, last, len(data))
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		parent := t.TempDir()
		_, err := Unpack(ctx, bytes.NewReader(makeTar(t, reg("a", "x"))), filepath.Join(parent, "d"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if got := listTree(t, parent); len(got) != 0 {
			t.Errorf("left behind: %q", got)
		}
	})
}

func TestOpenCompressions(t *testing.T) {
	plain := makeTar(t, reg("f", "content"))
	cases := map[Compression][]byte{None: plain, Gzip: gz(t, plain)}
	if p := testenv.NeedTool(t, "bzip2"); p != "" {
		cases[Bzip2] = filter(t, plain, p, "-c")
	}
	if p := testenv.NeedTool(t, "xz"); p != "" {
		cases[Xz] = filter(t, plain, p, "-c")
	}
	for comp, data := range cases {
		r, got, err := Open(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v: %v", comp, err)
		}
		if got != comp {
			t.Errorf("got %v, want %v", got, comp)
		}
		b, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(b, plain) {
			t.Errorf("%v: decompressed %d bytes (err %v), want the %d-byte tar", comp, len(b), err, len(plain))
		}
	}
}

func TestOpenRefusesHugeXzDictionary(t *testing.T) {
	xzPath := testenv.NeedTool(t, "xz")
	data := filter(t, makeTar(t, reg("f", "x")), xzPath, "-c", "--lzma2=preset=0,dict=1MiB")
	// Patch the block header's LZMA2 dictionary byte to 4 GiB and fix its CRC.
	b := data[12:]
	hdrLen := (int(b[0]) + 1) * 4
	i := bytes.Index(b[:hdrLen], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	b[i+2] = 40
	putCRC(b[:hdrLen])
	_, _, err := Open(bytes.NewReader(data))
	if err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("got %v, want a dictionary size error", err)
	}
}
