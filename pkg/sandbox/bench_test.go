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

func median(d []time.Duration) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkStart is the start-up cost of one sandboxed /bin/true with a root
// tree bound in (the host's /usr, the usual top-level links, a writable
// /out), against bubblewrap with the same binds (bwrap --unshare-all
// --die-with-parent) and against a bare unshare -m -n -p -f -u -i.
//
// The three run interleaved in one loop, each iteration in a rotating order,
// so that load from other processes on a shared machine falls on all three
// alike; each reports its median in ms, and the ratios of cairn to the others.
func BenchmarkStart(b *testing.B) {
	needSandbox(b)
	bwrap := testenv.NeedTool(b, "bwrap")
	unshare := testenv.NeedTool(b, "unshare")
	testenv.NeedRoot(b) // unshare without -r needs root
	root := b.TempDir()
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			b.Fatal(err)
		}
	}
	out := b.TempDir()
	spec := sandbox.Spec{Root: root, Args: []string{"/bin/true"}, Mounts: []sandbox.Mount{
		{Target: "/usr", Source: "/usr"}, {Target: "/out", Source: out, Writable: true},
	}}
	bwrapArgs := []string{"--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
		"--bind", out, "/out", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
		"--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--hostname", "localhost",
		"--clearenv", "--new-session", "/bin/true"}
	runners := []func() error{
		func() error {
			res, err := sandbox.Run(context.Background(), spec)
			if err == nil && !res.Success() {
				b.Fatalf("cairn sandbox: got %v, want exit status 0", res)
			}
			return err
		},
		func() error { return exec.Command(bwrap, bwrapArgs...).Run() },
		func() error { return exec.Command(unshare, "-m", "-n", "-p", "-f", "-u", "-i", "/bin/true").Run() },
	}
	names := []string{"cairn", "bwrap", "unshare"}
	d := make([][]time.Duration, len(runners))
	i := 0
	for b.Loop() {
		for k := range runners {
			j := (i + k) % len(runners)
			t0 := time.Now()
			if err := runners[j](); err != nil {
				b.Fatalf("%s: %v", names[j], err)
			}
			d[j] = append(d[j], time.Since(t0))
		}
		i++
	}
	m := make([]float64, len(runners))
	for j := range runners {
		m[j] = median(d[j])
		b.ReportMetric(m[j], names[j]+"-median-ms")
	}
	b.ReportMetric(m[0]/m[1], "cairn/bwrap")
	b.ReportMetric(m[0]/m[2], "cairn/unshare")
	b.ReportMetric(0, "ns/op") // an iteration is all three: the medians are the numbers
}
