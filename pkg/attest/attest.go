// Package attest writes what an auditor reads beside an image: an SBOM
// (SPDX 2.3 JSON, and the same as CycloneDX 1.5) and a provenance
// statement (in-toto Statement v1 with a SLSA provenance v1 predicate), and
// checks a statement against the stack definition it claims to come from.
//
// The documents are pure functions of Inputs: the stack definition and its
// digest, the seed lock, the recipes' files, the image's files and digests,
// the action keys and cairn's version. Nothing comes from the clock, the
// host, the user or map order: the SPDX namespace, the CycloneDX serial
// and the in-toto invocation id are sha256 of the inputs, the timestamps
// are the stack's SOURCE_DATE_EPOCH, every list is sorted, and JSON is
// written from structs (the digest sets are maps, which encoding/json
// writes in key order). The same inputs give the same bytes, so `cairn
// verify` can compare them too.
//
// The SBOMs describe what is in the image and nothing else: the image, its
// files, and each from-source component (the sources of its recipe and of
// every recipe it depends on, transitively) under its upstream identity,
// with the patches applied to it as pedigree. The seed's packages are build
// tools, not contents: they are named only in the provenance, with the
// recipes' files and the pins. A resolved dependency is named by kind and name ("source:musl",
// "seed:dash", "seed-lock", "recipe:musl/build.sh"), which is how Check
// pairs a statement's dependencies with those re-derived from the stack and
// names each one that differs, is missing or is extra.
//
// The formats, the build type URI and what each field holds are in
// docs/attest.md.
package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/rootfs"
	"github.com/cairn-build/cairn/pkg/sandbox"
	"github.com/cairn-build/cairn/pkg/seed"
	"github.com/cairn-build/cairn/pkg/stack"
)

// Inputs is everything both documents are made of. Load fills the part that
// comes from the stack definition; the build adds the image, the targets,
// the action keys and cairn's version.
type Inputs struct {
	CairnVersion string // "dev", "v0.3.1", …

	Stack       *stack.Stack
	StackPath   string // as recorded: give it relative, slash-separated
	StackSHA256 string // hex sha256 of the stack file's bytes

	Seed           *seed.Lock
	SeedLockSHA256 string // hex sha256 of the lock file's bytes

	// RecipeFiles are the files of every recipe of the stack, sorted by
	// recipe then path. Only those of the image's recipes are written.
	RecipeFiles []RecipeFile

	SandboxSpec string // default sandbox.SpecVersion
	Compressor  string // default rootfs.CompressorID

	// Patches are the patches applied to the stack's sources, in the order
	// they are applied. Load fills them from the stack definition; the
	// SHA256 of a Debian patch is known only to the fetch that unpacked
	// the packaging tarball, which fills it where it can.
	Patches []Patch

	Targets    []string    // what the build was asked for; empty: everything
	Image      Image       // the image both documents describe
	ActionKeys []ActionKey // the steps the image was built by
}

// Patch origins.
const (
	PatchDebian = "debian" // from the Debian source package's debian/patches
	PatchLocal  = "local"  // a file beside the stack: cairn's own
)

// Patch is one patch applied to a source, as the SBOMs' pedigree names it.
type Patch struct {
	Source   string   // the source it is applied to
	Name     string   // the series name, or the local file's base name
	Origin   string   // PatchDebian or PatchLocal
	Path     string   // PatchLocal: the file, slash-separated, relative to the stack's directory
	SHA256   string   // hex sha256 of the patch's bytes; "" when not known
	Resolves []string // CVE or GHSA ids, sorted
}

// RecipeFile is one file of a recipe's directory.
type RecipeFile struct {
	Recipe string
	Path   string // slash-separated, inside the recipe's directory
	SHA256 string // hex
	Exec   bool
}

// Image is one built image.
type Image struct {
	Name        string
	Recipe      string
	Tarball     string // file name of the rootfs tarball (no directory)
	Digest      string // "sha256:…" of the tarball's bytes
	DiffID      string // "sha256:…" of the uncompressed tar
	OCIManifest string // "sha256:…" of the OCI manifest, when one was written
	Files       []File // from ReadFiles

	// DockerArchive is the "sha256:…" of NAME.docker.tar, when one was
	// written: a subject of the provenance like the tarball.
	DockerArchive string
}

// ActionKey is one step's action key and the output it produced.
type ActionKey struct {
	Step   string
	Key    string // "sha256:…"
	Output string // "sha256:…"
}

// Load reads the stack definition at file, its seed lock and its recipes'
// files: the inputs a statement must name, re-derived from the definition.
func Load(ctx context.Context, file string) (*Inputs, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("stack definition: %w", err)
	}
	st, err := stack.Parse(file, data)
	if err != nil {
		return nil, err
	}
	lockData, err := st.ReadFile(st.Seed.Lock)
	if err != nil {
		return nil, fmt.Errorf("seed lock: %w", err)
	}
	lock, err := seed.ParseLock(bytes.NewReader(lockData), st.Seed.Lock)
	if err != nil {
		return nil, err
	}
	in := &Inputs{
		Stack:          st,
		StackPath:      filepath.ToSlash(file),
		StackSHA256:    hexSHA256(data),
		Seed:           lock,
		SeedLockSHA256: hexSHA256(lockData),
		SandboxSpec:    sandbox.SpecVersion,
		Compressor:     rootfs.CompressorID,
	}
	for _, r := range st.Recipes {
		files, err := recipeFiles(ctx, r)
		if err != nil {
			return nil, err
		}
		in.RecipeFiles = append(in.RecipeFiles, files...)
	}
	if in.Patches, err = stackPatches(st); err != nil {
		return nil, err
	}
	return in, nil
}

// stackPatches lists every source's patches in the order they are
// applied, with what the stack says of them: the CVEs each resolves and,
// for a local file, the sha256 of its bytes. A Debian series given as
// ["*"] has no names here; the patches named in its resolves are listed.
func stackPatches(st *stack.Stack) ([]Patch, error) {
	var out []Patch
	for _, s := range st.Sources {
		p := s.Patches
		if p == nil {
			continue
		}
		resolves := func(name string) []string {
			ids := append([]string(nil), p.Resolves[name]...)
			sort.Strings(ids)
			return ids
		}
		series := p.Series
		if len(series) == 1 && series[0] == "*" {
			series = nil
			local := map[string]bool{}
			for _, l := range p.Local {
				local[filepath.Base(l)] = true
			}
			for name := range p.Resolves {
				if !local[name] {
					series = append(series, name)
				}
			}
			sort.Strings(series)
		}
		for _, name := range series {
			out = append(out, Patch{Source: s.Name, Name: name, Origin: PatchDebian, Resolves: resolves(name)})
		}
		for _, l := range p.Local {
			data, err := st.ReadFile(l)
			if err != nil {
				return nil, fmt.Errorf("source %s: patch: %w", s.Name, err)
			}
			rel, err := filepath.Rel(st.Dir, l)
			if err != nil {
				return nil, fmt.Errorf("source %s: patch %s: %w", s.Name, l, err)
			}
			name := filepath.Base(l)
			out = append(out, Patch{Source: s.Name, Name: name, Origin: PatchLocal, Path: filepath.ToSlash(rel),
				SHA256: hexSHA256(data), Resolves: resolves(name)})
		}
	}
	return out, nil
}

// SetPatchSHA256 records the sha256 (hex) of a patch's bytes, which the
// SBOMs then carry: the build calls it for each Debian patch its fetch
// unpacked from the packaging tarball. It refuses a patch the stack does
// not apply to source, and a sum that is not 64 lowercase hex digits.
func (in *Inputs) SetPatchSHA256(source, name, sum string) error {
	if !isHex64(sum) {
		return fmt.Errorf("patch %s of %s: sha256 %q is not 64 lowercase hex digits", name, source, sum)
	}
	for i := range in.Patches {
		if p := &in.Patches[i]; p.Source == source && p.Name == name {
			p.SHA256 = sum
			return nil
		}
	}
	return fmt.Errorf("patch %s of %s: the stack applies no such patch", name, source)
}

// SetSeries replaces the Debian patches listed for source with names, in
// the order they apply: a series pinned as ["*"] is known by name only once
// the packaging tarball is read. Each keeps the CVE ids the stack gives it.
func (in *Inputs) SetSeries(source string, names []string) {
	resolves := map[string][]string{}
	var before, local, after []Patch
	for _, p := range in.Patches {
		switch {
		case p.Source == source && p.Origin == PatchDebian:
			resolves[p.Name] = p.Resolves
		case p.Source == source:
			local = append(local, p)
		case len(local) == 0 && len(resolves) == 0:
			before = append(before, p)
		default:
			after = append(after, p)
		}
	}
	out := append([]Patch(nil), before...)
	for _, n := range names {
		out = append(out, Patch{Source: source, Name: n, Origin: PatchDebian, Resolves: resolves[n]})
	}
	out = append(append(out, local...), after...)
	in.Patches = out
}

// patchesOf returns the patches applied to source, in order.
func (in *Inputs) patchesOf(source string) []Patch {
	var out []Patch
	for _, p := range in.Patches {
		if p.Source == source {
			out = append(out, p)
		}
	}
	return out
}

// recipeFiles digests a recipe's directory as the build does for its key.
func recipeFiles(ctx context.Context, r stack.Recipe) ([]RecipeFile, error) {
	m, err := digest.FromDir(ctx, r.Dir)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	var out []RecipeFile
	for _, e := range m {
		if e.Kind == digest.Symlink {
			return nil, fmt.Errorf("recipe %s: %s is a symbolic link; a recipe holds plain files", r.Name, e.Path)
		}
		out = append(out, RecipeFile{Recipe: r.Name, Path: e.Path, SHA256: hex.EncodeToString(e.SHA256[:]), Exec: e.Kind == digest.Exec})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// closure returns the recipes an image's recipe is built from, itself
// included, and the sources they name, both sorted. The recipe is the
// image's, or the stack's image of that name when Image.Recipe is empty.
// With no stack or an unknown recipe it returns every recipe and source:
// better to over-name than to leave a component out.
func (in *Inputs) closure() (recipes []string, sources []stack.Source) {
	st := in.Stack
	if st == nil {
		return nil, nil
	}
	recipe := in.Image.Recipe
	if recipe == "" {
		if img := st.Image(in.Image.Name); img != nil {
			recipe = img.Recipe
		}
	}
	if st.Recipe(recipe) == nil {
		for _, r := range st.Recipes {
			recipes = append(recipes, r.Name)
		}
		return recipes, st.Sources
	}
	seenR, seenS := map[string]bool{}, map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seenR[name] {
			return
		}
		seenR[name] = true
		r := st.Recipe(name)
		if r == nil {
			return
		}
		for _, s := range r.Sources {
			seenS[s] = true
		}
		for _, d := range r.Deps {
			walk(d)
		}
	}
	walk(recipe)
	for _, r := range st.Recipes {
		if seenR[r.Name] {
			recipes = append(recipes, r.Name)
		}
	}
	for _, s := range st.Sources {
		if seenS[s.Name] {
			sources = append(sources, s)
		}
	}
	return recipes, sources
}

func (in *Inputs) sandboxSpec() string {
	if in.SandboxSpec != "" {
		return in.SandboxSpec
	}
	return sandbox.SpecVersion
}

func (in *Inputs) compressor() string {
	if in.Compressor != "" {
		return in.Compressor
	}
	return rootfs.CompressorID
}

func (in *Inputs) epoch() int64 {
	if in.Stack == nil {
		return 0
	}
	return in.Stack.SourceDateEpoch
}

func (in *Inputs) supplier() string {
	if in.Stack == nil {
		return ""
	}
	return in.Stack.Supplier
}

func (in *Inputs) stackName() string {
	if in.Stack == nil {
		return ""
	}
	return in.Stack.Name
}
