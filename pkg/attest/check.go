package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// ErrStatement marks a statement Check cannot read: not JSON, not an
// in-toto Statement v1, not SLSA provenance v1, or not of cairn's build
// type.
var ErrStatement = errors.New("not a cairn provenance statement")

// Mismatch is one input on which a statement and the stack definition
// disagree.
type Mismatch struct {
	Input string `json:"input"` // "stack", "source:musl", "seed:dash", "recipe:musl/build.sh", "internal:compressor", …
	Field string `json:"field"` // the digest or annotation that differs; "" when the input is missing or extra
	Want  string `json:"want"`  // re-derived from the stack definition; "" when only the statement has the input
	Got   string `json:"got"`   // in the statement; "" when the statement lacks the input
}

func (m Mismatch) String() string {
	switch {
	case m.Field == "" && m.Got == "":
		return m.Input + ": missing from the statement"
	case m.Field == "" && m.Want == "":
		return m.Input + ": in the statement but not in the stack definition"
	}
	return fmt.Sprintf("%s: %s is %q in the statement, want %q", m.Input, m.Field, m.Got, m.Want)
}

// ParseStatement reads a provenance statement written by Provenance.
func ParseStatement(data []byte) (*Statement, error) {
	var s Statement
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the statement", ErrStatement)
	}
	for _, c := range []struct{ field, got, want string }{
		{"_type", s.Type, StatementType},
		{"predicateType", s.PredicateType, PredicateType},
		{"predicate.buildDefinition.buildType", s.Predicate.BuildDefinition.BuildType, BuildType},
	} {
		if c.got != c.want {
			return nil, fmt.Errorf("%w: %s is %q, want %q", ErrStatement, c.field, c.got, c.want)
		}
	}
	if s.Predicate.BuildDefinition.ExternalParameters.Image == "" {
		return nil, fmt.Errorf("%w: predicate.buildDefinition.externalParameters.image is empty", ErrStatement)
	}
	return &s, nil
}

// Check compares a statement's inputs with those re-derived from the stack
// definition (in, from Load) for the image the statement names, and
// returns every difference, sorted by input. The outputs (the subject and
// the action keys) are not re-derived: that takes a rebuild, which is
// `cairn verify`'s work.
func Check(statement []byte, in *Inputs) ([]Mismatch, error) {
	s, err := ParseStatement(statement)
	if err != nil {
		return nil, err
	}
	def := s.Predicate.BuildDefinition
	name := def.ExternalParameters.Image
	var out []Mismatch
	add := func(input, field, want, got string) {
		if want != got {
			out = append(out, Mismatch{Input: input, Field: field, Want: want, Got: got})
		}
	}

	add("stack", "sha256", in.StackSHA256, def.ExternalParameters.Stack.Digest["sha256"])
	add("internal:sandboxSpec", "value", in.sandboxSpec(), def.InternalParameters.SandboxSpec)
	add("internal:compressor", "value", in.compressor(), def.InternalParameters.Compressor)
	add("internal:sourceDateEpoch", "value", strconv.FormatInt(in.epoch(), 10), strconv.FormatInt(def.InternalParameters.SourceDateEpoch, 10))

	derived := *in
	derived.Image = Image{Name: name}
	if in.Stack != nil {
		img := in.Stack.Image(name)
		if img == nil {
			out = append(out, Mismatch{Input: "image:" + name, Got: name})
			return sortMismatches(out), nil
		}
		derived.Image.Recipe = img.Recipe
	}
	want := map[string]ResourceDescriptor{}
	for _, d := range Dependencies(&derived) {
		want[d.Name] = d
	}
	seen := map[string]bool{}
	for _, got := range def.ResolvedDependencies {
		if seen[got.Name] {
			out = append(out, Mismatch{Input: got.Name, Field: "name", Want: "listed once", Got: "listed twice"})
			continue
		}
		seen[got.Name] = true
		w, ok := want[got.Name]
		if !ok {
			out = append(out, Mismatch{Input: got.Name, Got: got.Name})
			continue
		}
		add(got.Name, "uri", w.URI, got.URI)
		for _, k := range unionKeys(w.Digest, got.Digest) {
			add(got.Name, "digest."+k, w.Digest[k], got.Digest[k])
		}
		for _, k := range unionKeys(w.Annotations, got.Annotations) {
			add(got.Name, "annotations."+k, w.Annotations[k], got.Annotations[k])
		}
	}
	for n := range want {
		if !seen[n] {
			out = append(out, Mismatch{Input: n, Want: n})
		}
	}
	return sortMismatches(out), nil
}

func unionKeys(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func sortMismatches(ms []Mismatch) []Mismatch {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Input != ms[j].Input {
			return ms[i].Input < ms[j].Input
		}
		return ms[i].Field < ms[j].Field
	})
	return ms
}
