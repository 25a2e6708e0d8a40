package attest

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

func TestCycloneDX(t *testing.T) {
	in := fixture(t)
	data, err := CycloneDX(in)
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_5 || bom.BOMFormat != "CycloneDX" {
		t.Errorf("got %s %s, want CycloneDX 1.5", bom.BOMFormat, bom.SpecVersion)
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber) {
		t.Errorf("serialNumber %q: want a version 8 urn:uuid", bom.SerialNumber)
	}
	if bom.Metadata == nil || bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" || bom.Metadata.Component.Name != "hello" {
		t.Errorf("metadata: got %+v", bom.Metadata)
	}
	if c := bom.Metadata.Component; c.Supplier == nil || c.Supplier.Name != "cairn fixture" {
		t.Errorf("image supplier: got %+v", c.Supplier)
	}
	got := map[string]string{}
	for _, c := range *bom.Components {
		var hs []string
		if c.Hashes != nil {
			for _, h := range *c.Hashes {
				hs = append(hs, string(h.Algorithm)+":"+h.Value[:8])
			}
		}
		supplier := ""
		if c.Supplier != nil {
			supplier = c.Supplier.Name
		}
		got[c.BOMRef] = string(c.Type) + " " + c.Version + " " + supplier + " " + c.PackageURL + " " + strings.Join(hs, ",")
	}
	want := map[string]string{
		"component:libc":  "library 1.0 libc project pkg:generic/libc@1.0?download_url=https://example.invalid/releases/libc-1.0.tar.gz&vcs_url=git%2Bhttps://example.invalid/git/libc%403333333333333333333333333333333333333333 SHA-256:44444444",
		"component:hello": "library 2.12 Ann Hello pkg:generic/hello@2.12?download_url=https://example.invalid/hello/hello-2.12.tar.gz SHA-256:abababab",
	}
	for ref, w := range want {
		if got[ref] != w {
			t.Errorf("%s:\ngot  %q\nwant %q", ref, got[ref], w)
		}
	}
	if bytes.Contains(data, []byte("pkg:deb/")) || bytes.Contains(data, []byte("seed:")) {
		t.Error("the image BOM names a Debian package or the seed")
	}

	// The patches applied to hello, in order, with the CVEs they resolve.
	var patches []string
	for _, c := range *bom.Components {
		if c.BOMRef == "component:libc" && c.Pedigree != nil {
			t.Errorf("libc has no patch; got pedigree %+v", c.Pedigree)
		}
		if c.BOMRef != "component:hello" || c.Pedigree == nil || c.Pedigree.Patches == nil {
			continue
		}
		for _, p := range *c.Pedigree.Patches {
			line := string(p.Type) + " " + p.Diff.URL
			if p.Resolves != nil {
				for _, r := range *p.Resolves {
					line += " " + string(r.Type) + ":" + r.ID + "@" + r.Source.Name
				}
			}
			patches = append(patches, line)
		}
	}
	wantPatches := []string{
		"unofficial debian/patches/CVE-2025-0001.patch security:CVE-2024-9999@NVD security:CVE-2025-0001@NVD",
		"unofficial debian/patches/02-manpage.patch",
		"unofficial recipes/hello/0001-fixture.patch security:CVE-2023-1234@NVD",
	}
	if strings.Join(patches, "\n") != strings.Join(wantPatches, "\n") {
		t.Errorf("hello's pedigree patches:\ngot  %q\nwant %q", patches, wantPatches)
	}
	for _, f := range in.Image.Files {
		w := "file    SHA-1:" + f.SHA1[:8] + ",SHA-256:" + hexOf(f.SHA256)[:8]
		if got["file:"+f.Path] != w {
			t.Errorf("file:%s: got %q, want %q", f.Path, got["file:"+f.Path], w)
		}
	}
	if n := len(want) + len(in.Image.Files); len(got) != n {
		t.Errorf("got %d components, want %d (tool is not in the image)", len(got), n)
	}
	deps := *bom.Dependencies
	if len(deps) != 1 || deps[0].Ref != "image:hello" || strings.Join(*deps[0].Dependencies, " ") != "component:hello component:libc" {
		t.Errorf("dependencies: got %+v", deps)
	}
}
