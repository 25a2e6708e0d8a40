package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/sandbox"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

func TestMain(m *testing.M) {
	// The sandbox re-executes this test binary as its init.
	if code, ok := sandbox.Init(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// fixture is a stack of real recipes run in real sandboxes over a root
// tree that shows the host's /usr (a stand-in for the seed).
type fixture struct {
	t       *testing.T
	dir     string
	root    string
	src     string
	store   *store.Store
	srcTree string
	events  []plan.Event
	mu      sync.Mutex
}

// fixtureStage gives a fixture recipe the stage the stage rule asks for:
// one above its highest dependency's.
func fixtureStage(recipes map[string][2]string, name string) int {
	stage := 1
	if deps := recipes[name][0]; deps != "" {
		for _, d := range strings.Split(deps, ",") {
			stage = max(stage, fixtureStage(recipes, strings.TrimSpace(d))+1)
		}
	}
	return stage
}

// recipes: name → (deps, script).
func newFixture(t *testing.T, recipes map[string][2]string) *fixture {
	t.Helper()
	testenv.NeedRoot(t)
	f := &fixture{t: t, dir: t.TempDir()}
	f.root = filepath.Join(f.dir, "root")
	if err := os.MkdirAll(filepath.Join(f.root, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(f.root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("/usr", filepath.Join(f.root, "usr"), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(filepath.Join(f.root, "usr"), syscall.MNT_DETACH) })

	f.src = filepath.Join(f.dir, "src")
	os.MkdirAll(f.src, 0o755)
	os.WriteFile(filepath.Join(f.src, "greeting"), []byte("hello\n"), 0o644)
	m, err := digest.FromDir(context.Background(), f.src)
	if err != nil {
		t.Fatal(err)
	}
	f.srcTree = m.TreeDigest()

	stackText := "name = \"fixture\"\nsource_date_epoch = 1700000000\nrecipes = ["
	var names []string
	for name, r := range recipes {
		names = append(names, `"recipes/`+name+`"`)
		rd := filepath.Join(f.dir, "recipes", name)
		os.MkdirAll(rd, 0o755)
		deps := ""
		if r[0] != "" {
			deps = `"` + strings.ReplaceAll(r[0], ",", `", "`) + `"`
		}
		os.WriteFile(filepath.Join(rd, "recipe.toml"), []byte("name = \""+name+"\"\nstage = "+fmt.Sprint(fixtureStage(recipes, name))+"\nsources = [\"in\"]\ndeps = ["+deps+"]\nscript = \"build.sh\"\n"), 0o644)
		os.WriteFile(filepath.Join(rd, "build.sh"), []byte(r[1]), 0o644)
	}
	stackText += strings.Join(names, ", ") + "]\n\n[seed]\nlock = \"seed.lock\"\n\n[[source]]\nname = \"in\"\nversion = \"1\"\nlicense = \"MIT\"\ntree = \"" + f.srcTree + "\"\n"
	os.WriteFile(filepath.Join(f.dir, "stack.toml"), []byte(stackText), 0o644)
	f.store, err = store.Open(filepath.Join(f.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	return f
}

func (f *fixture) builder(jobs int) *Builder {
	f.t.Helper()
	st, err := stack.Load(filepath.Join(f.dir, "stack.toml"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.events = nil
	b, err := New(Config{Stack: st, Store: f.store, SeedDir: f.root, SeedDigest: "sha256:" + strings.Repeat("0", 64),
		Sources: map[string]string{"in": f.src}, Jobs: jobs, Timeout: time.Minute,
		Events: func(e plan.Event) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() }})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) kinds() map[string]plan.EventKind {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := map[string]plan.EventKind{}
	for _, e := range f.events {
		last[e.Step] = e.Kind
	}
	return last
}

func TestBuildCachesAndRebuildsOnlyWhatChanged(t *testing.T) {
	f := newFixture(t, map[string][2]string{
		"a": {"", "cat /src/in/greeting > /out/a; echo built a\n"},
		"b": {"a", "cat /deps/a/a > /out/b; echo world >> /out/b\n"},
	})
	res, err := f.builder(2).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bOut, ok := f.builder(2).OutputPath(res["b"].Output)
	if !ok {
		t.Fatalf("output of b not stored: %+v", res["b"])
	}
	if data, _ := os.ReadFile(filepath.Join(bOut, "b")); string(data) != "hello\nworld\n" {
		t.Errorf("b's output = %q, want a's output and its own line", data)
	}
	if log, _ := os.ReadFile(res["a"].Log); !strings.Contains(string(log), "built a") {
		t.Errorf("a's log %s = %q, want the script's output", res["a"].Log, log)
	}

	b2 := f.builder(2)
	if _, err := b2.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := f.kinds(); k["a"] != plan.Cached || k["b"] != plan.Cached {
		t.Errorf("second build: events %v, want both cached", k)
	}

	// A change to b's script rebuilds b alone.
	os.WriteFile(filepath.Join(f.dir, "recipes", "b", "build.sh"), []byte("cat /deps/a/a > /out/b\n"), 0o644)
	if _, err := f.builder(2).Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := f.kinds(); k["a"] != plan.Cached || k["b"] != plan.Finished {
		t.Errorf("after editing b: events %v, want a cached and b built", k)
	}
}

func TestBuildFailureNamesStepAndKeepsLog(t *testing.T) {
	f := newFixture(t, map[string][2]string{
		"a": {"", "echo about to fail; exit 3\n"},
		"b": {"a", "touch /out/b\n"},
	})
	_, err := f.builder(2).Build(context.Background())
	var se *plan.StepError
	if !errors.As(err, &se) || se.Step != "a" {
		t.Fatalf("got %v, want a *plan.StepError for step a", err)
	}
	if log, _ := os.ReadFile(se.Log); !strings.Contains(string(log), "about to fail") || !strings.Contains(string(log), "exit status 3") {
		t.Errorf("log %s = %q, want the script's output and its exit status", se.Log, log)
	}
	if _, ran := f.kinds()["b"]; ran {
		t.Errorf("b ran after its dependency failed: %v", f.kinds())
	}
	if ents, _ := os.ReadDir(filepath.Join(f.store.Dir(), "actions")); len(ents) != 0 {
		t.Errorf("a failed step left action records: %v", ents)
	}
}

func TestBuildCancelKillsSteps(t *testing.T) {
	f := newFixture(t, map[string][2]string{
		"a": {"", "sleep 1000\n"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.builder(1).Build(ctx)
	if err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancel took %s", d)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.store.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("cancelled build left %d entries in the store's tmp/", len(ents))
	}
}
