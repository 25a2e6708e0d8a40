package plan

import (
	"errors"
	"slices"
	"testing"
)

func baseStep() Step {
	return Step{
		ID:   "busybox",
		Deps: []string{"musl", "linux-headers"},
		Inputs: Inputs{
			Recipe:     "make defconfig && make\n",
			Files:      []Input{{Name: "config", Digest: "sha256:c0"}, {Name: "no-tc.patch", Digest: "sha256:p0"}},
			Sources:    []Input{{Name: "busybox", Digest: "sha256:b0"}, {Name: "extra", Digest: "sha256:e0"}},
			Seed:       "sha256:5eed",
			Sandbox:    "cairn-sandbox-v1",
			Env:        []string{"CFLAGS=-O2", "AR=ar"},
			Compressor: "xz test",
		},
	}
}

func baseDeps() map[string]string {
	return map[string]string{"musl": "sha256:m0", "linux-headers": "sha256:h0"}
}

func mustKey(t *testing.T, s Step, deps map[string]string) string {
	t.Helper()
	k, err := s.Key(deps)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyChangesWithEachInput: every input, changed alone, changes the key.
func TestKeyChangesWithEachInput(t *testing.T) {
	base := mustKey(t, baseStep(), baseDeps())
	tests := []struct {
		name   string
		change func(s *Step, deps map[string]string)
	}{
		{"recipe text", func(s *Step, _ map[string]string) { s.Inputs.Recipe += " " }},
		{"file digest", func(s *Step, _ map[string]string) { s.Inputs.Files[0].Digest = "sha256:c1" }},
		{"file name", func(s *Step, _ map[string]string) { s.Inputs.Files[0].Name = "config2" }},
		{"file added", func(s *Step, _ map[string]string) {
			s.Inputs.Files = append(s.Inputs.Files, Input{Name: "x", Digest: "sha256:x"})
		}},
		{"source digest", func(s *Step, _ map[string]string) { s.Inputs.Sources[0].Digest = "sha256:b1" }},
		{"source name", func(s *Step, _ map[string]string) { s.Inputs.Sources[1].Name = "other" }},
		{"source pristine", func(s *Step, _ map[string]string) { s.Inputs.Sources[0].Pristine = "sha256:c0" }},
		{"dependency output", func(_ *Step, d map[string]string) { d["musl"] = "sha256:m1" }},
		{"dependency added", func(s *Step, d map[string]string) { s.Deps = append(s.Deps, "zlib"); d["zlib"] = "sha256:z" }},
		{"seed", func(s *Step, _ map[string]string) { s.Inputs.Seed = "sha256:5eee" }},
		{"sandbox version", func(s *Step, _ map[string]string) { s.Inputs.Sandbox = "cairn-sandbox-v2" }},
		{"env value", func(s *Step, _ map[string]string) { s.Inputs.Env[0] = "CFLAGS=-O3" }},
		{"env added", func(s *Step, _ map[string]string) { s.Inputs.Env = append(s.Inputs.Env, "LC_ALL=C") }},
		{"compressor", func(s *Step, _ map[string]string) { s.Inputs.Compressor = "xz other" }},
		{"seed moved into env", func(s *Step, _ map[string]string) {
			s.Inputs.Seed = ""
			s.Inputs.Env = append(s.Inputs.Env, "X=1\nseed sha256:5eed")
		}},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		s, deps := baseStep(), baseDeps()
		tt.change(&s, deps)
		k := mustKey(t, s, deps)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: key %s, the same as %s's", tt.name, k, prev)
		}
		seen[k] = tt.name
	}
}

// TestKeyIgnoresOrderAndName: the order of lists in the definition, an unused
// dependency output and the step's own ID do not change the key.
func TestKeyIgnoresOrderAndName(t *testing.T) {
	base := mustKey(t, baseStep(), baseDeps())
	tests := []struct {
		name   string
		change func(s *Step, deps map[string]string)
	}{
		{"env order", func(s *Step, _ map[string]string) { slices.Reverse(s.Inputs.Env) }},
		{"source order", func(s *Step, _ map[string]string) { slices.Reverse(s.Inputs.Sources) }},
		{"file order", func(s *Step, _ map[string]string) { slices.Reverse(s.Inputs.Files) }},
		{"dependency order", func(s *Step, _ map[string]string) { slices.Reverse(s.Deps) }},
		{"step renamed", func(s *Step, _ map[string]string) { s.ID = "bb" }},
		{"output of a step not depended on", func(_ *Step, d map[string]string) { d["unrelated"] = "sha256:u" }},
	}
	for _, tt := range tests {
		s, deps := baseStep(), baseDeps()
		tt.change(&s, deps)
		if k := mustKey(t, s, deps); k != base {
			t.Errorf("%s: key %s, want %s", tt.name, k, base)
		}
	}
}

func TestKeyLines(t *testing.T) {
	s := baseStep()
	s.Inputs.Env = append(s.Inputs.Env, "MSG=two words")
	lines, err := s.Lines(baseDeps())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cairn action key v1",
		"recipe sha256:" + sha256Hex(s.Inputs.Recipe),
		"file config sha256:c0",
		"file no-tc.patch sha256:p0",
		"source busybox sha256:b0",
		"source extra sha256:e0",
		"dep linux-headers sha256:h0",
		"dep musl sha256:m0",
		"seed sha256:5eed",
		"sandbox cairn-sandbox-v1",
		"env AR=ar",
		"env CFLAGS=-O2",
		`env "MSG=two words"`,
		"compressor \"xz test\"",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got lines\n%q\nwant\n%q", lines, want)
	}
	if k := mustKey(t, s, baseDeps()); k != KeyOf(want) {
		t.Errorf("Key %s, want KeyOf(lines) %s", k, KeyOf(want))
	}
	// Pinned so that a change of the line format or hashing is a decision
	// (bump keyVersion, update here), not an accident.
	if k, want := KeyOf(want), "sha256:da22df78fcad0a13bc0f6ca2b7698a80770f2658f2618fa4eea68139072f4130"; k != want {
		t.Errorf("KeyOf = %s, want %s", k, want)
	}
}

func TestKeyNeedsDependencyOutputs(t *testing.T) {
	deps := baseDeps()
	delete(deps, "musl")
	s := baseStep()
	if _, err := s.Key(deps); err == nil {
		t.Error("got a key without musl's output, want an error")
	}
}

func TestNewRefusesAmbiguousInputs(t *testing.T) {
	tests := []struct {
		name string
		in   Inputs
	}{
		{"env set twice", Inputs{Env: []string{"A=1", "A=2"}}},
		{"env without =", Inputs{Env: []string{"A"}}},
		{"source twice", Inputs{Sources: []Input{{Name: "a", Digest: "x"}, {Name: "a", Digest: "y"}}}},
		{"file twice", Inputs{Files: []Input{{Name: "p", Digest: "x"}, {Name: "p", Digest: "x"}}}},
	}
	for _, tt := range tests {
		if _, err := New([]Step{{ID: "s", Inputs: tt.in}}); err == nil {
			t.Errorf("%s: got no error, want one", tt.name)
		}
	}
	var ude *UnknownDepError
	if _, err := New([]Step{{ID: "s", Deps: []string{"nope"}}}); !errors.As(err, &ude) || ude.Step != "s" || ude.Dep != "nope" {
		t.Errorf("got %v, want UnknownDepError naming s and nope", err)
	}
}

// A patched source's line names both trees: the patched one the step sees
// and the pristine one its patches start from.
func TestKeyLinesPatchedSource(t *testing.T) {
	s := baseStep()
	s.Inputs.Sources[1].Pristine = "sha256:e1"
	lines, err := s.Lines(baseDeps())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(lines, "source extra sha256:e0 pristine sha256:e1") || !slices.Contains(lines, "source busybox sha256:b0") {
		t.Errorf("got lines\n%q", lines)
	}
}
