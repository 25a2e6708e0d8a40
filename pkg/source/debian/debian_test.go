package debian

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDerivedSources(t *testing.T) {
	machine, err := ReadSources("testdata/apt")
	if err != nil {
		t.Fatal(err)
	}
	codename, err := Codename("testdata/os-release")
	if err != nil || codename != "bookworm" {
		t.Fatalf("Codename: got %q, %v, want bookworm", codename, err)
	}
	got := string(Format(SrcEntries(machine, codename, []string{codename, "trixie"})))
	want, err := os.ReadFile("testdata/src.sources.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("derived sources:\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestInlineKeyKept(t *testing.T) {
	es, err := ReadSources("testdata/apt")
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, e := range es {
		if strings.Contains(strings.Join(e.URIs, " "), "vendor") {
			key = e.SignedBy
		}
	}
	if want := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----"; key != want {
		t.Errorf("inline Signed-By: got %q, want %q", key, want)
	}
	out := string(Format([]Entry{{Types: []string{"deb-src"}, URIs: []string{"http://x.invalid"}, Suites: []string{"s"}, Components: []string{"main"}, SignedBy: key}}))
	if !strings.Contains(out, "\n .\n") {
		t.Errorf("formatted inline key lost its empty line:\n%s", out)
	}
}

func TestPrepareWritesOnlyItsDir(t *testing.T) {
	dir := t.TempDir()
	a := New(Config{SourceDir: "testdata/apt", OSRelease: "testdata/os-release"}, dir)
	if err := a.Prepare(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "sources.list.d", "cairn.sources"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("testdata/src.sources.golden")
	if string(got) != string(want) {
		t.Errorf("written sources: got\n%s\nwant\n%s", got, want)
	}
	for _, p := range []string{"lists/partial", "cache/archives/partial", "preferences.d", "status"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("state %s: %v", p, err)
		}
	}
}

func TestNoMainArchive(t *testing.T) {
	a := New(Config{SourceDir: t.TempDir(), OSRelease: "testdata/os-release"}, t.TempDir())
	if err := a.Prepare(); err == nil || !strings.Contains(err.Error(), "bookworm") {
		t.Errorf("got %v, want an error naming the missing main archive suite", err)
	}
}
