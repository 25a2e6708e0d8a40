package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairn-build/cairn/pkg/digest"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeTree makes a small tree in dir.
func writeTree(t testing.TB, dir string, salt string) {
	t.Helper()
	files := map[string]string{"a.txt": "alpha " + salt, "sub/b.sh": "#!/bin/sh\necho " + salt + "\n"}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(name) == ".sh" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

func treeDigestOf(t testing.TB, salt string) string {
	t.Helper()
	d := t.TempDir()
	writeTree(t, d, salt)
	m, err := digest.FromDir(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return m.TreeDigest()
}

func entries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAddBlob(t *testing.T) {
	ctx := context.Background()
	data := []byte("release archive bytes")
	tests := []struct {
		name    string
		want    string
		wantErr bool
	}{
		{"match", sum(data), false},
		{"mismatch", sum([]byte("other")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			p, err := s.AddBlob(ctx, tt.want, bytes.NewReader(data))
			if tt.wantErr {
				var dm *DigestMismatchError
				if !errors.As(err, &dm) {
					t.Fatalf("got error %v, want a *DigestMismatchError", err)
				}
				if dm.Want != "sha256:"+tt.want || dm.Got != "sha256:"+sum(data) {
					t.Errorf("got want=%s got=%s, want want=sha256:%s got=sha256:%s", dm.Want, dm.Got, tt.want, sum(data))
				}
				if got := entries(t, filepath.Join(s.Dir(), "blobs", "sha256")); len(got) != 0 {
					t.Errorf("blobs after a mismatch: got %v, want none", got)
				}
				if got := entries(t, filepath.Join(s.Dir(), "tmp")); len(got) != 0 {
					t.Errorf("tmp after a mismatch: got %v, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored blob: got %q (%v), want %q", got, err, data)
			}
			if _, ok := s.Blob(tt.want); !ok {
				t.Errorf("Blob(%s): not found after AddBlob", tt.want)
			}
			if err := s.VerifyBlob(tt.want); err != nil {
				t.Errorf("VerifyBlob: %v", err)
			}
		})
	}
}

func TestOpenBlobDetectsTampering(t *testing.T) {
	s := open(t, t.TempDir())
	data := []byte("the pinned bytes")
	p, err := s.AddBlob(context.Background(), sum(data), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("the pinned byteZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.OpenBlob(sum(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = io.ReadAll(r)
	var dm *DigestMismatchError
	if !errors.As(err, &dm) {
		t.Fatalf("reading a tampered blob: got %v, want a *DigestMismatchError", err)
	}
}

func TestAddTree(t *testing.T) {
	ctx := context.Background()
	good := treeDigestOf(t, "x")
	tests := []struct {
		name  string
		want  string
		salt  string
		match bool
	}{
		{"match", good, "x", true},
		{"mismatch", good, "tampered", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			p, err := s.AddTree(ctx, tt.want, func(dir string) error { writeTree(t, dir, tt.salt); return nil })
			if !tt.match {
				var dm *DigestMismatchError
				if !errors.As(err, &dm) {
					t.Fatalf("got %v, want a *DigestMismatchError", err)
				}
				if dm.Want != good || dm.Got != treeDigestOf(t, tt.salt) {
					t.Errorf("got want=%s got=%s, want want=%s got=%s", dm.Want, dm.Got, good, treeDigestOf(t, tt.salt))
				}
				for _, d := range []string{"trees/sha256", "tmp"} {
					if got := entries(t, filepath.Join(s.Dir(), d)); len(got) != 0 {
						t.Errorf("%s after a mismatch: got %v, want none", d, got)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q, ok := s.Tree(good); !ok || q != p {
				t.Errorf("Tree(%s): got %q, %v, want %q, true", good, q, ok, p)
			}
			if err := s.VerifyTree(ctx, good); err != nil {
				t.Errorf("VerifyTree: %v", err)
			}
			fi, err := os.Stat(filepath.Join(p, "a.txt"))
			if err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("stored file mode: got %v (%v), want the normalised 0644", fi.Mode(), err)
			}
			// A second add finds it and does not call fill.
			if _, err := s.AddTree(ctx, good, func(string) error { return errors.New("fill called again") }); err != nil {
				t.Errorf("second AddTree: %v", err)
			}
		})
	}
}

func TestVerifyTreeDetectsTampering(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	d := treeDigestOf(t, "x")
	p, err := s.AddTree(ctx, d, func(dir string) error { writeTree(t, dir, "x"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(p, "a.txt")
	os.Chmod(f, 0o644)
	if err := os.WriteFile(f, []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	var dm *DigestMismatchError
	if err := s.VerifyTree(ctx, d); !errors.As(err, &dm) {
		t.Fatalf("VerifyTree of a tampered tree: got %v, want a *DigestMismatchError", err)
	}
	if err := s.RemoveTree(d); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Tree(d); ok {
		t.Errorf("Tree(%s) after RemoveTree: still there", d)
	}
}

// Two Store values on one directory add the same tree at once: one fills,
// the other waits and finds it; both see the same complete tree.
func TestConcurrentAddTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := treeDigestOf(t, "x")
	var wg sync.WaitGroup
	var mu sync.Mutex
	fills := 0
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			paths[i], errs[i] = s.AddTree(ctx, d, func(tmp string) error {
				mu.Lock()
				fills++
				mu.Unlock()
				writeTree(t, tmp, "x")
				return nil
			})
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("writer %d: got %s, want %s", i, paths[i], paths[0])
		}
	}
	if fills != 1 {
		t.Errorf("fill ran %d times, want 1", fills)
	}
	s := open(t, dir)
	if err := s.VerifyTree(ctx, d); err != nil {
		t.Error(err)
	}
}

// TestKilledFill kills (SIGKILL) a process in the middle of AddTree: the
// store holds no tree, and the next Open removes the remains from tmp/.
func TestKilledFill(t *testing.T) {
	if os.Getenv("CAIRN_STORE_HELPER") != "" {
		return
	}
	dir := t.TempDir()
	d := treeDigestOf(t, "x")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFill$")
	cmd.Env = append(os.Environ(), "CAIRN_STORE_HELPER="+dir, "CAIRN_STORE_DIGEST="+d)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "filling\n" {
		cmd.Process.Kill()
		t.Fatalf("helper: got %q (%v), want \"filling\\n\"", line, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := entries(t, filepath.Join(dir, "tmp")); len(got) == 0 {
		t.Fatalf("tmp after the kill: got nothing, want the killed run's work")
	}
	s := open(t, dir)
	if _, ok := s.Tree(d); ok {
		t.Errorf("Tree(%s): present after a killed fill", d)
	}
	if got := entries(t, filepath.Join(dir, "tmp")); len(got) != 0 {
		t.Errorf("tmp after reopening: got %v, want it emptied", got)
	}
	if got := entries(t, filepath.Join(dir, "trees", "sha256")); len(got) != 0 {
		t.Errorf("trees after the kill: got %v, want none", got)
	}
	// And the next run succeeds.
	if _, err := s.AddTree(context.Background(), d, func(tmp string) error { writeTree(t, tmp, "x"); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestHelperFill is the process TestKilledFill kills.
func TestHelperFill(t *testing.T) {
	dir := os.Getenv("CAIRN_STORE_HELPER")
	if dir == "" {
		return // only as the helper process of TestKilledFill
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	s.AddTree(context.Background(), os.Getenv("CAIRN_STORE_DIGEST"), func(tmp string) error {
		writeTree(t, tmp, "x")
		fmt.Println("filling")
		select {} // wait to be killed
	})
}

// A live store user keeps others from cleaning its work in progress.
func TestOpenDoesNotCleanLiveWork(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	tmp, done, err := a.TempDir("work")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	b := open(t, dir)
	_ = b
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("another user's temp dir was removed while it was live: %v", err)
	}
}
