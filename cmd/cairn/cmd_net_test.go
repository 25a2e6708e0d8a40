package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// TestFetchStalledServer runs `cairn fetch` against servers on 127.0.0.1
// that accept the connection and never answer, or send the headers and
// stall mid-body: each run fails with a timeout naming the host, well
// before a generous bound, and the store keeps nothing.
func TestFetchStalledServer(t *testing.T) {
	_, sum, tree := tgzOf(t, "stall", 3)
	for _, tt := range []struct {
		name  string
		stall testenv.Stall
		want  string
	}{
		{"no answer", testenv.StallSilent, "no response from %s within 1s"},
		{"stall mid-body", testenv.StallMidBody, "no data from %s for 1s while reading http://%[1]s/a-1.tar.gz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := testenv.StalledServer(t, tt.stall)
			dir := t.TempDir()
			stackFile := filepath.Join(dir, "stack.toml")
			os.WriteFile(stackFile, []byte(fmt.Sprintf("name = \"t\"\nsource_date_epoch = 0\n[seed]\nlock = \"seed.lock\"\n\n[[source]]\nname = \"a\"\nversion = \"1\"\nlicense = \"MIT\"\ntree = %q\narchive_sha256 = %q\nstrip = 1\narchives = [%q]\ntransports = [\"archive\"]\n",
				tree, sum, "http://"+addr+"/a-1.tar.gz")), 0o644)
			os.WriteFile(filepath.Join(dir, "seed.lock"), nil, 0o644)
			storeDir := filepath.Join(dir, "store")
			start := time.Now()
			_, stderr, code := runCairn(t, "fetch", "--stack", stackFile, "--store", storeDir, "--net-timeout", "1s", "--stall-timeout", "1s")
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("cairn fetch took %s with 1s budgets", took)
			}
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			if want := fmt.Sprintf(tt.want, addr); !strings.Contains(stderr, want) {
				t.Errorf("stderr %q, want it to contain %q", short(stderr), want)
			}
			for _, d := range []string{"trees/sha256", "blobs/sha256", "tmp"} {
				if ents, _ := os.ReadDir(filepath.Join(storeDir, d)); len(ents) != 0 {
					t.Errorf("%s after a stalled fetch: %d entries, want none", d, len(ents))
				}
			}
		})
	}
}

// TestPushStalledRegistry pushes to a "registry" on 127.0.0.1 that accepts
// the connection and never answers: cairn push fails with a timeout naming
// the host within a generous bound of its --net-timeout.
func TestPushStalledRegistry(t *testing.T) {
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "hi"), []byte("hi\n"), 0o644)
	res, err := rootfs.Write(context.Background(), tree, t.TempDir(), "hi", rootfs.WithEpoch(1700000000))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, stderr, code := runCairn(t, "image", "oci", res.Path, "--out", out, "--epoch", "1700000000"); code != 0 {
		t.Fatalf("cairn image oci: exit %d\n%s", code, stderr)
	}
	for _, tt := range []struct {
		name  string
		stall testenv.Stall
		want  string
	}{
		// https is tried first on a loopback registry (a handshake that
		// never completes), then plain http (no answer).
		{"no answer", testenv.StallSilent, "%s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := testenv.StalledServer(t, tt.stall)
			start := time.Now()
			_, stderr, code := runCairn(t, "push", "--out", out, "--net-timeout", "1s", "--stall-timeout", "1s", "hi", addr+"/cairn/hi:latest")
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("cairn push took %s with 1s budgets", took)
			}
			if code == 0 {
				t.Fatalf("cairn push to a stalled registry succeeded")
			}
			t.Logf("cairn push: %s", short(stderr))
			if want := fmt.Sprintf(tt.want, addr); !strings.Contains(stderr, want) || !strings.Contains(stderr, "1s") {
				t.Errorf("stderr %q, want a timeout naming %q", short(stderr), want)
			}
			if !strings.Contains(stderr, "timed out") && !strings.Contains(stderr, "no response from") && !strings.Contains(stderr, "no data from") {
				t.Errorf("stderr %q, want a timeout error", short(stderr))
			}
		})
	}
}

// TestFlagRanges: out-of-range numbers are usage errors naming the flag and
// the allowed range, before anything is read.
func TestFlagRanges(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "-j", "0"}, "-j/--jobs 0: want 1 to 1024"},
		{[]string{"build", "-j", "-3"}, "-j/--jobs -3: want 1 to 1024"},
		{[]string{"build", "-j", "100000"}, "-j/--jobs 100000: want 1 to 1024"},
		{[]string{"plan", "-j", "0"}, "-j/--jobs 0: want 1 to 1024"},
		{[]string{"verify", "-j", "0"}, "-j/--jobs 0: want 1 to 1024"},
		{[]string{"seed", "build", "--out", "x", "-j", "0"}, "-j/--jobs 0: want 1 to 1024"},
		{[]string{"build", "--timeout", "0"}, "--timeout 0s: want a duration from 1s to 168h0m0s"},
		{[]string{"verify", "--timeout", "-1s"}, "--timeout -1s: want a duration from 1s to 168h0m0s"},
		{[]string{"fetch", "--net-timeout", "0"}, "--net-timeout 0s: want a duration from 1ms to 1h0m0s"},
		{[]string{"build", "--stall-timeout", "2h"}, "--stall-timeout 2h0m0s: want a duration from 1ms to 1h0m0s"},
		{[]string{"mirror", "--net-timeout", "0", "x"}, "--net-timeout 0s"},
		{[]string{"push", "--net-timeout", "0", "x", "127.0.0.1:1/x:y"}, "--net-timeout 0s"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			// A stack that does not exist: a range check that came after
			// reading it would fail on that first.
			args := tt.args
			if args[0] != "push" && args[0] != "seed" {
				args = append(args, "--stack", filepath.Join(t.TempDir(), "nosuch.toml"))
			}
			_, stderr, code := runCairn(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (usage)", code, exitUsage)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

// short keeps a failure message readable when a stalled server's bytes
// reach stderr.
func short(s string) string {
	if len(s) > 2000 {
		return s[:1000] + " … " + s[len(s)-1000:]
	}
	return s
}
