package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// CycloneDX returns the image's SBOM as CycloneDX 1.5 JSON: the same
// components as SPDX (the image, its files, its sources, the seed's
// packages as excluded build tools), for tools that read only CycloneDX.
func CycloneDX(in *Inputs) ([]byte, error) {
	img := in.Image
	if img.Name == "" {
		return nil, fmt.Errorf("sbom: no image name")
	}
	if err := checkDigest("image "+img.Name+" digest", img.Digest); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	_, sources := in.closure()
	imageRef := "image:" + img.Name
	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{
		Timestamp: rfc3339(in.epoch()),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "cairn", Version: versionOr(in.CairnVersion),
		}}},
		Component: &cdx.Component{
			BOMRef:  imageRef,
			Type:    cdx.ComponentTypeContainer,
			Name:    img.Name,
			Version: img.DiffID,
			Hashes:  &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hexOf(img.Digest)}},
			Properties: props(
				"cairn:tarball", img.Tarball,
				"cairn:diffID", img.DiffID,
				"cairn:ociManifest", img.OCIManifest,
			),
		},
	}
	var comps []cdx.Component
	var srcRefs []string
	for _, s := range sources {
		c := cdx.Component{
			BOMRef:      "source:" + s.Name,
			Type:        cdx.ComponentTypeLibrary,
			Name:        s.Name,
			Version:     s.Version,
			Description: "a pinned source",
			Properties: props(
				"cairn:tree", s.Pin.Tree,
				"cairn:gitTree", s.Pin.GitTree,
				"cairn:gitCommit", s.Pin.GitCommit,
			),
		}
		if s.License != "" {
			c.Licenses = &cdx.Licenses{{Expression: s.License}}
		}
		if s.Pin.ArchiveSHA256 != "" {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: s.Pin.ArchiveSHA256}}
		}
		var refs []cdx.ExternalReference
		for _, a := range s.Archives {
			refs = append(refs, cdx.ExternalReference{URL: a, Type: cdx.ERTypeDistribution})
		}
		if s.Git != "" {
			refs = append(refs, cdx.ExternalReference{URL: s.Git, Type: cdx.ERTypeVCS})
		}
		if len(refs) > 0 {
			c.ExternalReferences = &refs
		}
		if name, version := s.DebianPackage(); name != "" {
			c.PackageURL = debPURL(name, version, "source")
		}
		comps = append(comps, c)
		srcRefs = append(srcRefs, c.BOMRef)
	}
	if in.Seed != nil {
		for _, p := range in.Seed.Packages {
			comps = append(comps, cdx.Component{
				BOMRef:     "seed:" + p.Name,
				Type:       cdx.ComponentTypeApplication,
				Name:       p.Name,
				Version:    p.Version,
				Scope:      cdx.ScopeExcluded,
				PackageURL: debPURL(p.Name, p.Version, p.Arch),
				Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.SHA256}},
				Properties: props("cairn:role", "build-tool"),
			})
		}
	}
	files, err := spdxFiles(img.Files) // the same checks, the same order
	if err != nil {
		return nil, fmt.Errorf("sbom: image %s: %w", img.Name, err)
	}
	for _, f := range files {
		path := f.FileName[len("./"):]
		comps = append(comps, cdx.Component{
			BOMRef: "file:" + path,
			Type:   cdx.ComponentTypeFile,
			Name:   path,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA1, Value: f.Checksums[0].Value}, {Algorithm: cdx.HashAlgoSHA256, Value: f.Checksums[1].Value}},
		})
	}
	if len(comps) > 0 {
		bom.Components = &comps
	}
	deps := []cdx.Dependency{{Ref: imageRef}}
	if len(srcRefs) > 0 {
		deps[0].Dependencies = &srcRefs
	}
	bom.Dependencies = &deps

	// The serial number is a UUID made of the sha256 of the BOM without
	// it (version 8, "custom"): the same inputs, the same serial.
	body, err := encodeCDX(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = "urn:uuid:" + uuidOf(body)
	return encodeCDX(bom)
}

func encodeCDX(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		return nil, fmt.Errorf("sbom: cyclonedx: %w", err)
	}
	return buf.Bytes(), nil
}

// uuidOf formats the first 16 bytes of sha256(b) as an RFC 9562 version 8
// UUID.
func uuidOf(b []byte) string {
	s := sha256.Sum256(b)
	u := s[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// props makes CycloneDX properties of name/value pairs, leaving out empty
// values.
func props(kv ...string) *[]cdx.Property {
	var out []cdx.Property
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, cdx.Property{Name: kv[i], Value: kv[i+1]})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &out
}
