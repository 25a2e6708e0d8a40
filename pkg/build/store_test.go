package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// storedFixture is a fixture whose seed (a tiny root of the host's dash,
// cat, dd and sleep with their libc) and source are trees in the store, as
// in a real build, so that they are checked like any stored object.
type storedFixture struct {
	*fixture
	seedDir, seedDigest string
	srcDir              string
}

func newStoredFixture(t *testing.T, recipes map[string][2]string) *storedFixture {
	f := &storedFixture{fixture: newFixture(t, recipes)}
	ctx := context.Background()
	seedSrc := filepath.Join(f.dir, "seed")
	for _, d := range []string{"bin", "lib/x86_64-linux-gnu", "lib64", "dev", "proc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(seedSrc, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for from, to := range map[string]string{
		"/usr/bin/dash": "bin/sh", "/usr/bin/cat": "bin/cat", "/usr/bin/dd": "bin/dd", "/usr/bin/sleep": "bin/sleep",
		"/lib/x86_64-linux-gnu/libc.so.6": "lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2": "lib64/ld-linux-x86-64.so.2",
	} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Skipf("no %s for the tiny seed: %v", from, err)
		}
		if err := os.WriteFile(filepath.Join(seedSrc, to), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := digest.FromDir(ctx, seedSrc)
	if err != nil {
		t.Fatal(err)
	}
	f.seedDigest = m.TreeDigest()
	if f.seedDir, err = f.store.AddTree(ctx, f.seedDigest, func(dir string) error { return copyDir(seedSrc, dir) }); err != nil {
		t.Fatal(err)
	}
	if f.srcDir, err = f.store.AddTree(ctx, f.srcTree, func(dir string) error { return copyDir(f.src, dir) }); err != nil {
		t.Fatal(err)
	}
	return f
}

func copyDir(from, to string) error { return os.CopyFS(to, os.DirFS(from)) }

// open opens the fixture's store again, as a new cairn process would.
func (f *storedFixture) open() *store.Store {
	f.t.Helper()
	s, err := store.Open(f.store.Dir())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// build runs every step with a fresh store handle and returns the results
// and how many steps ran (not cached).
func (f *storedFixture) build(verify bool) (map[string]plan.Result, int, error) {
	f.t.Helper()
	st, err := stack.Load(filepath.Join(f.dir, "stack.toml"))
	if err != nil {
		f.t.Fatal(err)
	}
	var mu sync.Mutex
	ran := 0
	b, err := New(Config{Stack: st, Store: f.open(), SeedDir: f.seedDir, SeedDigest: f.seedDigest,
		Sources: map[string]string{"in": f.srcDir}, Jobs: 2, Timeout: time.Minute, Verify: verify,
		Events: func(e plan.Event) {
			if e.Kind == plan.Finished && !e.Result.Cached {
				mu.Lock()
				ran++
				mu.Unlock()
			}
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	defer b.Close()
	res, err := b.Build(context.Background())
	return res, ran, err
}

var twoSteps = map[string][2]string{
	"a": {"", "cat /src/in/greeting > /out/a\n"},
	"b": {"a", "cat /deps/a/a > /out/b; echo world >> /out/b\n"},
}

func TestCorruptCachedOutputIsBuiltAgain(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	res, ran, err := f.build(false)
	if err != nil || ran != 2 {
		t.Fatalf("first build: ran %d, %v", ran, err)
	}
	p, _ := f.store.OutputPath(res["a"].Output)
	// Edited in place: same inode, new size and times.
	if err := os.WriteFile(filepath.Join(p, "a"), []byte("evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res2, ran, err := f.build(false)
	if err != nil {
		t.Fatal(err)
	}
	// b was made from a's output, which is not known to have been sound
	// then: both run again.
	if ran != 2 || res2["a"].Output != res["a"].Output || res2["b"].Output != res["b"].Output {
		t.Errorf("after corrupting a's output: ran %d steps (want 2: a and b made from it), outputs %v (want %v)", ran, res2, res)
	}
	if data, _ := os.ReadFile(filepath.Join(p, "a")); string(data) != "hello\n" {
		t.Errorf("a's output after the rebuild = %q, want hello", data)
	}
	bOut, _ := f.store.OutputPath(res2["b"].Output)
	if data, _ := os.ReadFile(filepath.Join(bOut, "b")); bytes.Contains(data, []byte("evil")) {
		t.Errorf("b's output carries the corrupt bytes: %q", data)
	}
}

// A corruption that also rewrote the index record (so the stat fingerprint
// matches) is trusted by a plain build but not by --verify.
func TestVerifyRehashesWhatTheFingerprintTrusts(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	res, _, err := f.build(false)
	if err != nil {
		t.Fatal(err)
	}
	ref := store.Ref{Kind: store.Output, Digest: res["b"].Output}
	p, _ := f.store.OutputPath(ref.Digest)
	if err := os.WriteFile(filepath.Join(p, "b"), []byte("evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	forgeIndex(t, f.store, ref)
	if _, ran, err := f.build(false); err != nil || ran != 0 {
		t.Fatalf("plain build after a forged index: ran %d, %v; want 0 (the fingerprint is trusted)", ran, err)
	}
	_, ran, err := f.build(true)
	if err != nil || ran != 1 {
		t.Fatalf("build --verify: ran %d, %v; want b built again", ran, err)
	}
	if data, _ := os.ReadFile(filepath.Join(p, "b")); string(data) != "hello\nworld\n" {
		t.Errorf("b's output after --verify = %q", data)
	}
}

// forgeIndex rewrites ref's index record with the fingerprint of what is
// there now, as one who knows the format could.
func forgeIndex(t *testing.T, st *store.Store, ref store.Ref) {
	t.Helper()
	ix := filepath.Join(st.Dir(), "index", string(ref.Kind)+"-"+strings.TrimPrefix(ref.Digest, "sha256:"))
	data, err := os.ReadFile(ix)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := store.Fingerprint(st.Path(ref))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "stat ") {
			l = "stat " + fp
		}
		out = append(out, l)
	}
	os.Chmod(ix, 0o644)
	if err := os.WriteFile(ix, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptSeedIsRefusedAndRemoved(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	if _, _, err := f.build(false); err != nil {
		t.Fatal(err)
	}
	// A cat that is a script: the next step to run would use it.
	testenv.ReplaceFile(t, filepath.Join(f.seedDir, "bin", "cat"), "#!/bin/sh\necho evil\n")
	os.WriteFile(filepath.Join(f.dir, "recipes", "b", "build.sh"), []byte("cat /deps/a/a > /out/b\n"), 0o644)
	_, ran, err := f.build(false)
	var ce *store.CorruptError
	if !errors.As(err, &ce) || ce.Ref.Digest != f.seedDigest || !strings.Contains(err.Error(), "seed") {
		t.Fatalf("got %v (ran %d), want a CorruptError naming the seed tree", err, ran)
	}
	if ran != 0 {
		t.Errorf("%d steps ran on a corrupt seed", ran)
	}
	if _, ok := f.store.Tree(f.seedDigest); ok {
		t.Error("the corrupt seed is still in the store")
	}
	// Every output built on that seed is no longer trusted.
	if ents, _ := os.ReadDir(filepath.Join(f.store.Dir(), "actions")); len(ents) != 0 {
		t.Errorf("action records made on the corrupt seed remain: %d", len(ents))
	}
}

func TestCorruptSourceInvalidatesItsOutputs(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	res, _, err := f.build(false)
	if err != nil {
		t.Fatal(err)
	}
	testenv.ReplaceFile(t, filepath.Join(f.srcDir, "greeting"), "evil\n")
	// What cairn fetch --verify does with a tree that does not match.
	st := f.open()
	err = st.Check(context.Background(), store.Ref{Kind: store.Tree, Digest: f.srcTree}, store.Full(true))
	var ce *store.CorruptError
	if !errors.As(err, &ce) || !ce.Removed {
		t.Fatalf("check of the corrupt source: %v, want a CorruptError, removed", err)
	}
	// Re-delivered: the outputs made from the bad tree must not be reused.
	if f.srcDir, err = st.AddTree(context.Background(), f.srcTree, func(dir string) error { return copyDir(f.src, dir) }); err != nil {
		t.Fatal(err)
	}
	res2, ran, err := f.build(false)
	if err != nil {
		t.Fatal(err)
	}
	if ran != 2 || res2["b"].Output != res["b"].Output {
		t.Errorf("after re-delivery: ran %d (want 2: both were made from the tree), b %s (want %s)", ran, res2["b"].Output, res["b"].Output)
	}
}

func TestChangedActionRecordIsAMiss(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	if _, _, err := f.build(false); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(f.store.Dir(), "actions"))
	if len(ents) != 2 {
		t.Fatalf("got %d action records, want 2", len(ents))
	}
	rp := filepath.Join(f.store.Dir(), "actions", ents[0].Name())
	data, _ := os.ReadFile(rp)
	os.Chmod(rp, 0o644)
	os.WriteFile(rp, bytes.Replace(data, []byte("output sha256:"), []byte("output sha256:0"), 1)[:len(data)], 0o644)
	rep, err := f.open().VerifyAll(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Path != rp {
		t.Fatalf("store verify: %v, want the changed record named", rep.Problems)
	}
	_, ran, err := f.build(false)
	if err != nil || ran < 1 {
		t.Errorf("build after a changed record: ran %d, %v; want its step built again", ran, err)
	}
	if rep, _ := f.open().VerifyAll(context.Background(), false); len(rep.Problems) != 0 {
		t.Errorf("after the build: %v", rep.Problems)
	}
}

// Two builds sharing a store, each with its own store handle (as two
// processes), run each step once: the second waits on the step's lock.
func TestConcurrentBuildsRunEachStepOnce(t *testing.T) {
	f := newStoredFixture(t, map[string][2]string{
		"a": {"", "sleep 1; cat /src/in/greeting > /out/a\n"},
		"b": {"a", "sleep 1; cat /deps/a/a > /out/b\n"},
		"c": {"", "sleep 1; echo c > /out/c\n"},
	})
	var wg sync.WaitGroup
	runs := make([]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, runs[i], errs[i] = f.build(false)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if runs[0]+runs[1] != 3 {
		t.Errorf("steps run: %d and %d, want 3 in all", runs[0], runs[1])
	}
}

func TestImageInOutIsACopyAndIsRewrittenWhenChanged(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	res, _, err := f.build(false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Load(filepath.Join(f.dir, "stack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	img := stack.Image{Name: "b", Recipe: "b"}
	out := filepath.Join(f.dir, "out")
	write := func(verify bool) *Image {
		t.Helper()
		b, err := New(Config{Stack: st, Store: f.open(), SeedDir: f.seedDir, SeedDigest: f.seedDigest,
			Sources: map[string]string{"in": f.srcDir}, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		w, err := b.WriteImage(context.Background(), img, res["b"].Output, out)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := write(false)
	blob := f.store.Path(store.Ref{Kind: store.Blob, Digest: w.Digest})
	var a, b syscall.Stat_t
	syscall.Stat(w.Path, &a)
	syscall.Stat(blob, &b)
	if a.Ino == b.Ino {
		t.Fatal("out/'s tarball is a hard link to the store's blob")
	}
	// Edit out/: the store's blob is untouched, and the next build puts the
	// right bytes back.
	fh, err := os.OpenFile(w.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte("evil"), 100)
	fh.Close()
	if err := f.open().Check(context.Background(), store.Ref{Kind: store.Blob, Digest: w.Digest}, store.Full(true)); err != nil {
		t.Fatalf("the store's blob changed with out/: %v", err)
	}
	w2 := write(false)
	if !w2.Cached || w2.Path != w.Path {
		t.Errorf("second write: %+v, want the cached image at the same path", w2)
	}
	if got, _ := store.FileSum(context.Background(), w.Path); got != w.Digest {
		t.Errorf("out/ tarball after the rebuild: %s, want %s", got, w.Digest)
	}
	// An OCI blob in out/ changed: the layout is written again.
	layoutBlobs := filepath.Join(out, "b.oci", "blobs", "sha256")
	ents, _ := os.ReadDir(layoutBlobs)
	if len(ents) == 0 {
		t.Fatal("no OCI blobs in out/")
	}
	testenv.ReplaceFile(t, filepath.Join(layoutBlobs, ents[0].Name()), "evil")
	write(false)
	if got, _ := store.FileSum(context.Background(), filepath.Join(layoutBlobs, ents[0].Name())); got != "sha256:"+ents[0].Name() {
		t.Errorf("OCI blob %s after the rebuild: %s", ents[0].Name(), got)
	}
}

// A step that fills its filesystem fails naming ENOSPC, in the error and
// in its log, though the script's own message may have been lost.
func TestFullDiskNamesENOSPC(t *testing.T) {
	f := newStoredFixture(t, map[string][2]string{
		"a": {"", "dd if=/dev/zero of=/out/big bs=1M count=64 2>/dev/null || exit 1\n"},
	})
	// The store on a small tmpfs: copy the seed and source trees there.
	small := filepath.Join(f.dir, "small")
	os.MkdirAll(small, 0o755)
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
	st, err := store.Open(filepath.Join(small, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	seedDir, err := st.AddTree(ctx, f.seedDigest, func(dir string) error { return copyDir(f.seedDir, dir) })
	if err != nil {
		t.Fatal(err)
	}
	srcDir, err := st.AddTree(ctx, f.srcTree, func(dir string) error { return copyDir(f.srcDir, dir) })
	if err != nil {
		t.Fatal(err)
	}
	stk, _ := stack.Load(filepath.Join(f.dir, "stack.toml"))
	b, err := New(Config{Stack: stk, Store: st, SeedDir: seedDir, SeedDigest: f.seedDigest,
		Sources: map[string]string{"in": srcDir}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Build(ctx)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("got %v, want an error that names ENOSPC", err)
	}
	var se *plan.StepError
	if errors.As(err, &se) {
		if log, _ := os.ReadFile(se.Log); !strings.Contains(string(log), "no space left on device") {
			t.Errorf("log %s = %q, want it to name ENOSPC", se.Log, log)
		}
	} else {
		t.Errorf("got %T, want a StepError with the log", err)
	}
}

// A store on a read-only mount can be read (plan's Status, the logs) and
// refuses writes without opening anything for writing.
func TestReadOnlyStore(t *testing.T) {
	testenv.NeedRoot(t)
	f := newStoredFixture(t, twoSteps)
	if _, _, err := f.build(false); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(f.dir, "ro")
	os.MkdirAll(ro, 0o755)
	if err := syscall.Mount(f.store.Dir(), ro, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(ro, syscall.MNT_DETACH) })
	if err := syscall.Mount("", ro, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ro)
	if err != nil {
		t.Fatalf("open a read-only store: %v", err)
	}
	defer st.Close()
	if !st.ReadOnly() {
		t.Error("ReadOnly() = false")
	}
	stk, _ := stack.Load(filepath.Join(f.dir, "stack.toml"))
	b, err := New(Config{Stack: stk, Store: st, SeedDir: f.seedDir, SeedDigest: f.seedDigest,
		Sources: map[string]string{"in": f.srcDir}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range b.Status() {
		if !s.Cached {
			t.Errorf("step %s: not cached in the read-only store", s.ID)
		}
		if _, err := os.Stat(b.LogPath(s.Key)); err != nil {
			t.Errorf("step %s: log: %v", s.ID, err)
		}
	}
	if _, err := st.AddBlob(context.Background(), strings.Repeat("a", 64), io.LimitReader(nil, 0)); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("AddBlob on a read-only store: %v, want ErrReadOnly", err)
	}
}

// killEnv carries, to the helper process of TestKillPoints, the point to
// die at and the paths of the fixture it builds.
const killEnv = "CAIRN_BUILD_KILL_HELPER"

// TestKillHelper is not a test: run by TestKillPoints as a subprocess, it
// builds the fixture and writes image b, and SIGKILLs itself at the point
// named (or runs to the end when the point is "none").
func TestKillHelper(t *testing.T) {
	v := os.Getenv(killEnv)
	if v == "" {
		t.Skip("helper process of TestKillPoints")
	}
	f := strings.Split(v, "\x1f")
	point, stackFile, storeDir, seedDir, seedDigest, srcDir, outDir := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	hook := func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	st, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	st.SetHook(hook)
	stk, err := stack.Load(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Stack: stk, Store: st, SeedDir: seedDir, SeedDigest: seedDigest,
		Sources: map[string]string{"in": srcDir}, Timeout: time.Minute, Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.WriteImage(context.Background(), stack.Image{Name: "b", Recipe: "b"}, res["b"].Output, outDir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("IMAGE %s %s\n", w.Digest, w.Manifest)
}

// TestKillPoints kills a build (SIGKILL, at a point the build reaches for
// certain, not by timing) while a step runs, while its output is being
// stored, while the rootfs tarball is placed in out/ and while the OCI
// layout is staged there; then a build in the same store and out/ must
// leave no temporary file and give the same image as an undisturbed build.
func TestKillPoints(t *testing.T) {
	f := newStoredFixture(t, map[string][2]string{
		"a": {"", "echo running a; cat /src/in/greeting > /out/a\n"},
		"b": {"a", "echo running b; cat /deps/a/a > /out/b; echo world >> /out/b\n"},
	})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(point, storeDir, outDir string) (string, error) {
		cmd := exec.Command(exe, "-test.run", "^TestKillHelper$", "-test.v")
		cmd.Env = append(os.Environ(), killEnv+"="+strings.Join([]string{point, filepath.Join(f.dir, "stack.toml"),
			storeDir, f.seedDir, f.seedDigest, f.srcDir, outDir}, "\x1f"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The seed and source trees stay in the fixture's store; each run
	// gets its own store for the outputs and records.
	want, err := run("none", t.TempDir(), filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatalf("undisturbed build: %v\n%s", err, want)
	}
	want = regexp.MustCompile(`IMAGE .*`).FindString(want)
	for _, point := range []string{"step", "storing", "xz", "oci"} {
		t.Run(point, func(t *testing.T) {
			storeDir, outDir := t.TempDir(), filepath.Join(t.TempDir(), "out")
			out, err := run(point, storeDir, outDir)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != -1 {
				t.Fatalf("the build was not killed at %s: %v\n%s", point, err, out)
			}
			left := temps(t, storeDir, outDir)
			t.Logf("killed at %s, left: %v", point, left)
			if len(left) == 0 {
				t.Errorf("killed at %s, but nothing was left behind to sweep: the point is not where it claims", point)
			}
			out, err = run("none", storeDir, outDir)
			if err != nil {
				t.Fatalf("build after the kill: %v\n%s", err, out)
			}
			if got := regexp.MustCompile(`IMAGE .*`).FindString(out); got != want {
				t.Errorf("image after a kill at %s: %q, want %q", point, got, want)
			}
			if left := temps(t, storeDir, outDir); len(left) > 0 {
				t.Errorf("after the next build, left behind: %v", left)
			}
			if rep, err := store.Open(storeDir); err == nil {
				r, _ := rep.VerifyAll(context.Background(), false)
				if len(r.Problems) > 0 {
					t.Errorf("store after the kill and a build: %v", r.Problems)
				}
				rep.Close()
			}
		})
	}
}

// temps lists the temporary files and directories under the store's tmp/
// and record folders and in out/.
func temps(t *testing.T, storeDir, outDir string) []string {
	var left []string
	ents, _ := os.ReadDir(filepath.Join(storeDir, "tmp"))
	for _, e := range ents {
		left = append(left, "tmp/"+e.Name())
	}
	for _, d := range []string{outDir, filepath.Join(storeDir, "actions"), filepath.Join(storeDir, "index")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp") {
				left = append(left, filepath.Join(d, e.Name()))
			}
		}
	}
	return left
}

// An out/ tarball that an older cairn hard-linked to the store's blob is
// replaced by a copy.
func TestHardLinkedOutFileIsReplaced(t *testing.T) {
	f := newStoredFixture(t, twoSteps)
	res, _, err := f.build(false)
	if err != nil {
		t.Fatal(err)
	}
	stk, _ := stack.Load(filepath.Join(f.dir, "stack.toml"))
	out := filepath.Join(f.dir, "out")
	write := func() *Image {
		b, err := New(Config{Stack: stk, Store: f.open(), SeedDir: f.seedDir, SeedDigest: f.seedDigest,
			Sources: map[string]string{"in": f.srcDir}})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		w, err := b.WriteImage(context.Background(), stack.Image{Name: "b", Recipe: "b"}, res["b"].Output, out)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := write()
	blob := f.store.Path(store.Ref{Kind: store.Blob, Digest: w.Digest})
	os.Remove(w.Path)
	if err := os.Link(blob, w.Path); err != nil {
		t.Fatal(err)
	}
	write()
	if sameFile(w.Path, blob) {
		t.Error("out/'s tarball is still a hard link to the store's blob")
	}
}
