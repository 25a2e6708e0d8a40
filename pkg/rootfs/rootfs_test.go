package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const epoch = 1727308800

// fixture is the test tree: every kind of entry the writer handles, names
// that need PAX, and paths whose bytewise order differs from a walk's.
type fixEntry struct {
	path string
	kind byte        // 'd' dir, 'f' file, 'l' symlink, 'h' hard link
	perm fs.FileMode // before the umask
	data string      // file content, or link target
}

var longDir = strings.Repeat("d", 60) + "/" + strings.Repeat("e", 60)

var fixture = []fixEntry{
	{"bin", 'd', 0o777, ""},
	{"bin/busybox", 'f', 0o777, "\x7fELF pretend busybox\n"},
	{"bin/sh", 'h', 0, "bin/busybox"},
	{"bin/ls", 'l', 0, "busybox"},
	{"etc", 'd', 0o777, ""},
	{"etc/passwd", 'f', 0o666, "root:x:0:0:root:/root:/bin/sh\n"},
	{"etc/motd", 'f', 0o666, ""},
	{"etc/secret", 'f', 0o600, "private to root on the host, public in the image\n"},
	{"tmp", 'd', 0o700, ""},
	{"var", 'd', 0o777, ""},
	{"var/empty", 'd', 0o777, ""},
	{"a", 'd', 0o777, ""},
	{"a/b", 'f', 0o666, "in a dir\n"},
	{"a-b", 'f', 0o666, "sorts before a/b bytewise\n"},
	{"usr", 'd', 0o777, ""},
	{"usr/" + strings.Repeat("d", 60), 'd', 0o777, ""},
	{"usr/" + longDir, 'd', 0o777, ""},
	{"usr/" + longDir + "/ustar-prefix-split.txt", 'f', 0o666, "name over 100 bytes, fits USTAR's prefix\n"},
	{"usr/" + strings.Repeat("n", 120), 'f', 0o666, "last component over 100 bytes: PAX\n"},
	{"usr/naïve", 'f', 0o666, "non-ASCII name: PAX\n"},
	{"usr/link-out", 'l', 0, "../../../../etc/shadow"},
	{"usr/abs", 'l', 0, "/etc/passwd"},
	{"usr/dangling", 'l', 0, "no/such/file"},
	{"usr/longlink", 'l', 0, strings.Repeat("x/", 70) + "target"},
}

var fixtureOpts = []Option{WithEpoch(epoch), WithMode("/tmp", 0o777|fs.ModeSticky)}

type buildHow struct {
	reverse bool
	umask   int
	mtime   time.Time
	owner   int // -1 to leave as created
}

// makeTree builds the fixture under dir as how says; parents are created on
// demand, so that the reverse order really creates things in another order.
func makeTree(t *testing.T, dir string, how buildHow) {
	t.Helper()
	old := syscall.Umask(how.umask)
	defer syscall.Umask(old)
	entries := slices.Clone(fixture)
	if how.reverse {
		slices.Reverse(entries)
	}
	made := map[string]bool{}
	var mk func(e fixEntry)
	mk = func(e fixEntry) {
		if made[e.path] {
			return
		}
		if parent := filepath.Dir(e.path); parent != "." && !made[parent] {
			for _, p := range fixture {
				if p.path == parent {
					mk(p)
				}
			}
		}
		p := filepath.Join(dir, e.path)
		var err error
		switch e.kind {
		case 'd':
			err = os.Mkdir(p, e.perm)
		case 'f':
			err = os.WriteFile(p, []byte(e.data), e.perm)
		case 'l':
			err = os.Symlink(e.data, p)
		case 'h':
			for _, q := range fixture {
				if q.path == e.data {
					mk(q)
				}
			}
			err = os.Link(filepath.Join(dir, e.data), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		made[e.path] = true
	}
	for _, e := range entries {
		mk(e)
	}
	for _, e := range fixture {
		p := filepath.Join(dir, e.path)
		if how.owner >= 0 {
			if err := os.Lchown(p, how.owner, how.owner); err != nil {
				t.Fatal(err)
			}
		}
		ts := []unix.Timeval{unix.NsecToTimeval(how.mtime.UnixNano()), unix.NsecToTimeval(how.mtime.UnixNano())}
		if err := unix.Lutimes(p, ts); err != nil {
			t.Fatal(err)
		}
	}
}

func tarOf(t *testing.T, dir string, opts ...Option) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteTar(context.Background(), dir, &b, opts...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	owner := -1 // owners vary only as root; CI runs as root
	if os.Geteuid() == 0 {
		owner = 1234
	} else if testenv.Strict() {
		t.Fatal("required in CI: root, to vary file owners")
	}
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "elsewhere", "deeper")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	makeTree(t, a, buildHow{umask: 0o022, mtime: time.Unix(epoch-86400, 0), owner: -1})
	makeTree(t, b, buildHow{reverse: true, umask: 0o077, mtime: time.Now().Add(time.Hour), owner: owner})

	ta, tb := tarOf(t, a, fixtureOpts...), tarOf(t, b, fixtureOpts...)
	if !bytes.Equal(ta, tb) {
		t.Fatalf("tar of the same tree built two ways differs:\n%s\nvs\n%s", listing(t, ta), listing(t, tb))
	}
	ra, err := Write(context.Background(), a, t.TempDir(), "fixture", fixtureOpts...)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Write(context.Background(), b, t.TempDir(), "fixture", fixtureOpts...)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(ra.Path) != filepath.Base(rb.Path) || ra.DiffID != rb.DiffID || ra.Size != rb.Size {
		t.Errorf("got %+v and %+v, want the same tarball", ra, rb)
	}
}

func listing(t *testing.T, tarball []byte) string {
	t.Helper()
	es, err := List(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%-8s %v %6d %s %s", e.Type, e.Mode, e.Size, orDash(e.SHA256), e.Path)
		if e.Link != "" {
			fmt.Fprintf(&b, " -> %s", e.Link)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s[:len("sha256:")+12]
}

// TestGolden pins the bytes: a change to the writer, the compressor or its
// settings shows here. Update with `go test ./pkg/rootfs -run Golden -update`.
func TestGolden(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, buildHow{umask: 0o022, mtime: time.Unix(epoch, 0), owner: -1})
	res, err := Write(context.Background(), dir, t.TempDir(), "fixture", fixtureOpts...)
	if err != nil {
		t.Fatal(err)
	}
	raw := tarOf(t, dir, fixtureOpts...)
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != res.DiffID {
		t.Errorf("DiffID %s, want the sha256 of the tar %s", res.DiffID, got)
	}
	if int64(len(raw)) != res.UncompressedSize {
		t.Errorf("UncompressedSize %d, want %d", res.UncompressedSize, len(raw))
	}
	if fi, err := os.Stat(res.Path); err != nil || fi.Size() != res.Size {
		t.Errorf("file %s: %v, size want %d", res.Path, err, res.Size)
	}
	data, _ := os.ReadFile(res.Path)
	if want := "fixture.rootfs.sha256-" + fmt.Sprintf("%x", sha256.Sum256(data)) + ".tar.xz"; filepath.Base(res.Path) != want {
		t.Errorf("file name %s, want %s", filepath.Base(res.Path), want)
	}
	got := fmt.Sprintf("compressor %s\ndiffid %s\ndigest %s\n\n%s", CompressorID, res.DiffID, res.Digest, listing(t, raw))
	golden := filepath.Join("testdata", "fixture.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestHeaders checks the header fields that carry host state are cleared, the
// order, and the end of the archive.
func TestHeaders(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, buildHow{umask: 0o022, mtime: time.Now(), owner: -1})
	raw := tarOf(t, dir, fixtureOpts...)
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and empty names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(time.Unix(epoch, 0)) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v, want mtime %d only", h.Name, h.ModTime, h.AccessTime, h.ChangeTime, epoch)
		}
		for k := range h.PAXRecords {
			if k != "path" && k != "linkpath" {
				t.Errorf("%s: PAX record %q, want only path or linkpath", h.Name, k)
			}
		}
		if len(h.PAXRecords) == 0 && h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want USTAR", h.Name, h.Format)
		}
	}
	if !slices.IsSortedFunc(names, func(a, b string) int {
		if pathLess(a, b) {
			return -1
		}
		return 1
	}) {
		t.Errorf("entries not sorted: %q", names)
	}
	if len(names) != len(fixture) {
		t.Errorf("got %d entries, want %d", len(names), len(fixture))
	}
	// The last data block is followed by exactly two zero blocks.
	if len(raw)%512 != 0 || !bytes.Equal(raw[len(raw)-1024:], make([]byte, 1024)) || bytes.Equal(raw[len(raw)-1536:len(raw)-1024], make([]byte, 512)) {
		t.Errorf("archive end: want one data block then exactly two zero blocks, length %d", len(raw))
	}
}

// TestGNUTar checks that xz(1) and GNU tar accept the file, and that GNU tar
// extracts the tree with the modes, links and contents the writer meant.
func TestGNUTar(t *testing.T) {
	tarBin := testenv.NeedTool(t, "tar")
	xzBin := testenv.NeedTool(t, "xz")
	testenv.NeedRoot(t) // extraction with the archive's owners and modes
	src := t.TempDir()
	makeTree(t, src, buildHow{umask: 0o022, mtime: time.Now(), owner: -1})
	res, err := Write(context.Background(), src, t.TempDir(), "fixture", fixtureOpts...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xzBin, "-t", res.Path).CombinedOutput(); err != nil {
		t.Fatalf("xz -t: %v\n%s", err, out)
	}
	out, err := exec.Command(tarBin, "-tvJf", res.Path).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tvf: %v\n%s", err, out)
	}
	if lines := strings.Count(string(out), "\n"); lines != len(fixture) {
		t.Errorf("tar -tvf lists %d entries, want %d:\n%s", lines, len(fixture), out)
	}
	dst := t.TempDir()
	if out, err := exec.Command(tarBin, "-xpJf", res.Path, "--numeric-owner", "-C", dst).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	for _, e := range fixture {
		p := filepath.Join(dst, e.path)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("extracted: %v", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", e.path, st.Uid, st.Gid)
		}
		var want fs.FileMode
		switch e.kind {
		case 'd':
			want = fs.ModeDir | 0o755
			if e.path == "tmp" {
				want = fs.ModeDir | fs.ModeSticky | 0o777
			}
		case 'f', 'h':
			want = 0o644
			if e.perm&0o111 != 0 || e.kind == 'h' {
				want = 0o755
			}
		case 'l':
			want = fs.ModeSymlink | 0o777
			if got, _ := os.Readlink(p); got != e.data {
				t.Errorf("%s: link target %q, want %q", e.path, got, e.data)
			}
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", e.path, fi.Mode(), want)
		}
		if e.kind == 'f' {
			if got, _ := os.ReadFile(p); string(got) != e.data {
				t.Errorf("%s: content %q, want %q", e.path, got, e.data)
			}
		}
		if e.kind == 'h' {
			target, _ := os.Lstat(filepath.Join(dst, e.data))
			if !os.SameFile(fi, target) {
				t.Errorf("%s: not a hard link of %s", e.path, e.data)
			}
		}
		if !fi.ModTime().Equal(time.Unix(epoch, 0)) && e.kind != 'l' {
			t.Errorf("%s: mtime %v, want %d", e.path, fi.ModTime(), epoch)
		}
	}
}

// TestHostile is one row per thing a build may leave in /out to attack or
// confuse the packer. Each refused row must leave nothing in the destination.
func TestHostile(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "host-secret"), []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		root     bool
		setup    func(dir string) error
		opts     []Option
		wantErr  error  // nil: packed
		wantPath string // the entry the error names
	}{
		{name: "symlink out is stored, not followed", setup: func(dir string) error {
			return os.Symlink(outside, filepath.Join(dir, "escape"))
		}},
		{name: "FIFO", wantErr: ErrSpecialFile, wantPath: "sub/fifo", setup: func(dir string) error {
			os.Mkdir(filepath.Join(dir, "sub"), 0o755)
			return unix.Mkfifo(filepath.Join(dir, "sub", "fifo"), 0o644)
		}},
		{name: "socket", wantErr: ErrSpecialFile, wantPath: "sock", setup: func(dir string) error {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")})
		}},
		{name: "character device", root: true, wantErr: ErrSpecialFile, wantPath: "null", setup: func(dir string) error {
			return unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		}},
		{name: "block device", root: true, wantErr: ErrSpecialFile, wantPath: "loop", setup: func(dir string) error {
			return unix.Mknod(filepath.Join(dir, "loop"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0)))
		}},
		{name: "setuid file", wantErr: ErrSetID, wantPath: "bin/su", setup: func(dir string) error {
			return writeMode(filepath.Join(dir, "bin", "su"), 0o755|fs.ModeSetuid)
		}},
		{name: "setgid file", wantErr: ErrSetID, wantPath: "bin/wall", setup: func(dir string) error {
			return writeMode(filepath.Join(dir, "bin", "wall"), 0o755|fs.ModeSetgid)
		}},
		{name: "mode for a path not in the tree", wantErr: ErrNotInTree, opts: []Option{WithMode("etc/shadow", 0o600)}, setup: func(dir string) error {
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				testenv.NeedRoot(t)
			}
			src, dst := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "ok"), []byte("fine"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tt.setup(src); err != nil {
				t.Fatal(err)
			}
			res, err := Write(context.Background(), src, dst, "hostile", tt.opts...)
			if left, _ := os.ReadDir(dst); tt.wantErr != nil && len(left) != 0 {
				t.Errorf("left behind in the destination: %v", left)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want it packed", err)
				}
				es, err := ListFile(res.Path)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					if strings.HasPrefix(e.Path, "escape/") {
						t.Errorf("followed the link: %s is in the tarball", e.Path)
					}
					if e.Path == "escape" && (e.Type != TypeSymlink || e.Link != outside) {
						t.Errorf("escape: got %s -> %q, want a symlink to %s", e.Type, e.Link, outside)
					}
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			var ee *EntryError
			if tt.wantPath != "" && (!errors.As(err, &ee) || ee.Path != tt.wantPath) {
				t.Errorf("got %v, want the error to name %s", err, tt.wantPath)
			}
		})
	}
}

func writeMode(p string, m fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		return err
	}
	return os.Chmod(p, m)
}

func TestModeErrors(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, buildHow{umask: 0o022, mtime: time.Now(), owner: -1})
	tests := []struct {
		opt  Option
		path string
	}{
		{WithMode("bin/ls", 0o755), "bin/ls"},   // a symlink
		{WithMode("/bin/sh", 0o4755), "bin/sh"}, // a later hard link
	}
	for _, tt := range tests {
		err := WriteTar(context.Background(), src, io.Discard, tt.opt)
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Path != tt.path {
			t.Errorf("got %v, want an error naming %s", err, tt.path)
		}
	}
	// An explicit setuid mode on the file itself is the caller's to give.
	var b bytes.Buffer
	if err := WriteTar(context.Background(), src, &b, WithMode("bin/busybox", 0o755|fs.ModeSetuid)); err != nil {
		t.Fatal(err)
	}
	es, _ := List(&b)
	for _, e := range es {
		if (e.Path == "bin/busybox" || e.Path == "bin/sh") && e.Mode != 0o755|fs.ModeSetuid {
			t.Errorf("%s: mode %v, want %v", e.Path, e.Mode, 0o755|fs.ModeSetuid)
		}
	}
}

func TestPathLess(t *testing.T) {
	got := []string{"a-b", "a/b/c", "a", "b", "a/b", "a/c", "ab", "a/b-c"}
	slices.SortFunc(got, func(x, y string) int {
		if pathLess(x, y) {
			return -1
		}
		if pathLess(y, x) {
			return 1
		}
		return 0
	})
	want := []string{"a", "a/b", "a/b/c", "a/b-c", "a/c", "a-b", "ab", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestInvalidArguments(t *testing.T) {
	src := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", ".hidden"} {
		if _, err := Write(context.Background(), src, t.TempDir(), name); err == nil {
			t.Errorf("Write name %q: got no error, want one", name)
		}
	}
	if err := WriteTar(context.Background(), src, io.Discard, WithEpoch(-1)); err == nil {
		t.Error("epoch -1: got no error, want one")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := t.TempDir()
	if _, err := Write(ctx, src, dst, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: got %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Errorf("canceled: left %v", left)
	}
}

// TestCompressorIDMatchesGoMod keeps CompressorID honest when the xz module
// is bumped in go.mod.
func TestCompressorIDMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(xzModule, "@", " ", 1)
	if !bytes.Contains(mod, []byte(want+"\n")) && !bytes.Contains(mod, []byte(want+" ")) {
		t.Errorf("go.mod does not require %s; update xzModule in rootfs.go", want)
	}
	if !strings.Contains(CompressorID, xzModule) {
		t.Errorf("CompressorID %q does not name %s", CompressorID, xzModule)
	}
}

func TestListRejectsDanglingHardlink(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "a", Linkname: "missing"})
	tw.Close()
	if _, err := List(&b); err == nil {
		t.Error("got no error, want one for a hard link to no earlier file")
	}
}

func TestListRejectsSparse(t *testing.T) {
	tarBin := testenv.NeedTool(t, "tar")
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "hole"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil { // a 1 GiB hole
		t.Fatal(err)
	}
	f.Close()
	for _, format := range []string{"gnu", "posix"} {
		arc := filepath.Join(t.TempDir(), "sparse.tar")
		if out, err := exec.Command(tarBin, "--sparse", "--format="+format, "-cf", arc, "-C", dir, "hole").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		if _, err := ListFile(arc); !errors.Is(err, ErrSparse) {
			t.Errorf("%s sparse entry: got %v, want ErrSparse", format, err)
		}
	}
}
