package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// treeWith stores a blob and a tree with one entry of the given name and
// mode in memory, and returns the tree.
func treeWith(t *testing.T, name string, mode filemode.FileMode, content string) *object.Tree {
	t.Helper()
	st := memory.NewStorage()
	put := func(typ plumbing.ObjectType, data []byte) plumbing.Hash {
		o := st.NewEncodedObject()
		o.SetType(typ)
		w, _ := o.Writer()
		w.Write(data)
		w.Close()
		h, err := st.SetEncodedObject(o)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	blob := put(plumbing.BlobObject, []byte(content))
	tr := &object.Tree{Entries: []object.TreeEntry{{Name: name, Mode: mode, Hash: blob}}}
	o := st.NewEncodedObject()
	if err := tr.Encode(o); err != nil {
		t.Fatal(err)
	}
	h, err := st.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := object.GetTree(st, h)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestExportHostileTree(t *testing.T) {
	tests := []struct {
		name  string
		entry string
	}{
		{"dotdot", ".."},
		{"slash", "../../evil"},
		{"git dir", ".git"},
		{"git dir case", ".GIT"},
		{"git dir 8.3", "git~1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			os.Mkdir(dir, 0o755)
			tr := treeWith(t, tt.entry, filemode.Regular, "payload")
			err := exportTree(context.Background(), tr, dir)
			if err == nil || !strings.Contains(err.Error(), "git tree entry") {
				t.Fatalf("got %v, want the entry %q refused", err, tt.entry)
			}
			ents, _ := os.ReadDir(parent)
			inside, _ := os.ReadDir(dir)
			if len(ents) != 1 || len(inside) != 0 {
				t.Errorf("after a refused entry: got %d entries beside and %d inside, want 1 and 0", len(ents), len(inside))
			}
		})
	}
	t.Run("plain file", func(t *testing.T) {
		dir := t.TempDir()
		if err := exportTree(context.Background(), treeWith(t, "ok.sh", filemode.Executable, "#!/bin/sh\n"), dir); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "ok.sh"))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("got %v (%v), want mode 0755", fi.Mode(), err)
		}
	})
}
