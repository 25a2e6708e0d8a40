package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/digest"
)

// filled is a store holding one of each kind of object and records that
// point at them.
type filled struct {
	s                          *Store
	tree, output, blob, deb    string
	treeRec, outputRec, imgRec string // action keys
}

func fill(t *testing.T) *filled {
	t.Helper()
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &filled{s: s}
	src := t.TempDir()
	writeTree(t, src, "x")
	m, err := digest.FromDir(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	f.tree = m.TreeDigest()
	if _, err := s.AddTree(ctx, f.tree, func(dir string) error { return os.CopyFS(dir, os.DirFS(src)) }); err != nil {
		t.Fatal(err)
	}
	out, done, err := s.TempDir("out")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	os.WriteFile(filepath.Join(out, "o"), []byte("output"), 0o644)
	if f.output, err = OutputDigest(ctx, out, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddOutput(ctx, out, f.output, 1); err != nil {
		t.Fatal(err)
	}
	data := []byte("a blob")
	f.blob = "sha256:" + sum(data)
	if _, err := s.AddBlob(ctx, sum(data), strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
	deb := []byte("a deb")
	f.deb = filepath.Join(s.DebDir(), "sha256", sum(deb)[:2], sum(deb)+".deb")
	os.MkdirAll(filepath.Dir(f.deb), 0o755)
	os.WriteFile(f.deb, deb, 0o444)
	f.treeRec, f.outputRec, f.imgRec = "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64), "sha256:"+strings.Repeat("3", 64)
	for key, r := range map[string]Record{
		f.treeRec:   {Output: f.output, Uses: []Ref{{Tree, f.tree}}},
		f.imgRec:    {Blob: f.blob, Manifest: "sha256:" + strings.Repeat("9", 64), Uses: []Ref{{Output, f.output}}},
		f.outputRec: {Output: f.output},
	} {
		if err := s.PutAction(key, r); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *filled) hasAction(key string) bool {
	_, err := f.s.Action(key)
	return err == nil
}

func TestVerifyAllCleanStore(t *testing.T) {
	f := fill(t)
	rep, err := f.s.VerifyAll(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("clean store: %v", rep.Problems)
	}
	for k, n := range map[string]int{"tree": 1, "output": 1, "blob": 1, "deb": 1, "record": 3} {
		if rep.Checked[k] != n {
			t.Errorf("checked %d %ss, want %d (%v)", rep.Checked[k], k, n, rep.Checked)
		}
	}
}

// Each corruption, in its own store: verify names it, --repair removes it
// and the records made from it, and a second verify is clean.
func TestVerifyAllNamesAndRepairs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(f *filled) string // returns the path to be named
		gone    func(f *filled) []string
	}{
		{"tree", func(f *filled) string {
			p := f.s.Path(Ref{Tree, f.tree})
			os.WriteFile(filepath.Join(p, "a.txt"), []byte("evil"), 0o644)
			return p
		}, func(f *filled) []string { return []string{f.treeRec} }},
		{"output", func(f *filled) string {
			p := f.s.Path(Ref{Output, f.output})
			os.WriteFile(filepath.Join(p, "o"), []byte("evil"), 0o644)
			return p
		}, func(f *filled) []string { return []string{f.treeRec, f.outputRec, f.imgRec} }},
		{"blob", func(f *filled) string {
			p := f.s.Path(Ref{Blob, f.blob})
			os.Chmod(p, 0o644)
			os.WriteFile(p, []byte("evil"), 0o644)
			return p
		}, func(f *filled) []string { return []string{f.imgRec} }},
		{"deb", func(f *filled) string {
			os.Chmod(f.deb, 0o644)
			os.WriteFile(f.deb, []byte("evil"), 0o644)
			return f.deb
		}, func(f *filled) []string { return nil }},
		{"record", func(f *filled) string {
			p := filepath.Join(f.s.Dir(), "actions", strings.Repeat("2", 64))
			data, _ := os.ReadFile(p)
			os.Chmod(p, 0o644)
			os.WriteFile(p, []byte(strings.Replace(string(data), "output sha256:", "output sha256:f", 1)), 0o644)
			return p
		}, func(f *filled) []string { return []string{f.outputRec} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fill(t)
			path := tc.corrupt(f)
			rep, err := f.s.VerifyAll(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 1 || rep.Problems[0].Path != path {
				t.Fatalf("got %v, want one problem at %s", rep.Problems, path)
			}
			rep, err = f.s.VerifyAll(context.Background(), true)
			if err != nil || len(rep.Problems) != 1 {
				t.Fatalf("repair: %v, %v", rep, err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after --repair", path)
			}
			for _, key := range tc.gone(f) {
				if f.hasAction(key) {
					t.Errorf("record %s made from the corrupt %s survived --repair", key, tc.name)
				}
			}
			if rep, _ := f.s.VerifyAll(context.Background(), false); len(rep.Problems) != 0 {
				t.Errorf("after --repair: %v", rep.Problems)
			}
		})
	}
}

func TestCheckUsesFingerprintThenHash(t *testing.T) {
	f := fill(t)
	ctx := context.Background()
	ref := Ref{Output, f.output}
	s2, err := Open(f.s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Check(ctx, ref); err != nil {
		t.Fatalf("sound output: %v", err)
	}
	// Changed after that check: a new handle (a new process) sees it.
	os.WriteFile(filepath.Join(f.s.Path(ref), "o"), []byte("evil"), 0o644)
	s3, _ := Open(f.s.Dir())
	defer s3.Close()
	var ce *CorruptError
	if err := s3.Check(ctx, ref); !errors.As(err, &ce) || !ce.Removed {
		t.Fatalf("got %v, want a CorruptError, removed", err)
	}
	if _, ok := s3.OutputPath(f.output); ok {
		t.Error("the corrupt output is still stored")
	}
	if f.hasAction(f.outputRec) {
		t.Error("the record pointing at the corrupt output survived")
	}
}

func TestMigrateFormat1(t *testing.T) {
	dir := t.TempDir()
	out, seed := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for p, data := range map[string]string{
		"blobs/sha256/.keep":                     "",
		"actions/" + strings.Repeat("1", 64):     "sha256:" + out + "\n",
		"actions/" + strings.Repeat("2", 64):     "sha256:" + out + " sha256:" + seed + "\n",
		"state/seeds/" + strings.Repeat("3", 64): "sha256:" + seed + "\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Action("sha256:" + strings.Repeat("1", 64)); err != nil || r.Output != "sha256:"+out {
		t.Errorf("step record: %+v, %v", r, err)
	}
	if r, err := s.Action("sha256:" + strings.Repeat("2", 64)); err != nil || r.Blob != "sha256:"+out || r.Manifest != "sha256:"+seed {
		t.Errorf("image record: %+v, %v", r, err)
	}
	if r, err := s.SeedRecord("sha256:" + strings.Repeat("3", 64)); err != nil || r.Tree != "sha256:"+seed {
		t.Errorf("seed record: %+v, %v", r, err)
	}
	// A migrated record does not say what it was made from: any corrupt
	// tree invalidates it.
	tree := "sha256:" + strings.Repeat("c", 64)
	os.MkdirAll(s.Path(Ref{Tree, tree}), 0o755)
	if _, err := s.Evict(Ref{Tree, tree}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Action("sha256:" + strings.Repeat("1", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("a migrated record survived the eviction of a tree: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "FORMAT")); string(data) != "cairn store 2\n" {
		t.Errorf("FORMAT = %q", data)
	}
}

func TestNewerFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "FORMAT"), []byte("cairn store 99\n"), 0o444)
	_, err := Open(dir)
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "another --store") {
		t.Fatalf("got %v, want a FormatError saying what to do", err)
	}
}
