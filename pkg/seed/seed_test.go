package seed

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/seed.digest from the full seed build")

// One real package, fetched through apt and unpacked: its bin/ lands in
// usr/bin under the merged-/usr links, and no maintainer script ran.
func TestBuildOnePackage(t *testing.T) {
	testenv.NeedNetwork(t)
	testenv.NeedTool(t, "apt-get")
	l := repoLock(t)
	one := &Lock{File: l.File, Packages: []Package{lockedPackage(t, l, "dash")}}
	dest := filepath.Join(t.TempDir(), "seed")
	var kinds []string
	d, err := BuildLock(context.Background(), one, dest, WithProgress(func(e Event) { kinds = append(kinds, string(e.Kind)) }))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Errorf("digest: got %q", d)
	}
	if got, want := strings.Join(kinds, ","), "fetched,unpacked,digested"; got != want {
		t.Errorf("events: got %s, want %s", got, want)
	}
	for _, tc := range []struct{ path, link string }{
		{"bin", "usr/bin"}, {"lib", "usr/lib"}, {"lib64", "usr/lib64"}, {"sbin", "usr/sbin"},
		{"usr/bin/sh", "dash"},
	} {
		if got, err := os.Readlink(filepath.Join(dest, tc.path)); got != tc.link {
			t.Errorf("%s: got link %q (%v), want %q", tc.path, got, err, tc.link)
		}
	}
	fi, err := os.Lstat(filepath.Join(dest, "usr/bin/dash"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/dash: got %v, %v; want an executable file", fi, err)
	}
	// dash's postinst would add /bin/sh to /etc/shells.
	if _, err := os.Lstat(filepath.Join(dest, "etc/shells")); err == nil {
		t.Error("etc/shells exists: a maintainer script ran?")
	}
	if ents, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".seed.tmp-*")); len(ents) != 0 {
		t.Errorf("temporary directories left: %v", ents)
	}
	// A second Build onto a non-empty dest is refused and changes nothing.
	if _, err := BuildLock(context.Background(), one, dest); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("build onto a full dest: got %v, want a refusal", err)
	}
}

// The real thing: the whole locked seed, built twice into two places (the
// second from the cache alone), the same tree digest both times, and gcc in
// a network-less chroot of it compiling and running a C program dynamically
// and statically linked.
func TestFullSeed(t *testing.T) {
	testenv.NeedNetwork(t)
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "apt-get")
	testenv.NeedTool(t, "unshare")
	testenv.NeedTool(t, "chroot")
	if testing.Short() {
		t.Skip("builds the whole seed")
	}
	ctx := context.Background()
	l := repoLock(t)
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	count := func(kind EventKind, n *int, bytes *int64) Option {
		return WithProgress(func(e Event) {
			if e.Kind == kind {
				*n++
				*bytes += e.Bytes
			}
		})
	}

	var fetched int
	var debBytes int64
	start := time.Now()
	d1, err := Build(ctx, "../../toolchain/seed.lock", filepath.Join(work, "a"), WithCache(cache), count(EventFetched, &fetched, &debBytes))
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)

	// The second build, into another place from the cache alone, must give
	// the same digest. Under -race one build and the golden digest do.
	var unpacked int
	var treeBytes int64
	start = time.Now()
	second := filepath.Join(work, "b")
	d2 := d1
	if raceEnabled {
		t.Log("race detector on: one build only, checked against the golden digest")
		second = filepath.Join(work, "a")
		unpacked, treeBytes = len(l.Packages), -1
	} else {
		d2, err = BuildLock(ctx, l, second, WithCache(cache), WithoutApt(), count(EventUnpacked, &unpacked, &treeBytes))
		if err != nil {
			t.Fatalf("second build from the cache alone: %v", err)
		}
	}
	warm := time.Since(start)
	t.Logf("seed: %d packages, %d bytes of .debs, %d bytes unpacked, tree digest %s", unpacked, debBytes, treeBytes, d1)
	t.Logf("seed: build %.1fs with downloads, %.1fs from the cache", cold.Seconds(), warm.Seconds())

	t.Run("reproducible", func(t *testing.T) {
		if d1 != d2 {
			t.Errorf("two builds: got %s and %s, want one digest", d1, d2)
		}
		if fetched != len(l.Packages) || unpacked != len(l.Packages) || debBytes != l.Bytes() {
			t.Errorf("got %d fetched (%d bytes), %d unpacked; want %d packages, %d bytes", fetched, debBytes, unpacked, len(l.Packages), l.Bytes())
		}
		golden := "testdata/seed.digest"
		if *update {
			if err := os.WriteFile(golden, []byte(d1+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if d1 != strings.TrimSpace(string(want)) {
			t.Errorf("tree digest: got %s, want %s (%s; after a re-lock, run go test -run TestFullSeed -update)", d1, strings.TrimSpace(string(want)), golden)
		}
	})

	t.Run("links", func(t *testing.T) {
		root := filepath.Join(work, "a")
		for _, k := range l.Links {
			got, err := os.Readlink(filepath.Join(root, k.Path))
			if err != nil || got != k.Target {
				t.Errorf("%s: got %q, %v; want a link to %s", k.Path, got, err, k.Target)
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Join(root, k.Path)), k.Target)); err != nil {
				t.Errorf("%s -> %s dangles: %v", k.Path, k.Target, err)
			}
		}
	})

	t.Run("gcc in a chroot without network", func(t *testing.T) {
		root := second
		prog := "#include <stdio.h>\nint main(void) { puts(\"hello from the seed\"); return 0; }\n"
		// A private mount namespace: /dev holds only null, /tmp is a
		// tmpfs, and nothing of it outlives the command. -n: no network.
		script := `set -e
root=$1
mount -t tmpfs -o mode=0755 tmpfs "$root/dev"
touch "$root/dev/null"
mount --bind /dev/null "$root/dev/null"
mount -t tmpfs tmpfs "$root/tmp"
printf '%s' "$2" >"$root/tmp/hello.c"
exec chroot "$root" /usr/bin/env -i PATH=/usr/bin /bin/sh -c '
	set -e
	cd /tmp
	test ! -e /sys/class/net/eth0
	cc -O2 -o hello hello.c
	cc -O2 -static -o hello-static hello.c
	./hello
	./hello-static
	readelf -l hello | grep -q "program interpreter"
	if readelf -l hello-static | grep -q INTERP; then echo hello-static is dynamic; exit 1; fi
	echo elf ok
	# The only dangling link is tar'"'"'s /etc/rmt (the rmt alternative is
	# not made; docs/seed.md).
	test "$(find / -xdev -xtype l | sort | tr "\n" " ")" = "/etc/rmt "
	awk "BEGIN { print \"awk ok\" }"
	make --version | head -n1
'`
		cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script, "sh", root, prog)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 5 || lines[0] != "hello from the seed" || lines[1] != "hello from the seed" ||
			lines[2] != "elf ok" || lines[3] != "awk ok" || !strings.HasPrefix(lines[4], "GNU Make") {
			t.Errorf("got:\n%s\nwant two hellos, elf ok, awk ok, GNU Make", out)
		}
		// The chroot wrote nothing to the seed.
		ents, _ := os.ReadDir(filepath.Join(root, "tmp"))
		if len(ents) != 0 {
			t.Errorf("seed's tmp holds %v after the chroot", ents)
		}
	})
}
