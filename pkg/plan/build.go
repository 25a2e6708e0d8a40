package plan

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Job is one step to run, with its key and its dependencies' outputs.
type Job struct {
	Step Step
	Key  string
	Deps map[string]string // dependency ID → output digest
}

// Result is what running (or finding) a step produced.
type Result struct {
	Output string // digest of the step's output
	Log    string // path of the step's log, kept on failure too
	Cached bool   // found in the cache, not run
}

// Runner runs one step. On failure it returns the Result with Log set if it
// kept a log. It must stop promptly when ctx is cancelled.
type Runner interface {
	Run(ctx context.Context, job Job) (Result, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, job Job) (Result, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, job Job) (Result, error) { return f(ctx, job) }

// Cache answers whether a key was built, and to what output.
type Cache interface {
	Lookup(key string) (output string, ok bool)
}

// StepError is the failure of one step.
type StepError struct {
	Step string
	Log  string // the step's log, if its runner kept one
	Err  error
}

func (e *StepError) Error() string {
	if e.Log != "" {
		return fmt.Sprintf("step %s: %v (log: %s)", e.Step, e.Err, e.Log)
	}
	return fmt.Sprintf("step %s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// PanicError is a panic recovered from a Runner.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// EventKind says what happened to a step.
type EventKind int

const (
	Started  EventKind = iota // the runner began the step
	Cached                    // the key was in the cache; not run
	Finished                  // the runner succeeded
	Failed                    // the runner failed (or was cancelled)
)

func (k EventKind) String() string {
	switch k {
	case Started:
		return "started"
	case Cached:
		return "cached"
	case Finished:
		return "finished"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is progress of one step, for the CLI to render. Elapsed is the time
// the runner took (zero for Started and Cached). Events of different steps
// may arrive from different goroutines at once.
type Event struct {
	Kind    EventKind
	Step    string
	Key     string
	Elapsed time.Duration
	Result  Result
	Err     error
}

// WithCache wraps r so that a job whose key is in c is not run: the cached
// output is returned with Cached set.
func WithCache(r Runner, c Cache) Runner {
	return RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		if out, ok := c.Lookup(job.Key); ok {
			return Result{Output: out, Cached: true}, nil
		}
		return r.Run(ctx, job)
	})
}

// Limit wraps r so that at most n jobs run at once; a job waiting for a slot
// gives up when ctx is cancelled and does not start.
func Limit(r Runner, n int) Runner {
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	return RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return Result{}, context.Cause(ctx)
		}
		defer func() { <-sem }()
		// Both cases may have been ready: never start after cancellation.
		if err := ctx.Err(); err != nil {
			return Result{}, context.Cause(ctx)
		}
		return r.Run(ctx, job)
	})
}

// Observe wraps r to report Started before and Finished or Failed after each
// run, with the time it took. Put it inside Limit, so that Started means
// running rather than waiting for a slot.
func Observe(r Runner, fn func(Event)) Runner {
	return RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		fn(Event{Kind: Started, Step: job.Step.ID, Key: job.Key})
		t0 := time.Now()
		res, err := r.Run(ctx, job)
		ev := Event{Kind: Finished, Step: job.Step.ID, Key: job.Key, Elapsed: time.Since(t0), Result: res}
		if err != nil {
			ev.Kind, ev.Err = Failed, err
		}
		fn(ev)
		return res, err
	})
}

// recovering turns a panic in r into an error, innermost, so that Observe
// reports the step as failed.
func recovering(r Runner) Runner {
	return RunnerFunc(func(ctx context.Context, job Job) (res Result, err error) {
		defer func() {
			if v := recover(); v != nil {
				res, err = Result{}, &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		return r.Run(ctx, job)
	})
}

// BuildOption configures Build.
type BuildOption func(*buildConfig)

type buildConfig struct {
	jobs   int
	cache  Cache
	events func(Event)
}

// Jobs sets how many steps run at once; n < 1 means runtime.NumCPU(), the default.
func Jobs(n int) BuildOption { return func(c *buildConfig) { c.jobs = n } }

// UseCache skips steps whose key c has.
func UseCache(c Cache) BuildOption { return func(c2 *buildConfig) { c2.cache = c } }

// Events sends progress to fn, which must be safe for concurrent use and
// should return quickly.
func Events(fn func(Event)) BuildOption { return func(c *buildConfig) { c.events = fn } }

// Build runs the plan: every step after its dependencies, up to Jobs at once,
// skipping cached ones. It returns the results of the steps that completed
// (cached or run) and, on failure, the first step's *StepError; when ctx is
// cancelled, an error that wraps its cause (errors.Is context.Canceled).
func Build(ctx context.Context, p *Plan, r Runner, opts ...BuildOption) (map[string]Result, error) {
	cfg := buildConfig{jobs: runtime.NumCPU()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.jobs < 1 {
		cfg.jobs = runtime.NumCPU()
	}
	r = recovering(r)
	if cfg.events != nil {
		r = Observe(r, cfg.events)
	}
	r = Limit(r, cfg.jobs)
	if cfg.cache != nil {
		r = WithCache(r, cfg.cache)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type done struct {
		id  string
		res Result
		err error
	}
	doneCh := make(chan done, len(p.order))
	pending := map[string]int{}
	for _, id := range p.order {
		pending[id] = len(p.steps[id].Deps)
	}
	results := map[string]Result{}
	running := 0
	var wg sync.WaitGroup
	var firstErr error

	start := func(id string) {
		s := *p.steps[id]
		deps := make(map[string]string, len(s.Deps))
		for _, d := range s.Deps {
			deps[d] = results[d].Output
		}
		running++
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := runOne(ctx, r, s, deps, cfg.events)
			doneCh <- done{id, res, err}
		}()
	}
	for _, id := range p.order {
		if pending[id] == 0 {
			start(id)
		}
	}
	for running > 0 {
		d := <-doneCh
		running--
		if d.err != nil {
			if firstErr == nil && ctx.Err() == nil {
				firstErr = d.err
				cancel(d.err)
			}
			continue
		}
		results[d.id] = d.res
		if ctx.Err() != nil {
			continue
		}
		for _, u := range p.users[d.id] {
			if pending[u]--; pending[u] == 0 {
				start(u)
			}
		}
	}
	wg.Wait()
	if firstErr != nil {
		return results, firstErr
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("build interrupted: %w", context.Cause(ctx))
	}
	return results, nil
}

// runOne computes the step's key from its dependencies' outputs and runs it,
// turning a panic or an empty output into the step's error.
func runOne(ctx context.Context, r Runner, s Step, deps map[string]string, events func(Event)) (res Result, err error) {
	key, err := s.Key(deps)
	if err != nil {
		return Result{}, &StepError{Step: s.ID, Err: err}
	}
	defer func() {
		if v := recover(); v != nil {
			res, err = Result{}, &StepError{Step: s.ID, Err: &PanicError{Value: v, Stack: debug.Stack()}}
		}
	}()
	t0 := time.Now()
	res, err = r.Run(ctx, Job{Step: s, Key: key, Deps: deps})
	if err == nil && res.Output == "" {
		err = errNoOutput
	}
	if err != nil {
		var se *StepError
		if !errors.As(err, &se) {
			err = &StepError{Step: s.ID, Log: res.Log, Err: err}
		}
		return res, err
	}
	if res.Cached && events != nil {
		events(Event{Kind: Cached, Step: s.ID, Key: key, Elapsed: time.Since(t0), Result: res})
	}
	return res, nil
}
