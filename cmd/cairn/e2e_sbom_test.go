package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/cairn-build/cairn/internal/sbomcheck"
	"github.com/cairn-build/cairn/pkg/attest"
	"github.com/cairn-build/cairn/pkg/stack"
)

// e2eComponents is what each image of the default stack is built from:
// what its SBOMs must list, and all they may list.
var e2eComponents = map[string][]string{
	"busybox": {"busybox", "musl"},
	"tinydns": {"djbdns", "musl"},
}

// checkSBOMs reads the documents a real build wrote beside each image with
// their real consumers: the pinned schemas, syft, cyclonedx-go and
// in-toto's statement as cairn parses it. images maps each image to the
// build's "DIGEST oci MANIFEST".
func checkSBOMs(t *testing.T, repo, out string, images map[string]string) {
	st, err := stack.Load(filepath.Join(repo, "toolchain", "stack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cdxSchema, spdxSchema := sbomcheck.Schemas(t)
	syft := sbomcheck.Syft(t)
	for name, line := range images {
		comps, ok := e2eComponents[name]
		if !ok {
			t.Errorf("image %s: no expected components (add it to e2eComponents)", name)
			continue
		}
		var want []string
		for _, c := range comps {
			src := st.Source(c)
			if src == nil {
				t.Fatalf("image %s: the stack has no source %s", name, c)
			}
			want = append(want, c+" "+src.Version)
		}
		sort.Strings(want)

		read := func(suffix string) []byte {
			data, err := os.ReadFile(filepath.Join(out, name+suffix))
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
		spdxData, cdxData := read(".spdx.json"), read(".cdx.json")
		if err := sbomcheck.ValidateJSON(spdxSchema, spdxData); err != nil {
			t.Errorf("%s.spdx.json: SPDX 2.3 schema: %v", name, err)
		}
		if err := sbomcheck.ValidateJSON(cdxSchema, cdxData); err != nil {
			t.Errorf("%s.cdx.json: CycloneDX 1.5 schema: %v", name, err)
		}
		for _, data := range [][]byte{spdxData, cdxData} {
			if bytes.Contains(data, []byte("pkg:deb/")) {
				t.Errorf("image %s: an SBOM names a Debian package", name)
			}
		}
		for _, suffix := range []string{".spdx.json", ".cdx.json"} {
			pkgs, table := sbomcheck.SyftPackages(t, syft, filepath.Join(out, name+suffix))
			t.Logf("syft convert %s%s -o table:\n%s", name, suffix, table)
			var got []string
			for _, p := range pkgs {
				f := strings.Fields(p)
				got = append(got, f[0]+" "+f[1])
				if len(f) < 3 || !strings.HasPrefix(f[2], "pkg:generic/") && !strings.HasPrefix(f[2], "pkg:github/") {
					t.Errorf("%s%s: syft reads %q: want an upstream purl", name, suffix, p)
				}
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("%s%s: syft reads %q, want exactly %q", name, suffix, got, want)
			}
		}

		// Every patch the stack applies is in the pedigree, with its CVEs.
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(bytes.NewReader(cdxData), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatal(err)
		}
		for _, c := range *bom.Components {
			src := st.Source(c.Name)
			if c.Type == cdx.ComponentTypeFile || src == nil {
				continue
			}
			if c.Supplier == nil || c.Supplier.Name == "" {
				t.Errorf("%s.cdx.json: %s has no supplier", name, c.Name)
			}
			var wantCVEs, gotCVEs []string
			if src.Patches != nil {
				for _, ids := range src.Patches.Resolves {
					wantCVEs = append(wantCVEs, ids...)
				}
			}
			if c.Pedigree != nil && c.Pedigree.Patches != nil {
				for _, p := range *c.Pedigree.Patches {
					if p.Resolves != nil {
						for _, r := range *p.Resolves {
							gotCVEs = append(gotCVEs, r.ID)
						}
					}
				}
			}
			sort.Strings(wantCVEs)
			sort.Strings(gotCVEs)
			if strings.Join(gotCVEs, " ") != strings.Join(wantCVEs, " ") {
				t.Errorf("%s.cdx.json: %s's pedigree resolves %q, the stack says %q", name, c.Name, gotCVEs, wantCVEs)
			}
		}

		// The provenance: every file written for the image is a subject,
		// with its digest; no times; the seed's packages with canonical
		// purls among the resolved dependencies.
		stmt, err := attest.ParseStatement(read(".provenance.json"))
		if err != nil {
			t.Fatal(err)
		}
		subjects := map[string]string{}
		for _, s := range stmt.Subject {
			subjects[s.Name] = s.Digest["sha256"]
		}
		tarballs, _ := filepath.Glob(filepath.Join(out, name+".rootfs.sha256-*.tar.xz"))
		if len(tarballs) != 1 {
			t.Fatalf("image %s: tarballs %v", name, tarballs)
		}
		for _, f := range []string{filepath.Base(tarballs[0]), name + ".docker.tar", name + ".spdx.json", name + ".cdx.json"} {
			data, err := os.ReadFile(filepath.Join(out, f))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if subjects[f] != hex.EncodeToString(sum[:]) {
				t.Errorf("%s.provenance.json: subject %s is %q, the file's sha256 is %x", name, f, subjects[f], sum)
			}
		}
		if _, manifest, _ := strings.Cut(line, " oci sha256:"); subjects[name+".oci"] != manifest {
			t.Errorf("%s.provenance.json: subject %s.oci is %q, the build printed %q", name, name, subjects[name+".oci"], manifest)
		}
		if len(subjects) != 5 {
			t.Errorf("%s.provenance.json: subjects %v, want the 5 files written for the image", name, subjects)
		}
		if md := stmt.Predicate.RunDetails.Metadata; md.StartedOn != "" || md.FinishedOn != "" {
			t.Errorf("%s.provenance.json: startedOn %q, finishedOn %q: want none", name, md.StartedOn, md.FinishedOn)
		}
		seeds := 0
		for _, d := range stmt.Predicate.BuildDefinition.ResolvedDependencies {
			if strings.HasPrefix(d.Name, "seed:") {
				seeds++
				if !strings.HasPrefix(d.URI, "pkg:deb/debian/") || !strings.HasSuffix(d.URI, "&distro=debian-12") || strings.Contains(d.URI, "%3A") {
					t.Errorf("%s.provenance.json: %s: purl %q", name, d.Name, d.URI)
				}
			}
		}
		if seeds < 10 {
			t.Errorf("%s.provenance.json: %d seed packages among the resolved dependencies", name, seeds)
		}
	}
}
