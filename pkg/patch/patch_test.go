package patch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes a directory with the given files ("name" -> content; a
// content starting with "->" makes a symlink to the rest).
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const ten = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"

const change5 = `--- a/f.txt
+++ b/f.txt
@@ -4,3 +4,3 @@
 4
-5
+five
 6
`

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name, patch, file, want string
		files                   map[string]string
	}{
		{"exact", change5, "f.txt", strings.Replace(ten, "5\n", "five\n", 1), map[string]string{"f.txt": ten}},
		{"offset", change5, "f.txt", "0\n0\n" + strings.Replace(ten, "5\n", "five\n", 1), map[string]string{"f.txt": "0\n0\n" + ten}},
		{"git new file", "diff --git a/d/new.c b/d/new.c\nnew file mode 100755\nindex 0000000..1111111\n--- /dev/null\n+++ b/d/new.c\n@@ -0,0 +1,2 @@\n+int\n+x;\n",
			"d/new.c", "int\nx;\n", map[string]string{"f.txt": ten}},
		{"mbox preamble", ">From abc Mon Sep 17 00:00:00 2001\nSubject: x\n\n---\n" + change5 + "-- \n2.21.0\n", "f.txt",
			strings.Replace(ten, "5\n", "five\n", 1), map[string]string{"f.txt": ten}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.files)
			if err := Apply(context.Background(), dir, []Patch{{Name: "p", Data: []byte(tc.patch), Strip: 1}}); err != nil {
				t.Fatal(err)
			}
			if got := read(t, filepath.Join(dir, tc.file)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("new file mode", func(t *testing.T) {
		dir := tree(t, map[string]string{"f.txt": ten})
		p := "diff --git a/run.sh b/run.sh\nnew file mode 100755\n--- /dev/null\n+++ b/run.sh\n@@ -0,0 +1 @@\n+#!/bin/sh\n"
		if err := Apply(context.Background(), dir, []Patch{{Name: "p", Data: []byte(p), Strip: 1}}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "run.sh"))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("run.sh: %v %v, want mode 0755", fi.Mode(), err)
		}
	})
}

// TestApplyFails: a patch that does not apply, or that asks for more than
// changing regular files inside the tree, fails naming the patch, and
// nothing outside the tree is touched.
func TestApplyFails(t *testing.T) {
	for _, tc := range []struct {
		name, patch string
		files       map[string]string
		want        error
		msg         string
	}{
		{"context differs (no fuzz)", strings.Replace(change5, " 6\n", " six\n", 1), map[string]string{"f.txt": ten}, ErrConflict, "f.txt: hunk 1"},
		{"missing file", strings.ReplaceAll(change5, "f.txt", "g.txt"), map[string]string{"f.txt": ten}, ErrConflict, "no such file"},
		{"dotdot", strings.ReplaceAll(change5, "/f.txt", "/../../outside.txt"), map[string]string{"f.txt": ten}, ErrUnsafe, "not a clean path"},
		{"absolute", "--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-root\n+evil\n", map[string]string{"f.txt": ten}, ErrUnsafe, "absolute"},
		{"new file through dotdot", "--- /dev/null\n+++ b/../../evil\n@@ -0,0 +1 @@\n+x\n", map[string]string{"f.txt": ten}, ErrUnsafe, "not a clean path"},
		{"symlink out", change5, map[string]string{"f.txt": "->../outside.txt"}, ErrUnsafe, "not a regular file"},
		{"symlink inside", change5, map[string]string{"f.txt": "->g.txt", "g.txt": ten}, ErrUnsafe, "not a regular file"},
		{"dir symlink out", strings.ReplaceAll(change5, "/f.txt", "/d/outside.txt"), map[string]string{"f.txt": ten, "d": "->.."}, nil, "d/outside.txt"},
		{"git symlink", "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n", map[string]string{"f.txt": ten}, ErrUnsafe, "regular files"},
		{"git dir", "--- a/.git/config\n+++ b/.git/config\n@@ -0,0 +1 @@\n+x\n", map[string]string{"f.txt": ten}, ErrUnsafe, ".git"},
		{"binary", "diff --git a/b.bin b/b.bin\nnew file mode 100644\nindex 0000000..1111111\nBinary files /dev/null and b/b.bin differ\n", map[string]string{"f.txt": ten}, ErrUnsafe, "binary"},
		{"garbage", "this is not a patch\n", map[string]string{"f.txt": ten}, nil, "no change in it"},
		{"creates existing", "--- /dev/null\n+++ b/f.txt\n@@ -0,0 +1 @@\n+x\n", map[string]string{"f.txt": ten}, ErrConflict, "exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.files)
			outside := filepath.Join(filepath.Dir(dir), "outside.txt")
			if err := os.WriteFile(outside, []byte(ten), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Apply(context.Background(), dir, []Patch{{Name: "0001-hostile.patch", Data: []byte(tc.patch), Strip: 1}})
			var pe *Error
			if !errors.As(err, &pe) || pe.Patch != "0001-hostile.patch" {
				t.Fatalf("got %v, want a *patch.Error naming 0001-hostile.patch", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q, want it to say %q", err, tc.msg)
			}
			if got := read(t, outside); got != ten {
				t.Errorf("a file outside the tree was changed: %q", got)
			}
			ents, _ := os.ReadDir(filepath.Dir(dir))
			if len(ents) != 2 {
				t.Errorf("beside the tree: %d entries, want the tree and outside.txt", len(ents))
			}
		})
	}
}

func TestParseSeries(t *testing.T) {
	got, err := ParseSeries([]byte("# comment\na.patch\n\nsub/b.diff -p0 # why\n  c.patch\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []SeriesEntry{{"a.patch", 1}, {"sub/b.diff", 0}, {"c.patch", 1}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"../x.patch\n", "/etc/x\n", "a.patch -R\n", "a.patch\na.patch\n", "a.patch -Fx\n"} {
		if _, err := ParseSeries([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
