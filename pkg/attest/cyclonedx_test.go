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
	got := map[string]string{}
	for _, c := range *bom.Components {
		var hs []string
		if c.Hashes != nil {
			for _, h := range *c.Hashes {
				hs = append(hs, string(h.Algorithm)+":"+h.Value[:8])
			}
		}
		got[c.BOMRef] = string(c.Type) + " " + c.Version + " " + string(c.Scope) + " " + c.PackageURL + " " + strings.Join(hs, ",")
	}
	want := map[string]string{
		"source:libc":  "library 1.0  pkg:deb/debian/libc@1.0-1?arch=source SHA-256:44444444",
		"source:hello": "library 2.12  pkg:deb/debian/hello@1%3A2.12-1?arch=source SHA-256:abababab",
		"seed:dash":    "application 0.5.12-2 excluded pkg:deb/debian/dash@0.5.12-2?arch=amd64 SHA-256:aaaaaaaa",
		"seed:gawk":    "application 1:5.2.1-2 excluded pkg:deb/debian/gawk@1%3A5.2.1-2?arch=amd64 SHA-256:bbbbbbbb",
		"seed:gcc-12":  "application 12.2.0-14+deb12u1 excluded pkg:deb/debian/gcc-12@12.2.0-14+deb12u1?arch=amd64 SHA-256:cccccccc",
	}
	for ref, w := range want {
		if got[ref] != w {
			t.Errorf("%s: got %q, want %q", ref, got[ref], w)
		}
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
	if len(deps) != 1 || deps[0].Ref != "image:hello" || strings.Join(*deps[0].Dependencies, " ") != "source:hello source:libc" {
		t.Errorf("dependencies: got %+v", deps)
	}
}
