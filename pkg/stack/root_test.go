package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Symlinks that stay inside the stack directory are followed; the same
// links pointing out of it are refused, and the error quotes nothing of
// what lies outside.
func TestSymlinksInsideAndOut(t *testing.T) {
	file := writeStack(t, goodStack, goodRecipe)
	dir := filepath.Dir(file)
	// Inside: the recipe directory and the lock are links to siblings.
	os.Rename(filepath.Join(dir, "recipes", "hello"), filepath.Join(dir, "hello-real"))
	if err := os.Symlink("../hello-real", filepath.Join(dir, "recipes", "hello")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "real.lock"), []byte("lock\n"), 0o644)
	os.Symlink("real.lock", filepath.Join(dir, "seed.lock"))
	if _, err := Load(file); err != nil {
		t.Fatalf("links inside the stack directory: %v", err)
	}

	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "shadow"), []byte("root:SECRET:1:0:::::\n"), 0o600)
	os.Remove(filepath.Join(dir, "seed.lock"))
	os.Symlink(filepath.Join(outside, "shadow"), filepath.Join(dir, "seed.lock"))
	_, err := Load(file)
	if err == nil || !strings.Contains(err.Error(), `seed.lock: "seed.lock": refused`) {
		t.Fatalf("lock linked out: got %v, want it refused", err)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), outside) {
		t.Errorf("error quotes what is outside: %v", err)
	}
}

// ReadFile reads what Load checked through the same root: a link swapped
// in after Load still cannot lead out.
func TestReadFileAfterSwap(t *testing.T) {
	file := writeStack(t, goodStack, goodRecipe)
	dir := filepath.Dir(file)
	os.WriteFile(filepath.Join(dir, "seed.lock"), []byte("lock\n"), 0o644)
	st, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := st.ReadFile(st.Seed.Lock); err != nil || string(b) != "lock\n" {
		t.Fatalf("ReadFile: %q, %v", b, err)
	}
	outside := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(outside, []byte("SECRET\n"), 0o600)
	os.Remove(filepath.Join(dir, "seed.lock"))
	os.Symlink(outside, filepath.Join(dir, "seed.lock"))
	if b, err := st.ReadFile(st.Seed.Lock); err == nil || strings.Contains(string(b), "SECRET") {
		t.Fatalf("ReadFile through a link swapped out: %q, %v; want an error", b, err)
	}
	if _, err := st.ReadFile("/etc/hostname"); err == nil {
		t.Errorf("ReadFile of a path outside the stack directory: no error")
	}
}
