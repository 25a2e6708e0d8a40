package digest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/archive"
)

// node is one file of a fixture tree.
type node struct {
	path   string
	mode   os.FileMode // 0 for a symlink
	body   string      // content, or a symlink's target
	islink bool
}

// fixture exercises git's tree order (a directory sorts as if its name
// ended in "/": "a-b" < "a.b" < "a/" < "a0"), exec bits, symlinks, nested
// and empty directories, empty files and a .gitignore that must hide
// nothing.
var fixture = []node{
	{path: ".gitignore", mode: 0o644, body: "*\n!.gitignore\n"},
	{path: "a-b", mode: 0o644, body: "dash"},
	{path: "a.b", mode: 0o644, body: "dot"},
	{path: "a/b", mode: 0o644, body: "slash"},
	{path: "a/b.c/deep/file", mode: 0o600, body: "private is still 100644"},
	{path: "a0", mode: 0o755, body: "#!/bin/sh\necho a0\n"},
	{path: "ab", mode: 0o644, body: ""},
	{path: "bin/tool", mode: 0o700, body: "#!/bin/sh\n"},
	{path: "link-to-a", body: "a", islink: true},
	{path: "a/dangling", body: "../nowhere/at/all", islink: true},
	{path: "name with spaces\tand tab", mode: 0o644, body: "odd name"},
	{path: "unicodé/ファイル", mode: 0o644, body: "utf-8"},
	{path: "empty", mode: 0o644, body: ""},
	{path: "group-exec-only", mode: 0o654, body: "git reads only the owner's bit: 100644"},
	{path: "z/.git-not-a-gitdir", mode: 0o644, body: "kept"},
	{path: "dist/config.mak", mode: 0o644, body: "ignored by .gitignore, counted by cairn"},
}

// writeTree creates nodes under dir in the given order, with the given
// mtime, and an empty directory git and cairn must both leave out.
func writeTree(t testing.TB, dir string, nodes []node, mtime time.Time) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(dir, n.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if n.islink {
			if err := os.Symlink(n.body, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(n.body), n.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, n.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty-dir/nested"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// gitWriteTree runs the real git in a fresh repository at dir, adding
// every file (-f: .gitignore hides nothing), and returns `git write-tree`.
func gitWriteTree(t testing.TB, dir string) string {
	t.Helper()
	git := testenv.NeedTool(t, "git")
	run := func(args ...string) string {
		cmd := exec.Command(git, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	run("add", "-A", "-f")
	id := run("write-tree")
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		t.Fatal(err)
	}
	return id
}

// specDigest computes "cairn tree v1" straight from docs/digest.md, apart
// from the package's code, for nodes.
func specDigest(nodes []node) string {
	type rec struct{ path, line string }
	var recs []rec
	for _, n := range nodes {
		mode := "100644"
		switch {
		case n.islink:
			mode = "120000"
		case n.mode&0o100 != 0:
			mode = "100755"
		}
		sum := sha256.Sum256([]byte(n.body))
		recs = append(recs, rec{n.path, mode + " " + hex.EncodeToString(sum[:]) + " " + n.path + "\x00"})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].path < recs[j].path })
	h := sha256.New()
	h.Write([]byte("cairn tree v1\n"))
	for _, r := range recs {
		h.Write([]byte(r.line))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func TestFromDirMatchesGit(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, fixture, time.Unix(1e9, 0))
	m, err := FromDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(m), len(fixture); got != want {
		t.Errorf("got %d entries, want %d", got, want)
	}
	if got, want := m.GitTree(), gitWriteTree(t, dir); got != want {
		t.Errorf("git tree: got %s, want %s (git write-tree)", got, want)
	}
	if got, want := m.TreeDigest(), specDigest(fixture); got != want {
		t.Errorf("tree digest: got %s, want %s", got, want)
	}
	if err := ParseTreeDigest(m.TreeDigest()); err != nil {
		t.Error(err)
	}
}

// TestKnownAnswers pins the two digests of small trees, so that a change
// to either format is seen. The git ids were printed by git write-tree, the
// tree digest by a separate Python hashlib one-liner.
func TestKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		nodes     []node
		tree, git string
	}{
		{nil, "sha256:" + hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("cairn tree v1\n")); return s[:] }()),
			"4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
		{[]node{{path: "hello", mode: 0o644, body: "hello\n"}},
			"sha256:671862705eb6c61509e0da4037463e066dceb4f6931f40e13373eb858dc87e36",
			"b4d01e9b0c4a9356736dfddf8830ba9a54f5271c"},
	} {
		dir := t.TempDir()
		writeTree(t, dir, tc.nodes, time.Unix(0, 0))
		m, err := FromDir(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.GitTree(); got != tc.git {
			t.Errorf("%v: git tree: got %s, want %s", tc.nodes, got, tc.git)
		}
		if got := m.TreeDigest(); got != tc.tree {
			t.Errorf("%v: tree digest: got %s, want %s", tc.nodes, got, tc.tree)
		}
	}
}

// TestIndependentOfMetadata builds the fixture twice, differently in every
// way that is not content, and expects the same digests.
func TestIndependentOfMetadata(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, fixture, time.Unix(1e9, 0))

	old := syscall.Umask(0o077) // b's directories come out 0700
	reversed := append([]node(nil), fixture...)
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	for i := range reversed { // other permission bits, same kinds
		switch reversed[i].mode {
		case 0o644:
			reversed[i].mode = 0o600
		case 0o755:
			reversed[i].mode = 0o744
		}
	}
	writeTree(t, b, reversed, time.Unix(2e9, 0))
	syscall.Umask(old)
	if os.Geteuid() == 0 {
		filepath.Walk(b, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 1234, 5678) })
	}
	ma, err := FromDir(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := FromDir(context.Background(), b, Workers(1))
	if err != nil {
		t.Fatal(err)
	}
	if ma.TreeDigest() != mb.TreeDigest() || ma.GitTree() != mb.GitTree() {
		t.Errorf("digests differ: %s %s vs %s %s", ma.TreeDigest(), ma.GitTree(), mb.TreeDigest(), mb.GitTree())
	}
}

func TestDigestChangesWithContent(t *testing.T) {
	base := []node{{path: "f", mode: 0o644, body: "x"}, {path: "d/g", mode: 0o644, body: "y"}}
	variants := map[string][]node{
		"content":  {{path: "f", mode: 0o644, body: "X"}, {path: "d/g", mode: 0o644, body: "y"}},
		"exec bit": {{path: "f", mode: 0o755, body: "x"}, {path: "d/g", mode: 0o644, body: "y"}},
		"symlink":  {{path: "f", body: "x", islink: true}, {path: "d/g", mode: 0o644, body: "y"}},
		"rename":   {{path: "f", mode: 0o644, body: "x"}, {path: "e/g", mode: 0o644, body: "y"}},
		"extra":    append(append([]node(nil), base...), node{path: "h", mode: 0o644, body: ""}),
	}
	digests := func(nodes []node) (string, string) {
		dir := t.TempDir()
		writeTree(t, dir, nodes, time.Unix(0, 0))
		m, err := FromDir(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		return m.TreeDigest(), m.GitTree()
	}
	bt, bg := digests(base)
	for name, nodes := range variants {
		vt, vg := digests(nodes)
		if vt == bt || vg == bg {
			t.Errorf("%s: digests unchanged (%s %s)", name, vt, vg)
		}
	}
}

func TestFromDirThroughSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "real"), fixture, time.Unix(0, 0))
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	a, err := FromDir(context.Background(), filepath.Join(dir, "real"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromDir(context.Background(), filepath.Join(dir, "link"))
	if err != nil {
		t.Fatal(err)
	}
	if a.TreeDigest() != b.TreeDigest() {
		t.Errorf("through a symlinked root: got %s, want %s", b.TreeDigest(), a.TreeDigest())
	}
}

func TestFromDirRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok"), []byte("x"), 0o644)
	fifo := filepath.Join(dir, "sub", "fifo")
	os.Mkdir(filepath.Dir(fifo), 0o755)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := FromDir(context.Background(), dir)
	if !errors.Is(err, ErrSpecialFile) || !strings.Contains(err.Error(), fifo) {
		t.Errorf("got %v, want ErrSpecialFile naming %s", err, fifo)
	}
}

func TestFromDirSkipGitDirs(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, fixture, time.Unix(0, 0))
	want := gitWriteTree(t, dir)
	// A checkout: its .git must not count when asked, as git never adds it.
	os.MkdirAll(filepath.Join(dir, ".git/objects"), 0o755)
	os.WriteFile(filepath.Join(dir, ".git/HEAD"), []byte("ref: refs/heads/main\n"), 0o644)
	m, err := FromDir(context.Background(), dir, SkipGitDirs())
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GitTree(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	m, err = FromDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GitTree(); got == want {
		t.Errorf("without SkipGitDirs, .git was left out")
	}
}

func TestParseTreeDigest(t *testing.T) {
	good := "sha256:" + strings.Repeat("0a", 32)
	for s, ok := range map[string]bool{
		good:                                 true,
		strings.ToUpper(good):                false,
		"sha256:" + strings.Repeat("0A", 32): false,
		"sha256:" + strings.Repeat("0", 63):  false,
		"sha256:" + strings.Repeat("0", 65):  false,
		"sha512:" + strings.Repeat("0", 64):  false,
		strings.Repeat("0", 64):              false,
		"sha256:" + strings.Repeat("g", 64):  false,
		"":                                   false,
	} {
		err := ParseTreeDigest(s)
		if (err == nil) != ok {
			t.Errorf("ParseTreeDigest(%q): got %v, want ok=%v", s, err, ok)
		}
		if err != nil && !errors.Is(err, ErrBadDigest) {
			t.Errorf("ParseTreeDigest(%q): got %v, want ErrBadDigest", s, err)
		}
	}
}

// TestArchiveMatchesDir packs the fixture as tar, tar.gz, tar.bz2 and
// tar.xz with GNU tar and the real compressors, and expects the
// directory's digests from each archive stream, with one component
// stripped.
func TestArchiveMatchesDir(t *testing.T) {
	tarPath := testenv.NeedTool(t, "tar")
	top := t.TempDir()
	src := filepath.Join(top, "pkg-1.0")
	writeTree(t, src, fixture, time.Unix(1e9, 0))
	m, err := FromDir(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(tarPath, "-C", top, "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "pkg-1.0").Output()
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{"tar": raw}
	for name, tool := range map[string][]string{"tar.gz": {"gzip", "-n"}, "tar.bz2": {"bzip2"}, "tar.xz": {"xz"}} {
		p := testenv.NeedTool(t, tool[0])
		cmd := exec.Command(p, append(tool[1:], "-c")...)
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tool[0], err)
		}
		variants[name] = out
	}
	for name, data := range variants {
		am, err := FromArchive(context.Background(), bytes.NewReader(data), Strip(1), archive.Name(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if am.TreeDigest() != m.TreeDigest() || am.GitTree() != m.GitTree() {
			t.Errorf("%s: got %s %s, want %s %s", name, am.TreeDigest(), am.GitTree(), m.TreeDigest(), m.GitTree())
		}
	}
}

// TestArchiveOrderAndLinks: a Go-written archive in reverse order, with a
// hardlink and a replaced member, hashes as the tree unpacking it gives.
func TestArchiveOrderAndLinks(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "z/b", Typeflag: tar.TypeReg, Mode: 0o755}, "second")
	add(&tar.Header{Name: "y", Typeflag: tar.TypeReg, Mode: 0o644}, "old")
	add(&tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "y"}, "")
	add(&tar.Header{Name: "y", Typeflag: tar.TypeReg, Mode: 0o644}, "new")
	add(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "z/b"}, "")
	tw.Close()
	am, err := FromArchive(context.Background(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "u")
	if _, err := archive.Unpack(context.Background(), bytes.NewReader(buf.Bytes()), dir); err != nil {
		t.Fatal(err)
	}
	dm, err := FromDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if am.TreeDigest() != dm.TreeDigest() || am.GitTree() != dm.GitTree() {
		t.Errorf("archive %s %s, unpacked %s %s", am.TreeDigest(), am.GitTree(), dm.TreeDigest(), dm.GitTree())
	}
	var paths []string
	for _, e := range am {
		paths = append(paths, fmt.Sprintf("%s:%s:%d", e.Path, e.Kind, e.Size))
	}
	if got, want := strings.Join(paths, " "), "a:file:3 l:symlink:3 y:file:3 z/b:exec:6"; got != want {
		t.Errorf("manifest: got %s, want %s", got, want)
	}
	if got := gitWriteTree(t, dir); got != dm.GitTree() {
		t.Errorf("git write-tree %s, cairn %s", got, dm.GitTree())
	}
}

// TestArchiveRefusedAsUnpack: a hostile archive does not hash.
func TestArchiveRefusedAsUnpack(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"})
	tw.WriteHeader(&tar.Header{Name: "l/passwd", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	_, err := FromArchive(context.Background(), bytes.NewReader(buf.Bytes()), archive.Name("evil.tar"))
	var ee *archive.EntryError
	if !errors.As(err, &ee) || !errors.Is(err, archive.ErrLinkEscape) || ee.Entry != "l" {
		t.Errorf("got %v, want ErrLinkEscape for entry l", err)
	}
}

// TestMuslTarball checks the pinned fact: musl 1.2.5's release tarball,
// one component stripped, has the git tree of tag v1.2.5.
func TestMuslTarball(t *testing.T) {
	p := os.Getenv("CAIRN_MUSL_TARBALL")
	if p == "" {
		t.Skip("set CAIRN_MUSL_TARBALL to musl-1.2.5.tar.gz")
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := FromArchive(context.Background(), f, Strip(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.GitTree(), "2deb5f7c62d8c9e9733c9ed77d9210b708bbb69e"; got != want {
		t.Errorf("git tree: got %s, want %s", got, want)
	}
	if got, want := m.TreeDigest(), "sha256:63c037697a5d1bed40eac5e0518fdcdf8afec47aabd6415f15ad53c8ad4054b4"; got != want {
		t.Errorf("tree digest: got %s, want %s", got, want)
	}
}
