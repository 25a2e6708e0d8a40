package plan

import (
	"errors"
	"slices"
	"testing"
)

func steps(deps map[string][]string) []Step {
	var out []Step
	for id, d := range deps {
		out = append(out, Step{ID: id, Deps: d, Inputs: Inputs{Recipe: "echo " + id}})
	}
	return out
}

func TestCycle(t *testing.T) {
	tests := []struct {
		name  string
		deps  map[string][]string
		cycle []string
	}{
		{"self", map[string][]string{"a": {"a"}}, []string{"a", "a"}},
		{"three", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": nil}, []string{"a", "b", "c", "a"}},
		{"behind a root", map[string][]string{"top": {"x"}, "x": {"y"}, "y": {"x"}}, []string{"x", "y", "x"}},
	}
	for _, tt := range tests {
		_, err := New(steps(tt.deps))
		var ce *CycleError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want a CycleError", tt.name, err)
			continue
		}
		if !slices.Equal(ce.Cycle, tt.cycle) {
			t.Errorf("%s: cycle %q, want %q", tt.name, ce.Cycle, tt.cycle)
		}
	}
}

func TestOrderAndSubset(t *testing.T) {
	p, err := New(steps(map[string][]string{
		"images": {"busybox", "tinydns"}, "busybox": {"musl"}, "tinydns": {"musl"}, "musl": nil, "other": nil,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Order(), []string{"musl", "busybox", "other", "tinydns", "images"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	sub, err := p.Subset("tinydns")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sub.Order(), []string{"musl", "tinydns"}; !slices.Equal(got, want) {
		t.Errorf("subset order %q, want %q", got, want)
	}
	if _, err := p.Subset("nope"); err == nil {
		t.Error("subset of an unknown step: got no error, want one")
	}
	if _, err := New([]Step{{ID: "a"}, {ID: "a"}}); err == nil {
		t.Error("duplicate ID: got no error, want one")
	}
}

type memCache struct{ m map[string]string }

func (c *memCache) Lookup(key string) (string, bool) { o, ok := c.m[key]; return o, ok }

func TestResolve(t *testing.T) {
	p, err := New(steps(map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}}))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Step("a")
	ka, _ := a.Key(nil)
	b, _ := p.Step("b")
	kb, _ := b.Key(map[string]string{"a": "sha256:aa"})
	st := Resolve(p, &memCache{m: map[string]string{ka: "sha256:aa"}})
	type row struct {
		id           string
		known, cache bool
		key          string
	}
	var got []row
	for _, s := range st {
		got = append(got, row{s.ID, s.KeyKnown, s.Cached, s.Key})
	}
	// a is cached, so b's key is known (not cached); c's depends on b's output.
	want := []row{{"a", true, true, ka}, {"b", true, false, kb}, {"c", false, false, ""}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
