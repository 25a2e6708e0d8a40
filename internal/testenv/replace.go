package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ReplaceFile swaps the file p for one holding data, as an attacker or a
// broken disk might: a new inode with the mode kept, so that a file linked
// from elsewhere (a store copied by hard links) is not touched.
func ReplaceFile(t testing.TB, p, data string) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(p), 0o755)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
