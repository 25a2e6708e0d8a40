package seed

import (
	"errors"
	"strings"
	"testing"
)

const (
	shaA = "1896a2aacf4ad681ff5eacc24a5b0ca4d5d9c9b9c9e4b6de5197bc1e116ea619"
	shaB = "ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf"
)

func TestParseLock(t *testing.T) {
	in := "# a comment\n\n" +
		"deb dash 0.5.12-2 amd64 91848 " + shaA + " pool/main/d/dash/dash_0.5.12-2_amd64.deb\n" +
		"deb gawk 1:5.2.1-2 amd64 672772 " + shaB + " pool/main/g/gawk/gawk_5.2.1-2_amd64.deb # trailing\n" +
		"symlink usr/bin/awk gawk\n"
	l, err := ParseLock(strings.NewReader(in), "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Packages) != 2 || len(l.Links) != 1 {
		t.Fatalf("got %d packages and %d links, want 2 and 1", len(l.Packages), len(l.Links))
	}
	g := l.Packages[1]
	if g.Name != "gawk" || g.Version != "1:5.2.1-2" || g.Arch != "amd64" || g.Size != 672772 || g.SHA256 != shaB || g.Line != 4 {
		t.Errorf("got %+v", g)
	}
	if g.aptFileName() != "gawk_1%3a5.2.1-2_amd64.deb" {
		t.Errorf("apt file name: got %s", g.aptFileName())
	}
	if l.Links[0] != (Link{Path: "usr/bin/awk", Target: "gawk", Line: 5}) {
		t.Errorf("link: got %+v", l.Links[0])
	}
	if l.Bytes() != 91848+672772 {
		t.Errorf("bytes: got %d", l.Bytes())
	}
}

func TestParseLockErrors(t *testing.T) {
	ok := "deb dash 0.5.12-2 amd64 91848 " + shaA + " pool/main/d/dash/dash_0.5.12-2_amd64.deb\n"
	for _, tc := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"empty", "# nothing\n", 1, "no packages"},
		{"fields", "\n" + "deb dash 0.5.12-2 amd64 91848 " + shaA + "\n", 2, "has 6 fields"},
		{"name", "deb Dash 0.5.12-2 amd64 91848 " + shaA + " pool/main/d/dash/x.deb\n", 1, "invalid package name"},
		{"version", "deb dash x0.5 amd64 91848 " + shaA + " pool/main/d/dash/x.deb\n", 1, "invalid version"},
		{"epoch", "deb dash a:0.5 amd64 91848 " + shaA + " pool/main/d/dash/x.deb\n", 1, "invalid version"},
		{"size", "deb dash 0.5 amd64 -1 " + shaA + " pool/main/d/dash/x.deb\n", 1, "invalid size"},
		{"size zero", "deb dash 0.5 amd64 0 " + shaA + " pool/main/d/dash/x.deb\n", 1, "invalid size"},
		{"sha short", "deb dash 0.5 amd64 1 abc pool/main/d/dash/x.deb\n", 1, "64 lowercase hex"},
		{"sha upper", "deb dash 0.5 amd64 1 " + strings.ToUpper(shaA) + " pool/main/d/dash/x.deb\n", 1, "64 lowercase hex"},
		{"pool absolute", "deb dash 0.5 amd64 1 " + shaA + " /pool/main/d/dash/x.deb\n", 1, "pool file name"},
		{"pool escape", "deb dash 0.5 amd64 1 " + shaA + " pool/../../etc/x.deb\n", 1, "pool file name"},
		{"pool not deb", "deb dash 0.5 amd64 1 " + shaA + " pool/main/d/dash/x.tar\n", 1, "pool file name"},
		{"duplicate", ok + ok, 2, "already locked on line 1"},
		{"order", "deb zsh 1 amd64 1 " + shaA + " pool/z.deb\n" + ok, 2, "out of order"},
		{"directive", ok + "run rm -rf /\n", 2, "unknown directive"},
		{"link fields", ok + "symlink usr/bin/awk\n", 2, "has 2 fields"},
		{"link absolute", ok + "symlink /usr/bin/awk gawk\n", 2, "clean relative path"},
		{"link escape", ok + "symlink ../x gawk\n", 2, "clean relative path"},
		{"link unclean", ok + "symlink usr//bin/awk gawk\n", 2, "clean relative path"},
		{"link twice", ok + "symlink usr/bin/awk gawk\nsymlink usr/bin/awk mawk\n", 3, "already declared on line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLock(strings.NewReader(tc.in), "seed.lock")
			if err == nil {
				t.Fatal("got no error")
			}
			var le *LockError
			if !errors.As(err, &le) {
				t.Fatalf("got %T %v, want a *LockError", err, err)
			}
			if le.File != "seed.lock" || le.Line != tc.line {
				t.Errorf("got %s:%d, want seed.lock:%d (%v)", le.File, le.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q, want it to say %q", err, tc.msg)
			}
		})
	}
}

// Every problem is reported at once, each with its own line.
func TestParseLockAllErrors(t *testing.T) {
	in := "deb dash 0.5 amd64 x " + shaA + " pool/a.deb\nbogus\ndeb gawk 1 amd64 1 zz pool/b.deb\n"
	_, err := ParseLock(strings.NewReader(in), "f")
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{"f:1: ", "f:2: ", "f:3: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
}

// The lock in the repository parses and is the closure it claims to be.
func TestRepositoryLock(t *testing.T) {
	l, err := ParseLockFile("../../toolchain/seed.lock")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range l.Packages {
		names[p.Name] = true
	}
	for _, root := range []string{"gcc", "make", "libc6-dev", "linux-libc-dev", "binutils", "dash",
		"coreutils", "sed", "grep", "gawk", "tar", "gzip", "bzip2", "xz-utils", "patch", "findutils", "diffutils"} {
		if !names[root] {
			t.Errorf("lock lacks %s", root)
		}
	}
	if len(l.Packages) < 60 {
		t.Errorf("got %d packages, want the whole closure (about 76)", len(l.Packages))
	}
}
