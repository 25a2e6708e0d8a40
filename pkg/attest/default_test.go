package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/cairn-build/cairn/internal/sbomcheck"
)

// The default stack loads, and each of its images' documents names the
// sources its recipes use (musl in every one) and every locked package.
func TestDefaultStack(t *testing.T) {
	in, err := Load(context.Background(), "../../toolchain/stack.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Stack.Images) == 0 || len(in.Seed.Packages) < 10 {
		t.Fatalf("default stack: %d images, %d seed packages", len(in.Stack.Images), len(in.Seed.Packages))
	}
	dir := t.TempDir()
	for _, img := range in.Stack.Images {
		t.Run(img.Name, func(t *testing.T) {
			in := *in
			in.Image = Image{Name: img.Name, Recipe: img.Recipe, Digest: "sha256:" + strings.Repeat("0", 64)}
			w, err := Write(&in, dir)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(w.SBOM)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := spdxjson.Read(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if err := spdxlib.ValidateDocument(parsed); err != nil {
				t.Errorf("spdxlib.ValidateDocument: %v", err)
			}
			var doc struct {
				Packages []struct {
					SPDXID   string
					Supplier string
				}
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for _, p := range doc.Packages {
				ids[p.SPDXID] = true
				// Every package has a supplier: an NTIA minimum element.
				if p.Supplier == "" || p.Supplier == "NOASSERTION" {
					t.Errorf("%s: package %s has no supplier", filepath.Base(w.SBOM), p.SPDXID)
				}
			}
			_, sources := in.closure()
			want := []string{"SPDXRef-Package-musl"}
			for _, s := range sources {
				want = append(want, "SPDXRef-Package-"+spdxIDPart(s.Name))
			}
			for _, id := range want {
				if !ids[id] {
					t.Errorf("%s: no package %s", filepath.Base(w.SBOM), id)
				}
			}
			if len(doc.Packages) != 1+len(sources) {
				t.Errorf("got %d packages, want %d: the image and its components", len(doc.Packages), 1+len(sources))
			}
			stmt, err := os.ReadFile(w.Provenance)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := Check(stmt, &in)
			if err != nil || len(ms) != 0 {
				t.Errorf("check of its own statement: %v, %v", ms, err)
			}
		})
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The default stack as it is, with the Debian security patches it pins:
// each image's SBOMs pass the pinned schemas and carry, for musl and
// djbdns, every CVE the stack says a patch resolves, and no Debian purl.
func TestDefaultStackPatched(t *testing.T) {
	cdxSchema, spdxSchema := sbomcheck.Schemas(t)
	file := filepath.Join("..", "..", "toolchain", "stack.toml")
	in, err := Load(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"busybox": "busybox: ; musl: CVE-2025-26519 CVE-2025-26519 CVE-2026-40200 CVE-2026-6042",
		"tinydns": "djbdns: CVE-2009-0858 CVE-2012-1191; musl: CVE-2025-26519 CVE-2025-26519 CVE-2026-40200 CVE-2026-6042",
	}
	for _, img := range in.Stack.Images {
		in := *in
		in.Image = Image{Name: img.Name, Recipe: img.Recipe, Digest: "sha256:" + strings.Repeat("0", 64)}
		spdxData, err := SPDX(&in)
		if err != nil {
			t.Fatal(err)
		}
		cdxData, err := CycloneDX(&in)
		if err != nil {
			t.Fatal(err)
		}
		if err := sbomcheck.ValidateJSON(spdxSchema, spdxData); err != nil {
			t.Errorf("%s: SPDX 2.3 schema: %v", img.Name, err)
		}
		if err := sbomcheck.ValidateJSON(cdxSchema, cdxData); err != nil {
			t.Errorf("%s: CycloneDX 1.5 schema: %v", img.Name, err)
		}
		if bytes.Contains(spdxData, []byte("pkg:deb/")) || bytes.Contains(cdxData, []byte("pkg:deb/")) {
			t.Errorf("%s: an SBOM names a Debian package", img.Name)
		}
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(bytes.NewReader(cdxData), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range *bom.Components {
			if c.Type == cdx.ComponentTypeFile {
				continue
			}
			var ids []string
			if c.Pedigree != nil {
				for _, p := range *c.Pedigree.Patches {
					if p.Resolves != nil {
						for _, r := range *p.Resolves {
							ids = append(ids, r.ID)
						}
					}
				}
			}
			sort.Strings(ids)
			got = append(got, c.Name+": "+strings.Join(ids, " "))
		}
		if g := strings.Join(got, "; "); g != want[img.Name] {
			t.Errorf("%s: pedigree:\ngot  %s\nwant %s", img.Name, g, want[img.Name])
		}
		// SPDX carries the same, one annotation per patch: musl's four, and
		// djbdns's two Debian fixes and five local patches.
		if n := bytes.Count(spdxData, []byte(`"comment": "patch-applied `)); n != map[string]int{"busybox": 4, "tinydns": 11}[img.Name] {
			t.Errorf("%s.spdx.json: %d patch annotations", img.Name, n)
		}
	}
}
