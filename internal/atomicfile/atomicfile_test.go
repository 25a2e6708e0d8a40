package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("cut short") }

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := WriteBytes(name, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if data, _ := os.ReadFile(name); err != nil || string(data) != "new" || fi.Mode().Perm() != 0o644 {
		t.Errorf("got %q mode %v (%v), want \"new\" 0644 despite umask 077", data, fi.Mode(), err)
	}
	// A failed write leaves the old file and no temporary.
	if err := Write(name, failingReader{}, 0o644); err == nil {
		t.Error("a failing reader's write succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if data, _ := os.ReadFile(name); string(data) != "new" || len(ents) != 1 {
		t.Errorf("after a failed write: %q, %d entries; want the old file alone", data, len(ents))
	}
}
