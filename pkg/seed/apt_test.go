package seed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

func repoLock(t *testing.T) *Lock {
	t.Helper()
	l, err := ParseLockFile("../../toolchain/seed.lock")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lockedPackage(t *testing.T, l *Lock, name string) Package {
	t.Helper()
	for _, p := range l.Packages {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("%s is not locked", name)
	return Package{}
}

// A locked version the archive does not serve fails naming the package
// and the script that re-locks; the one it serves arrives verified.
func TestFetchApt(t *testing.T) {
	testenv.NeedNetwork(t)
	testenv.NeedTool(t, "apt-get")
	l := repoLock(t)
	dash := lockedPackage(t, l, "dash")
	gone := lockedPackage(t, l, "gawk")
	gone.Version = "1:5.2.0-9"

	cache := t.TempDir()
	_, err := Fetch(context.Background(), &Lock{Packages: []Package{dash, gone}}, "", WithCache(cache))
	var ns *NotServedError
	if !errors.As(err, &ns) {
		t.Fatalf("got %v, want a *NotServedError", err)
	}
	if ns.Package != "gawk=1:5.2.0-9" || !strings.Contains(err.Error(), "scripts/lock-seed.sh") || !strings.Contains(err.Error(), "no longer serves") {
		t.Errorf("got %q, want gawk=1:5.2.0-9 named with scripts/lock-seed.sh", err)
	}
	// dash was served and is kept; the gone package left nothing.
	got := files(t, cache)
	if len(got) != 1 || got[0] != cachePath(cache, dash) {
		t.Errorf("cache holds %v, want only %s", got, cachePath(cache, dash))
	}
	if err := verifyFile(dash, cachePath(cache, dash)); err != nil {
		t.Error(err)
	}
	if ents, _ := filepath.Glob(filepath.Join(cache, ".apt-*")); len(ents) != 0 {
		t.Errorf("apt work directories left: %v", ents)
	}
}

func TestCopySources(t *testing.T) {
	etc, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(etc, "sources.list"), "# c\ndeb http://example.invalid/debian bookworm main\ndeb-src http://example.invalid/debian bookworm main\n")
	write(t, filepath.Join(etc, "sources.list.d/b.sources"), "Types: deb\nURIs: http://example.invalid/debian\nSuites: bookworm\nComponents: main\n")
	write(t, filepath.Join(etc, "sources.list.d/a.list"), "deb-src http://example.invalid/debian bookworm main\n")
	write(t, filepath.Join(etc, "sources.list.d/c.list.disabled"), "deb http://example.invalid/x bookworm main\n")
	n, err := copySources(etc, dst)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("got %d source files, want 2", n)
	}
	b, _ := os.ReadFile(filepath.Join(dst, "00.list"))
	if string(b) != "deb http://example.invalid/debian bookworm main\n" {
		t.Errorf("00.list: got %q", b)
	}
	if _, err := os.Stat(filepath.Join(dst, "01.sources")); err != nil {
		t.Error(err)
	}
}
