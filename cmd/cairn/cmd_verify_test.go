package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/verify"
)

// verifyFixture copies testdata/verify and the default seed lock into a
// temporary directory (a stack's paths may not leave its directory) and
// returns the stack file and the mirror directory holding its source.
func verifyFixture(t testing.TB) (stackFile, mirror string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "stack")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "verify"))); err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join("..", "..", "toolchain", "seed.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seed.lock"), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "stack.toml"), filepath.Join(dir, "mirror")
}

func TestVerifyUsage(t *testing.T) {
	stackFile, _ := verifyFixture(t)
	_, stderr, code := runCairn(t, "verify", "--stack", stackFile, "--store", t.TempDir(), "no-such-target")
	if code != exitUsage || !strings.Contains(stderr, "no-such-target") {
		t.Errorf("verify no-such-target: got exit %d, stderr %q; want %d naming the target", code, stderr, exitUsage)
	}
}

// TestVerifyEnter checks the step verify starts the varied build through:
// in a new UTS namespace it sets the hostname and umask, then execs.
func TestVerifyEnter(t *testing.T) {
	testenv.NeedRoot(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cairnBinary(t), verifyEnterCmd, "--hostname", "cairn-verify-test", "--umask", "0077", "--",
		"/bin/sh", "-c", "cat /proc/sys/kernel/hostname; umask")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, want := string(out), "cairn-verify-test\n0077\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if after, _ := os.Hostname(); after != host {
		t.Errorf("the test's own hostname changed from %q to %q", host, after)
	}
}

// TestVerifyFixture runs cairn verify on the fixture stack: the steady
// recipe and its image are reproducible, the stamp recipe (it writes the
// time) DIFFERS with the file stamp named, and diffoscope finds nothing
// between the two kept trees of steady (and, as a control, finds stamp).
func TestVerifyFixture(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedNetwork(t)
	diffoscope := testenv.NeedTool(t, "diffoscope")
	stackFile, mirror := verifyFixture(t)
	work := t.TempDir()
	store := filepath.Join(work, "ref-store")
	args := []string{"verify", "--stack", stackFile, "--store", store, "--mirror", mirror, "--work", work}

	stdout, stderr, code := runCairn(t, append(args, "--keep", "--json")...)
	if code != exitFailure {
		t.Fatalf("verify: got exit %d, want %d\n%s\n%s", code, exitFailure, stdout, stderr)
	}
	t.Logf("verify:\n%s", stderr)
	var rep verify.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, stdout)
	}
	if rep.Mounted == "" {
		t.Fatal("verify --keep as root: no tmpfs for the varied store reported")
	}
	t.Cleanup(func() { syscall.Unmount(rep.Mounted, syscall.MNT_DETACH) })
	var fs syscall.Statfs_t
	if err := syscall.Statfs(rep.VariedStore, &fs); err != nil || fs.Type != 0x01021994 {
		t.Errorf("varied store %s: got filesystem type %#x (%v), want tmpfs", rep.VariedStore, fs.Type, err)
	}
	got := map[string]verify.Output{}
	for _, o := range rep.Outputs {
		got[o.Kind+" "+o.Name] = o
	}
	for _, tc := range []struct {
		output       string
		reproducible bool
	}{
		{"step steady", true},
		{"step stamp", false},
		{"image steady.rootfs.tar.xz", true},
		{"image steady.oci", true},
		{"image steady.docker.tar", true},
		{"image steady.spdx.json", true},
		{"image steady.provenance.json", true},
		{"image stamp.rootfs.tar.xz", false},
		{"image stamp.oci", false},
	} {
		o, ok := got[tc.output]
		if !ok {
			t.Errorf("%s: not in the report", tc.output)
			continue
		}
		if o.Reproducible != tc.reproducible {
			t.Errorf("%s: got reproducible %v, want %v", tc.output, o.Reproducible, tc.reproducible)
		}
		// A tree that differs (a step output, a rootfs tarball, an OCI
		// layout's layer) names its file.
		if !tc.reproducible {
			if o.Diff == nil || len(o.Diff.Changes) != 1 || o.Diff.Changes[0].Path != "stamp" {
				t.Errorf("%s: got diff %+v, want one change naming stamp", tc.output, o.Diff)
			}
		}
	}

	// The kept trees of the two builds, for diffoscope: directory metadata
	// (the stores' mtimes) is no part of an output's identity.
	for _, tc := range []struct {
		step string
		code int
	}{{"steady", 0}, {"stamp", 1}} {
		o := got["step "+tc.step]
		cmd := exec.Command(diffoscope, "--no-progress", "--exclude-directory-metadata=recursive", o.PathA, o.PathB)
		out, _ := cmd.CombinedOutput()
		if c := cmd.ProcessState.ExitCode(); c != tc.code {
			t.Errorf("diffoscope on the kept trees of %s: got exit %d, want %d\n%s", tc.step, c, tc.code, out)
		}
		if tc.code == 1 && !strings.Contains(string(out), "stamp") {
			t.Errorf("diffoscope on the kept trees of stamp does not name it:\n%s", out)
		}
	}

	// The reproducible target alone, printed as a table: exit 0. The
	// reference store is now warm, so this also checks cached outputs.
	stdout, stderr, code = runCairn(t, append(args, "steady")...)
	if code != 0 {
		t.Fatalf("verify steady: got exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "DIFFERS") || !regexp.MustCompile(`(?m)^image\s+steady\.rootfs\.tar\.xz\s+reproducible\s`).MatchString(stdout) {
		t.Errorf("verify steady: got\n%s\nwant every row reproducible", stdout)
	}
	if des, _ := filepath.Glob(filepath.Join(work, "cairn-verify-*")); len(des) != 1 {
		t.Errorf("work directories left: got %v, want only the --keep one", des)
	}
}

// BenchmarkVerifyFixture reports what verify costs on the fixture stack:
// the two builds (each from a cold store but for the seed's .debs) and the
// comparison, whose share of the whole should stay far under 5%.
func BenchmarkVerifyFixture(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedNetwork(b)
	stackFile, mirror := verifyFixture(b)
	work := b.TempDir()
	debs := filepath.Join(work, "debs")
	var ref, varied, cmp float64
	for i := 0; i < b.N; i++ {
		store := filepath.Join(work, fmt.Sprintf("store-%d", i))
		// A cold reference store that keeps the downloaded .debs.
		if err := os.MkdirAll(filepath.Join(store, "state"), 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := os.Stat(debs); err == nil {
			if err := os.Rename(debs, filepath.Join(store, "state", "debs")); err != nil {
				b.Fatal(err)
			}
		}
		cmd := exec.Command(cairnBinary(b), "verify", "--stack", stackFile, "--store", store, "--mirror", mirror, "--work", work, "--json", "steady")
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("verify: %v\n%s", err, out)
		}
		var rep verify.Report
		if err := json.Unmarshal(out, &rep); err != nil {
			b.Fatal(err)
		}
		ref += rep.RefBuild.Seconds()
		varied += rep.VariedBuild.Seconds()
		cmp += rep.Compare.Seconds()
		if err := os.Rename(filepath.Join(store, "state", "debs"), debs); err != nil {
			b.Fatal(err)
		}
		if err := verify.RemoveAll(store); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ref/n, "ref-build-s/op")
	b.ReportMetric(varied/n, "varied-build-s/op")
	b.ReportMetric(cmp/n*1000, "compare-ms/op")
	b.ReportMetric(100*cmp/(ref+varied+cmp), "compare-%")
}
