package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/cairn-build/cairn/pkg/stack"
)

// CycloneDX returns the image's SBOM as CycloneDX 1.5 JSON: the image
// (metadata.component), its files, and the components built from source
// under their upstream identity, with the patches applied to each as its
// pedigree (patches[].resolves names the CVEs). Build tools are not in the
// image and are not named.
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
			BOMRef:   imageRef,
			Type:     cdx.ComponentTypeContainer,
			Supplier: cdxSupplier(in.supplier()),
			Name:     img.Name,
			Version:  img.DiffID,
			Hashes:   &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hexOf(img.Digest)}},
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
			BOMRef:      "component:" + s.Name,
			Type:        cdx.ComponentTypeLibrary,
			Supplier:    cdxSupplier(s.Supplier),
			Name:        s.Name,
			Version:     s.Version,
			Description: "built from a pinned source in a sandbox; its files are among the image's",
			PackageURL:  upstreamPURL(s),
			Properties: props(
				"cairn:archiveName", archiveName(s),
				"cairn:tree", s.Pin.Tree,
				"cairn:patchedTree", patchedTree(s),
				"cairn:gitTree", s.Pin.GitTree,
				"cairn:gitCommit", s.Pin.GitCommit,
			),
		}
		if s.License != "" {
			c.Licenses = &cdx.Licenses{{Expression: s.License}}
		}
		var archiveHashes *[]cdx.Hash
		if s.Pin.ArchiveSHA256 != "" {
			archiveHashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: s.Pin.ArchiveSHA256}}
			c.Hashes = archiveHashes
		}
		var refs []cdx.ExternalReference
		for i, a := range s.Archives {
			r := cdx.ExternalReference{URL: a, Type: cdx.ERTypeDistribution}
			if i == 0 {
				r.Hashes, r.Comment = archiveHashes, "the release archive "+archiveName(s)
			}
			refs = append(refs, r)
		}
		if len(s.Archives) == 0 && s.Upstream != "" {
			refs = append(refs, cdx.ExternalReference{URL: s.Upstream, Type: cdx.ERTypeDistribution,
				Comment: "upstream's release; the component's hash is of " + archiveName(s) + ", a repack by the Debian source package " + s.Debian})
		}
		if s.Git != "" {
			refs = append(refs, cdx.ExternalReference{URL: s.Git, Type: cdx.ERTypeVCS})
		}
		if len(refs) > 0 {
			c.ExternalReferences = &refs
		}
		c.Pedigree = cdxPedigree(s, in.patchesOf(s.Name))
		comps = append(comps, c)
		srcRefs = append(srcRefs, c.BOMRef)
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

// cdxPedigree lists the patches applied to a source, in order. A patch is
// "unofficial": none is in an upstream release of this version. Its diff
// url is where the patch is within its origin (debian/patches/NAME of the
// Debian source package, or the file beside the stack), a relative
// reference that names without pointing anywhere fetchable.
func cdxPedigree(s stack.Source, patches []Patch) *cdx.Pedigree {
	if len(patches) == 0 {
		return nil
	}
	var ps []cdx.Patch
	var notes []string
	for _, p := range patches {
		cp := cdx.Patch{Type: cdx.PatchTypeUnofficial, Diff: &cdx.Diff{URL: p.Path}}
		if p.Origin == PatchDebian {
			cp.Diff.URL = "debian/patches/" + p.Name
		}
		var issues []cdx.Issue
		for _, id := range p.Resolves {
			issues = append(issues, cdx.Issue{
				Type:        cdx.IssueTypeSecurity,
				ID:          id,
				Description: "resolved by the patch " + p.Name,
				Source:      issueSource(id),
			})
		}
		if len(issues) > 0 {
			cp.Resolves = &issues
		}
		ps = append(ps, cp)
		notes = append(notes, patchNote(s, p))
	}
	return &cdx.Pedigree{Patches: &ps, Notes: strings.Join(notes, "\n")}
}

// issueSource names the database an id belongs to.
func issueSource(id string) *cdx.Source {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return &cdx.Source{Name: "GitHub Advisories", URL: "https://github.com/advisories/" + id}
	}
	return nil
}

func cdxSupplier(s string) *cdx.OrganizationalEntity {
	if s == "" {
		return nil
	}
	return &cdx.OrganizationalEntity{Name: supplierName(s)}
}

func patchedTree(s stack.Source) string {
	if s.Patches == nil {
		return ""
	}
	return s.Patches.Tree
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
