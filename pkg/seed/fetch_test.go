package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDeb is a package whose bytes are body: Fetch verifies bytes, it does
// not read them as a .deb.
func fakeDeb(name, version, body string) Package {
	sum := sha256.Sum256([]byte(body))
	return Package{Name: name, Version: version, Arch: "amd64", Size: int64(len(body)),
		SHA256: hex.EncodeToString(sum[:]), Filename: "pool/main/x/" + name + "/" + name + "_" + strings.TrimPrefix(version, "1:") + "_amd64.deb"}
}

func write(t *testing.T, file, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// files lists the regular files under dir, for "nothing was kept" checks.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestFetchMirrorNames(t *testing.T) {
	p := fakeDeb("gawk", "1:5.2.1-2", "gawk bytes")
	for _, tc := range []struct{ name, rel string }{
		{"pool copy", p.Filename},
		{"pool file name", "gawk_5.2.1-2_amd64.deb"},
		{"apt-get download name", "gawk_1%3a5.2.1-2_amd64.deb"},
		{"sha256", p.SHA256 + ".deb"},
		{"bare sha256", p.SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mirror, cache := t.TempDir(), t.TempDir()
			write(t, filepath.Join(mirror, tc.rel), "gawk bytes")
			got, err := Fetch(context.Background(), &Lock{Packages: []Package{p}}, "", WithCache(cache), WithMirror(t.TempDir()), WithMirror(mirror), WithoutApt())
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(cache, "sha256", p.SHA256[:2], p.SHA256+".deb")
			if got["gawk"] != want {
				t.Errorf("got %s, want %s", got["gawk"], want)
			}
			if b, _ := os.ReadFile(want); string(b) != "gawk bytes" {
				t.Errorf("cached bytes: got %q", b)
			}
		})
	}
}

func TestFetchMismatchKeepsNothing(t *testing.T) {
	p := fakeDeb("dash", "0.5.12-2", "the real dash")
	for _, tc := range []struct{ name, body, got string }{
		{"other bytes", "the evil dash", ""},
		{"longer", "the evil dash, longer" + strings.Repeat("x", 100), "(longer"},
		{"shorter", "the", ""},
		{"same size", "THE REAL DASH", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mirror, cache, out := t.TempDir(), t.TempDir(), t.TempDir()
			write(t, filepath.Join(mirror, "dash_0.5.12-2_amd64.deb"), tc.body)
			lock := &Lock{File: "l", Packages: []Package{p}}
			_, err := BuildLock(context.Background(), lock, filepath.Join(out, "seed"), WithCache(cache), WithMirror(mirror), WithoutApt())
			var dm *DigestMismatchError
			if !errors.As(err, &dm) {
				t.Fatalf("got %v, want a *DigestMismatchError", err)
			}
			want := tc.got
			if want == "" {
				s := sha256.Sum256([]byte(tc.body))
				want = hex.EncodeToString(s[:])
			}
			if dm.Want != p.SHA256 || !strings.HasPrefix(dm.Got, want) || dm.Package != "dash=0.5.12-2" {
				t.Errorf("got %+v, want package dash=0.5.12-2, want %s, got %s", dm, p.SHA256, want)
			}
			if !strings.Contains(err.Error(), p.SHA256) || !strings.Contains(err.Error(), dm.Got) {
				t.Errorf("error %q does not name both digests", err)
			}
			if f := files(t, cache); len(f) != 0 {
				t.Errorf("cache keeps %v after a mismatch", f)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("output dir keeps %v after a mismatch", ents)
			}
		})
	}
}

// A cache entry that no longer hashes to the lock is dropped and fetched
// again, never used.
func TestFetchCorruptCache(t *testing.T) {
	p := fakeDeb("sed", "4.9-1", "sed bytes")
	mirror, cache := t.TempDir(), t.TempDir()
	write(t, filepath.Join(mirror, p.SHA256), "sed bytes")
	write(t, cachePath(cache, p), "rotten")
	var srcs []string
	got, err := Fetch(context.Background(), &Lock{Packages: []Package{p}}, "", WithCache(cache), WithMirror(mirror), WithoutApt(),
		WithProgress(func(e Event) { srcs = append(srcs, e.Source) }))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got["sed"]); string(b) != "sed bytes" {
		t.Errorf("got %q, want the mirror's bytes", b)
	}
	if len(srcs) != 1 || srcs[0] != filepath.Join(mirror, p.SHA256) {
		t.Errorf("sources: got %v, want the mirror", srcs)
	}
	// Now the cache answers.
	srcs = nil
	if _, err := Fetch(context.Background(), &Lock{Packages: []Package{p}}, "", WithCache(cache), WithoutApt(),
		WithProgress(func(e Event) { srcs = append(srcs, e.Source) })); err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0] != "cache" {
		t.Errorf("second fetch sources: got %v, want cache", srcs)
	}
}

func TestFetchMissingOffline(t *testing.T) {
	var ps []Package
	for _, n := range []string{"aa", "bb", "cc", "dd", "ee", "ff", "gg"} {
		ps = append(ps, fakeDeb(n, "1", n))
	}
	mirror := t.TempDir()
	_, err := Fetch(context.Background(), &Lock{Packages: ps}, t.TempDir(), WithMirror(mirror), WithoutApt())
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a *MissingError", err)
	}
	if len(me.Packages) != 7 || me.Packages[0] != "aa=1" {
		t.Errorf("got %v, want the 7 packages, sorted", me.Packages)
	}
	for _, want := range []string{"7 locked packages", "mirror " + mirror, "aa=1", "ee=1", "and 2 more"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %q", err, want)
		}
	}
}

func TestMapName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bin/sh", "usr/bin/sh"},
		{"bin", "usr/bin"},
		{"lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"},
		{"lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"},
		{"sbin/ldconfig", "usr/sbin/ldconfig"},
		{"usr/bin/gcc", "usr/bin/gcc"},
		{"binutils/x", "binutils/x"},
		{"libx", "libx"},
		{"etc", "etc"},
	} {
		if got, err := mapName(tc.in); got != tc.want || err != nil {
			t.Errorf("mapName(%q): got %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
}
