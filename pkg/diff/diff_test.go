package diff

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cairn-build/cairn/pkg/oci"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// node is one entry of a test tree: a file (data), a symlink (link) or a
// directory (dir).
type node struct {
	path string
	data string
	mode os.FileMode
	link string
	dir  bool
}

func writeTree(t *testing.T, nodes []node) string {
	t.Helper()
	root := t.TempDir()
	for _, n := range nodes {
		p := filepath.Join(root, n.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case n.dir:
			err = os.MkdirAll(p, 0o755)
		case n.link != "":
			err = os.Symlink(n.link, p)
		default:
			if err = os.WriteFile(p, []byte(n.data), 0o644); err == nil {
				err = os.Chmod(p, n.mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var (
	treeA = []node{
		{path: "bin/tool", data: "#!/bin/sh\necho one\n", mode: 0o755},
		{path: "etc/stamp", data: "built at 1700000000\n", mode: 0o644},
		{path: "etc/conf", data: "same\n", mode: 0o644},
		{path: "etc/mode", data: "x\n", mode: 0o644},
		{path: "lib/link", link: "../bin/tool"},
		{path: "lib/kind", data: "a file\n", mode: 0o644},
		{path: "gone", data: "only in A\n", mode: 0o644},
		{path: "var/empty", dir: true},
	}
	treeB = []node{
		{path: "bin/tool", data: "#!/bin/sh\necho one\n", mode: 0o755},
		{path: "etc/stamp", data: "built at 1700000999\n", mode: 0o644},
		{path: "etc/conf", data: "same\n", mode: 0o644},
		{path: "etc/mode", data: "x\n", mode: 0o755},
		{path: "lib/link", link: "../bin/other"},
		{path: "lib/kind", link: "elsewhere"},
		{path: "new", data: "only in B\n", mode: 0o644},
		{path: "var/empty", dir: true},
	}
)

// want is one row per kind of difference, in path order.
type row struct {
	path   string
	kind   Kind
	what   []Aspect
	offset int64 // for content: the first differing byte
}

var wantRows = []row{
	{path: "etc/mode", kind: Changed, what: []Aspect{AspectMode}},
	{path: "etc/stamp", kind: Changed, what: []Aspect{AspectContent}, offset: 16},
	{path: "gone", kind: Removed},
	{path: "lib/kind", kind: Changed, what: []Aspect{AspectType}},
	{path: "lib/link", kind: Changed, what: []Aspect{AspectLink}},
	{path: "new", kind: Added},
}

// forms writes a tree as each input kind Paths reads.
func forms(t *testing.T, nodes []node) map[string]string {
	t.Helper()
	ctx := context.Background()
	dir := writeTree(t, nodes)
	out := t.TempDir()
	tarball, err := rootfs.Write(ctx, dir, out, "t")
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(out, "t.tar")
	f, err := os.Create(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := rootfs.WriteTar(ctx, dir, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	img, err := oci.WriteTree(ctx, dir, out, "t", oci.Config{}, nil, oci.WithoutArchive())
	if err != nil {
		t.Fatal(err)
	}
	_ = img
	return map[string]string{"dir": dir, "tar.xz": tarball.Path, "tar": plain, "oci": filepath.Join(out, "t.oci")}
}

func TestPaths(t *testing.T) {
	ctx := context.Background()
	a, b := forms(t, treeA), forms(t, treeB)
	kinds := []string{"dir", "tar.xz", "tar", "oci"}
	for _, ka := range kinds {
		for _, kb := range kinds {
			t.Run(ka+"-"+kb, func(t *testing.T) {
				res, err := Paths(ctx, a[ka], b[kb])
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Changes) != len(wantRows) {
					for _, c := range res.Changes {
						t.Log(c)
					}
					t.Fatalf("got %d changes, want %d", len(res.Changes), len(wantRows))
				}
				for i, w := range wantRows {
					c := res.Changes[i]
					if c.Path != w.path || c.Kind != w.kind || !reflect.DeepEqual(c.What, w.what) {
						t.Errorf("change %d: got %s %s %v, want %s %s %v", i, c.Kind, c.Path, c.What, w.kind, w.path, w.what)
					}
					if len(w.what) == 1 && w.what[0] == AspectContent {
						if c.FirstDifference == nil || *c.FirstDifference != w.offset {
							t.Errorf("%s: got first difference %v, want %d", c.Path, c.FirstDifference, w.offset)
						}
						if c.A.Size != 20 || c.B.Size != 20 || c.A.SHA256 == c.B.SHA256 {
							t.Errorf("%s: got sizes %d, %d and digests %s, %s", c.Path, c.A.Size, c.B.Size, c.A.SHA256, c.B.SHA256)
						}
					} else if c.FirstDifference != nil {
						t.Errorf("%s: got a first difference for a %v change", c.Path, c.What)
					}
				}
				if lk := res.Changes[4]; lk.A.Link != "../bin/tool" || lk.B.Link != "../bin/other" {
					t.Errorf("lib/link: got %q -> %q", lk.A.Link, lk.B.Link)
				}
			})
		}
	}
	// Every form of one tree is the same tree.
	for _, ka := range kinds {
		for _, kb := range kinds {
			res, err := Paths(ctx, a[ka], a[kb])
			if err != nil {
				t.Fatal(err)
			}
			if !res.Same() {
				t.Errorf("%s vs %s of one tree: got %d changes (first %s), want none", ka, kb, len(res.Changes), res.Changes[0])
			}
		}
	}
}

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int64
	}{
		{"abc", "abd", 2},
		{"abc", "abcdef", 3},
		{"abcdef", "ab", 2},
		{"", "x", 0},
		{"xbc", "abc", 0},
	} {
		got, err := firstDiff([]byte(tc.a), bytesReader(tc.b))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("firstDiff(%q, %q): got %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestHardLinkIsItsFile(t *testing.T) {
	ctx := context.Background()
	dir := writeTree(t, []node{{path: "a", data: "same bytes\n", mode: 0o755}})
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	tb, err := rootfs.Write(ctx, dir, t.TempDir(), "h")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Paths(ctx, dir, tb.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Same() {
		t.Errorf("tree with a hard link vs its tarball: got %v, want no changes", res.Changes)
	}
	// A change of the linked content shows on both paths, with offsets.
	other := writeTree(t, []node{{path: "a", data: "same bytEs\n", mode: 0o755}, {path: "b", data: "same bytEs\n", mode: 0o755}})
	res, err = Paths(ctx, tb.Path, other)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 2 {
		t.Fatalf("got %d changes, want 2", len(res.Changes))
	}
	for _, c := range res.Changes {
		if c.FirstDifference == nil || *c.FirstDifference != 8 {
			t.Errorf("%s: got first difference %v, want 8", c.Path, c.FirstDifference)
		}
	}
}

func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	good := writeTree(t, treeA)
	bad := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(bad, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notTar := write("notes.txt", "")
	escape := filepath.Dir(write("escape/oci-layout", `{"imageLayoutVersion":"1.0.0"}`))
	write("escape/index.json", `{"manifests":[{"digest":"sha256:../../../../etc/passwd"}]}`)
	twoManifests := filepath.Dir(write("two/oci-layout", `{}`))
	write("two/index.json", `{"manifests":[{"digest":"sha256:00"},{"digest":"sha256:11"}]}`)
	for _, tc := range []struct {
		name, input string
		is          error
	}{
		{"missing", filepath.Join(bad, "nope"), os.ErrNotExist},
		{"empty file", notTar, ErrFormat},
		{"blob name escapes", escape, ErrFormat},
		{"two manifests", twoManifests, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Paths(ctx, good, tc.input)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Input != tc.input {
				t.Fatalf("got %v, want an *InputError naming %s", err, tc.input)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("got %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}
