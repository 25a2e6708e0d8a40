package attest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The strings a statement is recognised by. BuildType names cairn's build:
// what externalParameters and internalParameters hold and how
// resolvedDependencies are named (docs/attest.md). Bump its version when
// their meaning changes.
const (
	StatementType  = "https://in-toto.io/Statement/v1"
	PredicateType  = "https://slsa.dev/provenance/v1"
	BuildType      = "https://cairn.invalid/build/v1"
	BuilderIDStart = "https://cairn.invalid/builder/cairn@"
)

// Statement is an in-toto Statement v1 carrying a SLSA provenance v1
// predicate.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     SLSAProvenance       `json:"predicate"`
}

// ResourceDescriptor is in-toto's: an artifact by name, location and
// digests. Digest maps algorithm (or "cairnTree", "gitCommit", "gitTree")
// to lowercase hex; encoding/json writes its keys sorted.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SLSAProvenance is the SLSA provenance v1 predicate.
type SLSAProvenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built from what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	InternalParameters   InternalParameters   `json:"internalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
}

// ExternalParameters are what the user chose: the stack definition and
// the targets.
type ExternalParameters struct {
	Stack   ResourceDescriptor `json:"stack"`
	Image   string             `json:"image"`
	Targets []string           `json:"targets"`
}

// InternalParameters are cairn's own settings that reach the output.
type InternalParameters struct {
	SandboxSpec     string `json:"sandboxSpec"`
	Compressor      string `json:"compressor"`
	SourceDateEpoch int64  `json:"sourceDateEpoch"`
}

// RunDetails names the builder and the run.
type RunDetails struct {
	Builder    Builder              `json:"builder"`
	Metadata   Metadata             `json:"metadata"`
	Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
}

// Builder is cairn at a version.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata identifies the run. SLSA's startedOn and finishedOn mean when
// the build ran; a reproducible statement cannot say that, so cairn leaves
// them out rather than write the source date into them.
type Metadata struct {
	InvocationID string `json:"invocationId"`
	StartedOn    string `json:"startedOn,omitempty"`
	FinishedOn   string `json:"finishedOn,omitempty"`
}

// Provenance returns the image's provenance statement as JSON.
func Provenance(in *Inputs) ([]byte, error) {
	s, err := NewStatement(in)
	if err != nil {
		return nil, err
	}
	return marshal(s)
}

// NewStatement builds the statement Provenance writes.
func NewStatement(in *Inputs) (*Statement, error) {
	img := in.Image
	if img.Name == "" {
		return nil, fmt.Errorf("provenance: no image name")
	}
	if err := checkDigest("image "+img.Name+" digest", img.Digest); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	sub := ResourceDescriptor{
		Name:   img.Tarball,
		Digest: map[string]string{"sha256": hexOf(img.Digest)},
	}
	if sub.Name == "" {
		sub.Name = img.Name + ".rootfs.tar.xz"
	}
	if img.DiffID != "" {
		if err := checkDigest("image "+img.Name+" diff id", img.DiffID); err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		sub.Annotations = map[string]string{"diffID": img.DiffID}
	}
	subjects := []ResourceDescriptor{sub}
	if img.OCIManifest != "" {
		if err := checkDigest("image "+img.Name+" OCI manifest", img.OCIManifest); err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		subjects = append(subjects, ResourceDescriptor{
			Name:      img.Name + ".oci",
			Digest:    map[string]string{"sha256": hexOf(img.OCIManifest)},
			MediaType: "application/vnd.oci.image.manifest.v1+json",
		})
	}
	if img.DockerArchive != "" {
		if err := checkDigest("image "+img.Name+" docker-archive", img.DockerArchive); err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		subjects = append(subjects, ResourceDescriptor{
			Name:      img.Name + ".docker.tar",
			Digest:    map[string]string{"sha256": hexOf(img.DockerArchive)},
			MediaType: "application/x-tar",
		})
	}
	// The SBOMs are outputs of the build too, and functions of the same
	// inputs: their digests are those of the bytes Write writes.
	for _, sb := range []struct {
		suffix, mediaType string
		fn                func(*Inputs) ([]byte, error)
	}{
		{".spdx.json", "application/spdx+json", SPDX},
		{".cdx.json", "application/vnd.cyclonedx+json", CycloneDX},
	} {
		data, err := sb.fn(in)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, ResourceDescriptor{
			Name:      img.Name + sb.suffix,
			Digest:    map[string]string{"sha256": hexSHA256(data)},
			MediaType: sb.mediaType,
		})
	}

	targets := append([]string{}, in.Targets...) // [] rather than null when empty
	sort.Strings(targets)
	def := BuildDefinition{
		BuildType: BuildType,
		ExternalParameters: ExternalParameters{
			Stack:   ResourceDescriptor{URI: in.StackPath, Digest: map[string]string{"sha256": in.StackSHA256}},
			Image:   img.Name,
			Targets: targets,
		},
		InternalParameters: InternalParameters{
			SandboxSpec:     in.sandboxSpec(),
			Compressor:      in.compressor(),
			SourceDateEpoch: in.epoch(),
		},
		ResolvedDependencies: Dependencies(in),
	}

	// Only the steps the image was built by: its recipes' steps, and any
	// step that is no recipe (the image's own key, "image:NAME").
	recipes, _ := in.closure()
	mine := map[string]bool{}
	for _, r := range recipes {
		mine[r] = true
	}
	var keys []ActionKey
	for _, k := range in.ActionKeys {
		if mine[k.Step] || in.Stack == nil || in.Stack.Recipe(k.Step) == nil {
			keys = append(keys, k)
		}
	}
	var byproducts []ResourceDescriptor
	sort.Slice(keys, func(i, j int) bool { return keys[i].Step < keys[j].Step })
	for _, k := range keys {
		if err := checkDigest("action key of "+k.Step, k.Key); err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		rd := ResourceDescriptor{Name: "action:" + k.Step, Digest: map[string]string{"sha256": hexOf(k.Key)}}
		if k.Output != "" {
			rd.Annotations = map[string]string{"output": k.Output}
		}
		byproducts = append(byproducts, rd)
	}

	// The invocation id is the sha256 of what was built and from what: a
	// rebuild of the same inputs is the same invocation.
	idBody, err := json.Marshal(struct {
		S []ResourceDescriptor
		D BuildDefinition
		B []ResourceDescriptor
	}{subjects, def, byproducts})
	if err != nil {
		return nil, err
	}
	v := versionOr(in.CairnVersion)
	return &Statement{
		Type:          StatementType,
		Subject:       subjects,
		PredicateType: PredicateType,
		Predicate: SLSAProvenance{
			BuildDefinition: def,
			RunDetails: RunDetails{
				Builder:    Builder{ID: BuilderIDStart + v, Version: map[string]string{"cairn": v}},
				Metadata:   Metadata{InvocationID: "sha256:" + hexSHA256(idBody)},
				Byproducts: byproducts,
			},
		},
	}, nil
}

// Dependencies returns the resolved dependencies of in's image, sorted by
// name: its sources and their patches, the seed lock and its packages, and
// its recipes' files. Only what the stack definition pins is named, so
// that Check can re-derive every one.
func Dependencies(in *Inputs) []ResourceDescriptor {
	recipes, sources := in.closure()
	var out []ResourceDescriptor
	for _, s := range sources {
		if p := s.Patches; p != nil && p.DebianTarSHA256 != "" {
			name, version := s.DebianPackage()
			out = append(out, ResourceDescriptor{
				Name:        "patches:" + s.Name,
				URI:         "pkg:deb/debian/" + purlEscape(name, "") + "@" + purlEscape(version, ":") + "?arch=source",
				Digest:      map[string]string{"sha256": p.DebianTarSHA256},
				Annotations: map[string]string{"series": strings.Join(p.Series, " ")},
			})
		}
		for _, p := range in.patchesOf(s.Name) {
			if p.Origin == PatchLocal && p.SHA256 != "" {
				out = append(out, ResourceDescriptor{
					Name:   "patch:" + s.Name + "/" + p.Name,
					URI:    p.Path,
					Digest: map[string]string{"sha256": p.SHA256},
				})
			}
		}
		d := map[string]string{"cairnTree": hexOf(s.Pin.Tree)}
		if s.Patches != nil && s.Patches.Tree != "" {
			d["cairnPatchedTree"] = hexOf(s.Patches.Tree)
		}
		if s.Pin.ArchiveSHA256 != "" {
			d["sha256"] = s.Pin.ArchiveSHA256
		}
		if s.Pin.GitCommit != "" {
			d["gitCommit"] = s.Pin.GitCommit
		}
		if s.Pin.GitTree != "" {
			d["gitTree"] = s.Pin.GitTree
		}
		rd := ResourceDescriptor{Name: "source:" + s.Name, Digest: d}
		switch {
		case len(s.Archives) > 0:
			rd.URI = s.Archives[0]
		case s.Git != "":
			rd.URI = "git+" + s.Git
		}
		if s.Version != "" {
			rd.Annotations = map[string]string{"version": s.Version}
		}
		out = append(out, rd)
	}
	if in.Seed != nil {
		if in.SeedLockSHA256 != "" {
			out = append(out, ResourceDescriptor{Name: "seed-lock", Digest: map[string]string{"sha256": in.SeedLockSHA256}})
		}
		for _, p := range in.Seed.Packages {
			out = append(out, ResourceDescriptor{
				Name:   "seed:" + p.Name,
				URI:    debPURL(p.Name, p.Version, p.Arch),
				Digest: map[string]string{"sha256": p.SHA256},
			})
		}
	}
	want := map[string]bool{}
	for _, r := range recipes {
		want[r] = true
	}
	for _, f := range in.RecipeFiles {
		if !want[f.Recipe] {
			continue
		}
		mode := "0644"
		if f.Exec {
			mode = "0755"
		}
		out = append(out, ResourceDescriptor{
			Name:        "recipe:" + f.Recipe + "/" + f.Path,
			Digest:      map[string]string{"sha256": f.SHA256},
			Annotations: map[string]string{"mode": mode},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
