package sandbox_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/sandbox"
)

// reportMedian records the median of per-iteration durations; a mean would
// let one slow fork (2 cores, shared) move the number.
func reportMedian(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkStart is the start-up cost of one sandboxed /bin/true with a root
// tree bound in: cairn's sandbox against bubblewrap with the same binds and
// against a bare unshare of the same namespaces, in one process.
func BenchmarkStart(b *testing.B) {
	root := b.TempDir()
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			b.Fatal(err)
		}
	}
	out := b.TempDir()
	b.Run("cairn", func(b *testing.B) {
		needSandbox(b)
		s := sandbox.Spec{Root: root, Args: []string{"/bin/true"}, Mounts: []sandbox.Mount{
			{Target: "/usr", Source: "/usr"}, {Target: "/out", Source: out, Writable: true},
		}}
		d := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			res, err := sandbox.Run(context.Background(), s)
			d = append(d, time.Since(t0))
			if err != nil || !res.Success() {
				b.Fatalf("got %v, %v, want success", res, err)
			}
		}
		reportMedian(b, d)
	})
	b.Run("bwrap", func(b *testing.B) {
		bwrap := testenv.NeedTool(b, "bwrap")
		args := []string{"--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
			"--bind", out, "/out", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
			"--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
			"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--hostname", "localhost",
			"--clearenv", "--new-session", "/bin/true"}
		benchCommand(b, bwrap, args...)
	})
	b.Run("unshare", func(b *testing.B) {
		testenv.NeedRoot(b)
		unshare := testenv.NeedTool(b, "unshare")
		benchCommand(b, unshare, "-m", "-n", "-p", "-f", "-u", "-i", "/bin/true")
	})
}

func benchCommand(b *testing.B, name string, args ...string) {
	d := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		out, err := exec.Command(name, args...).CombinedOutput()
		d = append(d, time.Since(t0))
		if err != nil {
			b.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	reportMedian(b, d)
}
