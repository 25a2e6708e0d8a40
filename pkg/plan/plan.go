// Package plan turns a stack's steps into a DAG, gives each step an action
// key, and runs the DAG with a bounded number of steps at a time.
//
// An action key is the sha256 of human-readable labelled lines, one input a
// line ("recipe sha256:…", "source musl sha256:…", "dep musl sha256:…",
// "seed …", "sandbox …", "env CFLAGS=-O2", "compressor …"), lists sorted, as
// Go's cmd/go/internal/cache hashes its actions. Step.Lines returns those
// lines, so that a cache miss can be explained by comparing them. A step's own
// ID is not an input: renaming a step does not change what it builds. Its
// dependencies' names are, since each is mounted under /deps/NAME.
//
// A key includes the OUTPUT digests of the step's direct dependencies: their
// content, not their keys, so a dependency rebuilt bit for bit the same does
// not invalidate its dependants. The price is that a key is known only once
// every dependency is built or found in the cache. Build computes keys as the
// DAG is walked; Resolve does the same without running anything, for
// `cairn plan`, and reports which keys are not yet known.
//
// Build runs every step whose dependencies are done, each in its goroutine,
// through a Runner. Caching, the limit on concurrent steps and progress
// events are wrappers round that one interface (Cached, Limit, Observe),
// stacked by Build from its options, as ko stacks its builders. The first
// failure cancels the context: no new step starts, running steps are
// cancelled, and the error names the step and the log its Runner kept. A
// panic in a Runner becomes that step's error.
package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Step is one node of the DAG: one sandboxed run.
type Step struct {
	ID     string   // unique in the plan, e.g. "musl"
	Deps   []string // IDs of the steps whose outputs it needs
	Inputs Inputs   // everything else its key covers
}

// Plan is a validated DAG of steps.
type Plan struct {
	steps map[string]*Step
	order []string // topological; ties broken by ID
	users map[string][]string
}

// CycleError reports a dependency cycle, naming its steps in order; the
// first step is repeated at the end.
type CycleError struct{ Cycle []string }

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Cycle, " -> ")
}

// UnknownDepError reports a dependency on a step the plan does not have.
type UnknownDepError struct{ Step, Dep string }

func (e *UnknownDepError) Error() string {
	return fmt.Sprintf("step %s: depends on unknown step %s", e.Step, e.Dep)
}

// New validates steps (unique, non-empty IDs; known dependencies; no cycle)
// and returns the plan.
func New(steps []Step) (*Plan, error) {
	p := &Plan{steps: map[string]*Step{}, users: map[string][]string{}}
	for i := range steps {
		s := steps[i]
		if s.ID == "" {
			return nil, fmt.Errorf("step %d: empty ID", i+1)
		}
		if _, dup := p.steps[s.ID]; dup {
			return nil, fmt.Errorf("step %s: defined twice", s.ID)
		}
		s.Deps = sortedCopy(s.Deps)
		for j := 1; j < len(s.Deps); j++ {
			if s.Deps[j] == s.Deps[j-1] {
				return nil, fmt.Errorf("step %s: depends on %s twice", s.ID, s.Deps[j])
			}
		}
		if err := checkInputs(&s); err != nil {
			return nil, err
		}
		p.steps[s.ID] = &s
	}
	ids := p.IDs()
	for _, id := range ids {
		for _, d := range p.steps[id].Deps {
			if _, ok := p.steps[d]; !ok {
				return nil, &UnknownDepError{Step: id, Dep: d}
			}
			p.users[d] = append(p.users[d], id)
		}
	}
	if c := findCycle(p, ids); c != nil {
		return nil, &CycleError{Cycle: c}
	}
	p.order = topo(p, ids)
	return p, nil
}

// checkInputs refuses what would make a key ambiguous.
func checkInputs(s *Step) error {
	seen := map[string]bool{}
	for _, e := range s.Inputs.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return fmt.Errorf("step %s: env %q is not KEY=VALUE", s.ID, e)
		}
		if seen[k] {
			return fmt.Errorf("step %s: env %s set twice", s.ID, k)
		}
		seen[k] = true
	}
	for label, list := range map[string][]Input{"source": s.Inputs.Sources, "file": s.Inputs.Files} {
		names := map[string]bool{}
		for _, in := range list {
			if names[in.Name] {
				return fmt.Errorf("step %s: %s %s listed twice", s.ID, label, in.Name)
			}
			names[in.Name] = true
		}
	}
	return nil
}

// findCycle returns one cycle, found by depth-first search from each step in
// ID order so that the same plan always reports the same cycle.
func findCycle(p *Plan, ids []string) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(id string) []string
	visit = func(id string) []string {
		color[id] = grey
		stack = append(stack, id)
		for _, d := range p.steps[id].Deps {
			switch color[d] {
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				return append(append([]string(nil), stack[i:]...), d)
			case white:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return nil
	}
	for _, id := range ids {
		if color[id] == white {
			if c := visit(id); c != nil {
				return c
			}
		}
	}
	return nil
}

// topo orders the steps so that each comes after its dependencies, taking
// the smallest ready ID first.
func topo(p *Plan, ids []string) []string {
	pending := map[string]int{}
	var ready []string
	for _, id := range ids {
		pending[id] = len(p.steps[id].Deps)
		if pending[id] == 0 {
			ready = append(ready, id)
		}
	}
	var order []string
	for len(ready) > 0 {
		sort.Strings(ready)
		id := ready[0]
		ready = ready[1:]
		order = append(order, id)
		for _, u := range p.users[id] {
			if pending[u]--; pending[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	return order
}

// IDs returns the step IDs, sorted.
func (p *Plan) IDs() []string {
	ids := make([]string, 0, len(p.steps))
	for id := range p.steps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Order returns the step IDs in topological order, ties broken by ID.
func (p *Plan) Order() []string { return append([]string(nil), p.order...) }

// Step returns the step with the given ID.
func (p *Plan) Step(id string) (Step, bool) {
	s, ok := p.steps[id]
	if !ok {
		return Step{}, false
	}
	return *s, true
}

// Subset returns the plan of the targets and everything they depend on.
func (p *Plan) Subset(targets ...string) (*Plan, error) {
	keep := map[string]bool{}
	var add func(id string)
	add = func(id string) {
		if keep[id] {
			return
		}
		keep[id] = true
		for _, d := range p.steps[id].Deps {
			add(d)
		}
	}
	for _, t := range targets {
		if _, ok := p.steps[t]; !ok {
			return nil, fmt.Errorf("no step %s in the plan", t)
		}
		add(t)
	}
	var steps []Step
	for _, id := range p.order {
		if keep[id] {
			steps = append(steps, *p.steps[id])
		}
	}
	return New(steps)
}

// Status is what Resolve knows about a step without running anything; its
// JSON form is meant for `cairn plan --json`.
type Status struct {
	ID       string   `json:"id"`
	Deps     []string `json:"deps"`
	KeyKnown bool     `json:"key_known"`        // every dependency's output is known
	Key      string   `json:"key,omitempty"`    // when KeyKnown
	Lines    []string `json:"lines,omitempty"`  // the key's input lines, when KeyKnown
	Cached   bool     `json:"cached"`           // the key is in the cache
	Output   string   `json:"output,omitempty"` // the cached output digest, when Cached
}

// Resolve computes every key it can from the cache alone, in topological
// order: a step's key is known once each dependency is cached.
func Resolve(p *Plan, c Cache) []Status {
	outputs := map[string]string{}
	var out []Status
	for _, id := range p.order {
		s := p.steps[id]
		st := Status{ID: id, Deps: append([]string{}, s.Deps...)}
		if lines, err := s.Lines(outputs); err == nil {
			st.KeyKnown, st.Lines, st.Key = true, lines, KeyOf(lines)
			if c != nil {
				if o, ok := c.Lookup(st.Key); ok {
					st.Cached, st.Output = true, o
					outputs[id] = o
				}
			}
		}
		out = append(out, st)
	}
	return out
}

var errNoOutput = errors.New("runner returned no output digest")
