package plan

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
)

// shellRunner runs a step's recipe with sh -c, the sandbox's stand-in: $OUT
// is its output directory, $SYNC a directory shared by the steps of a test,
// $DEP_<id> each dependency's output digest. The output digest is the sha256
// of $OUT/result. It records each start and end in order.
type shellRunner struct {
	dir   string
	mu    sync.Mutex
	log   []string // "start ID", "end ID ok", "end ID err"
	store map[string]string
}

func newShellRunner(t *testing.T) *shellRunner {
	testenv.NeedTool(t, "sh")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sync"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &shellRunner{dir: dir, store: map[string]string{}}
}

func (r *shellRunner) record(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *shellRunner) records() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *shellRunner) Lookup(key string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.store[key]
	return o, ok
}

func (r *shellRunner) Run(ctx context.Context, job Job) (Result, error) {
	id := job.Step.ID
	out := filepath.Join(r.dir, "out", id)
	logPath := filepath.Join(r.dir, id+".log")
	res := Result{Log: logPath}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return res, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, "sh", "-c", job.Step.Inputs.Recipe)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "OUT=" + out, "SYNC=" + filepath.Join(r.dir, "sync")}
	for d, o := range job.Deps {
		cmd.Env = append(cmd.Env, "DEP_"+d+"="+o)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// The whole process group goes when the step is cancelled, sleep too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	r.record("start " + id)
	err = cmd.Run()
	if err != nil {
		r.record("end " + id + " err")
		return res, err
	}
	data, err := os.ReadFile(filepath.Join(out, "result"))
	if err != nil {
		r.record("end " + id + " err")
		return res, err
	}
	res.Output = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	r.mu.Lock()
	r.store[job.Key] = res.Output
	r.mu.Unlock()
	r.record("end " + id + " ok")
	return res, nil
}

func shellPlan(t *testing.T, recipes map[string]string, deps map[string][]string) *Plan {
	t.Helper()
	var ss []Step
	for id, rec := range recipes {
		ss = append(ss, Step{ID: id, Deps: deps[id], Inputs: Inputs{Recipe: rec, Sandbox: "test"}})
	}
	p, err := New(ss)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func index(log []string, s string) int { return slices.Index(log, s) }

const sleepy = `sleep 0.3; echo "$0" > "$OUT/result"`

func TestBuildParallel(t *testing.T) {
	r := newShellRunner(t)
	p := shellPlan(t, map[string]string{
		"a": sleepy, "b": sleepy,
		"c": `echo "$DEP_a $DEP_b" > "$OUT/result"`,
	}, map[string][]string{"c": {"a", "b"}})
	res, err := Build(context.Background(), p, r, Jobs(2))
	if err != nil {
		t.Fatal(err)
	}
	log := r.records()
	// Overlap: each of a and b started before the other ended.
	if !(index(log, "start a") < index(log, "end b ok") && index(log, "start b") < index(log, "end a ok")) {
		t.Errorf("a and b did not overlap with -j2: %q", log)
	}
	if index(log, "start c") < index(log, "end a ok") || index(log, "start c") < index(log, "end b ok") {
		t.Errorf("c started before its dependencies ended: %q", log)
	}
	got, _ := os.ReadFile(filepath.Join(r.dir, "out", "c", "result"))
	if want := res["a"].Output + " " + res["b"].Output + "\n"; string(got) != want {
		t.Errorf("c saw dependency outputs %q, want %q", got, want)
	}
}

func TestBuildSerial(t *testing.T) {
	r := newShellRunner(t)
	p := shellPlan(t, map[string]string{"a": sleepy, "b": sleepy, "c": sleepy}, nil)
	if _, err := Build(context.Background(), p, r, Jobs(1)); err != nil {
		t.Fatal(err)
	}
	log := r.records()
	if len(log) != 6 {
		t.Fatalf("got records %q, want 3 starts and 3 ends", log)
	}
	for i := 0; i < len(log); i += 2 {
		id := strings.TrimPrefix(log[i], "start ")
		if log[i+1] != "end "+id+" ok" {
			t.Errorf("with -j1 a step started while another ran: %q", log)
			break
		}
	}
}

// TestBuildFailure: a fails while c runs; c is cancelled, and neither a's
// dependant b nor c's dependant d starts. The error names a and its log.
func TestBuildFailure(t *testing.T) {
	r := newShellRunner(t)
	p := shellPlan(t, map[string]string{
		"a": `while [ ! -e "$SYNC/c" ]; do sleep 0.01; done; echo boom >&2; exit 3`,
		"b": sleepy,
		"c": `touch "$SYNC/c"; sleep 30; echo > "$OUT/result"`,
		"d": sleepy,
	}, map[string][]string{"b": {"a"}, "d": {"c"}})
	var mu sync.Mutex
	var kinds []string
	res, err := Build(context.Background(), p, r, Jobs(2), Events(func(e Event) {
		mu.Lock()
		kinds = append(kinds, e.Kind.String()+" "+e.Step)
		mu.Unlock()
	}))
	var se *StepError
	if !errors.As(err, &se) || se.Step != "a" {
		t.Fatalf("got %v, want a StepError naming a", err)
	}
	if want := filepath.Join(r.dir, "a.log"); se.Log != want {
		t.Errorf("error's log %q, want %q", se.Log, want)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("got %v, want the exit status 3 wrapped", err)
	}
	if data, _ := os.ReadFile(se.Log); !strings.Contains(string(data), "boom") {
		t.Errorf("log %s holds %q, want the step's stderr", se.Log, data)
	}
	log := r.records()
	if !slices.Equal(log, []string{"start a", "start c", "end a err", "end c err"}) &&
		!slices.Equal(log, []string{"start c", "start a", "end a err", "end c err"}) {
		t.Errorf("records %q: want a and c started, a failed, c cancelled, nothing else started", log)
	}
	if len(res) != 0 {
		t.Errorf("results %v, want none", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(kinds, "failed a") || !slices.Contains(kinds, "failed c") {
		t.Errorf("events %q, want a and c failed", kinds)
	}
}

func TestBuildCancel(t *testing.T) {
	r := newShellRunner(t)
	p := shellPlan(t, map[string]string{
		"a": `touch "$SYNC/a"; sleep 30; echo > "$OUT/result"`,
		"b": sleepy,
	}, map[string][]string{"b": {"a"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(r.dir, "sync", "a")); err == nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := Build(ctx, p, r, Jobs(2))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if log := r.records(); !slices.Equal(log, []string{"start a", "end a err"}) {
		t.Errorf("records %q, want a started and stopped, b never started", log)
	}
}

func TestBuildCached(t *testing.T) {
	r := newShellRunner(t)
	recipes := map[string]string{
		"a": `echo a > "$OUT/result"`,
		"b": `echo "b $DEP_a" > "$OUT/result"`,
		"c": `echo "c $DEP_b" > "$OUT/result"`,
	}
	deps := map[string][]string{"b": {"a"}, "c": {"b"}}
	first, err := Build(context.Background(), shellPlan(t, recipes, deps), r, UseCache(r))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.records()); n != 6 {
		t.Fatalf("first build: %d records, want 6", n)
	}

	// Everything cached: nothing runs, the same outputs come back.
	r.log = nil
	var cached []string
	var mu sync.Mutex
	again, err := Build(context.Background(), shellPlan(t, recipes, deps), r, UseCache(r), Events(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == Cached {
			cached = append(cached, e.Step)
		} else {
			t.Errorf("event %v for %s, want only cached", e.Kind, e.Step)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if log := r.records(); len(log) != 0 {
		t.Errorf("cached build ran %q", log)
	}
	slices.Sort(cached)
	if !slices.Equal(cached, []string{"a", "b", "c"}) {
		t.Errorf("cached events for %q, want a, b, c", cached)
	}
	for id := range first {
		if again[id].Output != first[id].Output || !again[id].Cached {
			t.Errorf("%s: got %+v, want cached %s", id, again[id], first[id].Output)
		}
	}

	// b's recipe changes: b runs; its output is the same bytes, so c's key
	// is unchanged and c stays cached.
	r.log = nil
	recipes["b"] = `echo "b $DEP_a" > "$OUT/result"; true`
	if _, err := Build(context.Background(), shellPlan(t, recipes, deps), r, UseCache(r)); err != nil {
		t.Fatal(err)
	}
	if log := r.records(); !slices.Equal(log, []string{"start b", "end b ok"}) {
		t.Errorf("after changing b: records %q, want only b run", log)
	}
}

func TestBuildPanic(t *testing.T) {
	p := shellPlan(t, map[string]string{"x": "", "y": ""}, map[string][]string{"y": {"x"}})
	var failed []string
	_, err := Build(context.Background(), p, RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		panic("recipe bug")
	}), Events(func(e Event) {
		if e.Kind == Failed {
			failed = append(failed, e.Step)
		}
	}), Jobs(1))
	var se *StepError
	var pe *PanicError
	if !errors.As(err, &se) || se.Step != "x" || !errors.As(err, &pe) || pe.Value != "recipe bug" {
		t.Fatalf("got %v, want a StepError for x wrapping the panic", err)
	}
	if !slices.Equal(failed, []string{"x"}) {
		t.Errorf("failed events %q, want x", failed)
	}
}

func TestBuildNeedsOutput(t *testing.T) {
	p := shellPlan(t, map[string]string{"x": ""}, nil)
	_, err := Build(context.Background(), p, RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		return Result{}, nil
	}))
	var se *StepError
	if !errors.As(err, &se) || se.Step != "x" || !errors.Is(err, errNoOutput) {
		t.Errorf("got %v, want x's error for a missing output", err)
	}
}
