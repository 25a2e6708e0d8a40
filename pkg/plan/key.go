package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// keyVersion is the first line of every key's input: bump it when the lines
// change meaning, so that old cache entries stop matching.
const keyVersion = "cairn action key v1"

// Inputs are everything that can change a step's output, except its
// dependencies' outputs, which are known only once they are built.
type Inputs struct {
	Recipe     string   // the recipe's text, hashed into the key
	Files      []Input  // the recipe's configuration files and patches, by name
	Sources    []Input  // pinned sources by name (tree digests: patched, with the pristine one beside)
	Seed       string   // the seed's tree digest
	Sandbox    string   // the sandbox spec version, e.g. "cairn-sandbox-v1"
	Env        []string // declared environment, KEY=VALUE
	Compressor string   // the rootfs compressor's ID, for steps that write tarballs
}

// Input is one named, digested input.
type Input struct {
	Name   string
	Digest string
	// Pristine is, for a patched source, the digest of the tree before its
	// patches (Digest is the patched tree the step sees): both are on the
	// key line, so that an explanation shows what the patches start from.
	Pristine string
}

// Lines returns the labelled lines the action key hashes, one input a line,
// in a fixed order with lists sorted: the explanation of a key, and of a
// cache miss when two keys' lines are compared. deps maps each direct
// dependency's ID to its output digest; every one of step's deps must be in it.
func (s *Step) Lines(deps map[string]string) ([]string, error) {
	in := &s.Inputs
	lines := []string{keyVersion, "recipe sha256:" + sha256Hex(in.Recipe)}
	add := func(label string, fields ...string) {
		for i, f := range fields {
			fields[i] = quote(f)
		}
		lines = append(lines, label+" "+strings.Join(fields, " "))
	}
	for _, f := range sortedInputs(in.Files) {
		add("file", f.Name, f.Digest)
	}
	for _, src := range sortedInputs(in.Sources) {
		if src.Pristine != "" {
			add("source", src.Name, src.Digest, "pristine", src.Pristine)
			continue
		}
		add("source", src.Name, src.Digest)
	}
	for _, d := range sortedCopy(s.Deps) {
		out, ok := deps[d]
		if !ok {
			return nil, fmt.Errorf("step %s: output of dependency %s not known", s.ID, d)
		}
		add("dep", d, out)
	}
	if in.Seed != "" {
		add("seed", in.Seed)
	}
	if in.Sandbox != "" {
		add("sandbox", in.Sandbox)
	}
	for _, e := range sortedCopy(in.Env) {
		add("env", e)
	}
	if in.Compressor != "" {
		add("compressor", in.Compressor)
	}
	return lines, nil
}

// Key returns the action key, "sha256:…" of Lines joined by newlines.
func (s *Step) Key(deps map[string]string) (string, error) {
	lines, err := s.Lines(deps)
	if err != nil {
		return "", err
	}
	return KeyOf(lines), nil
}

// KeyOf hashes key lines as Key does.
func KeyOf(lines []string) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// quote keeps one input one field on one line: a value with a space, a
// control byte or a leading quote is written Go-quoted, so no value can
// forge another line or shift its neighbour.
func quote(s string) string {
	if s == "" || strings.HasPrefix(s, `"`) || strings.IndexFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || !strconv.IsPrint(r)
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func sortedInputs(in []Input) []Input {
	out := append([]Input(nil), in...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Digest < out[j].Digest
	})
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
