package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cairn-build/cairn/pkg/stack"
)

// Namespace prefixes. The .invalid names are cairn's own stable strings:
// they identify, they are not fetched.
const (
	spdxNamespacePrefix = "https://cairn.invalid/spdx/"
	noAssertion         = "NOASSERTION"
)

type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files,omitempty"`
	OtherLicenses     []spdxOtherLicense `json:"hasExtractedLicensingInfos,omitempty"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string           `json:"name"`
	SPDXID                string           `json:"SPDXID"`
	VersionInfo           string           `json:"versionInfo,omitempty"`
	Supplier              string           `json:"supplier,omitempty"`
	PackageFileName       string           `json:"packageFileName,omitempty"`
	DownloadLocation      string           `json:"downloadLocation"`
	FilesAnalyzed         bool             `json:"filesAnalyzed"`
	Checksums             []spdxChecksum   `json:"checksums,omitempty"`
	LicenseConcluded      string           `json:"licenseConcluded"`
	LicenseDeclared       string           `json:"licenseDeclared"`
	CopyrightText         string           `json:"copyrightText"`
	SourceInfo            string           `json:"sourceInfo,omitempty"`
	Comment               string           `json:"comment,omitempty"`
	ExternalRefs          []spdxExtRef     `json:"externalRefs,omitempty"`
	Annotations           []spdxAnnotation `json:"annotations,omitempty"`
	PrimaryPackagePurpose string           `json:"primaryPackagePurpose,omitempty"`
	BuiltDate             string           `json:"builtDate,omitempty"`
	HasFiles              []string         `json:"hasFiles,omitempty"`
	VerificationCode      *spdxVerifCode   `json:"packageVerificationCode,omitempty"`
}

type spdxAnnotation struct {
	Date      string `json:"annotationDate"`
	Type      string `json:"annotationType"`
	Annotator string `json:"annotator"`
	Comment   string `json:"comment"`
}

type spdxVerifCode struct {
	Value string `json:"packageVerificationCodeValue"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExtRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
	Comment  string `json:"comment,omitempty"`
}

type spdxFile struct {
	FileName         string         `json:"fileName"`
	SPDXID           string         `json:"SPDXID"`
	Checksums        []spdxChecksum `json:"checksums"`
	LicenseConcluded string         `json:"licenseConcluded"`
	CopyrightText    string         `json:"copyrightText"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxOtherLicense struct {
	LicenseID     string `json:"licenseId"`
	ExtractedText string `json:"extractedText"`
	Name          string `json:"name"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// SPDX returns the image's SBOM as SPDX 2.3 JSON: the image as a package
// holding its files and the components built from source (CONTAINS), each
// under its upstream identity with the patches applied to it as
// annotations. Build tools are not in the image and are not named.
func SPDX(in *Inputs) ([]byte, error) {
	img := in.Image
	if img.Name == "" {
		return nil, fmt.Errorf("sbom: no image name")
	}
	if err := checkDigest("image "+img.Name+" digest", img.Digest); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	created := rfc3339(in.epoch())
	_, sources := in.closure()
	tool := "Tool: cairn-" + versionOr(in.CairnVersion)

	imageID := "SPDXRef-Image-" + spdxIDPart(img.Name)
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        "cairn-" + in.stackName() + "-" + img.Name,
		CreationInfo: spdxCreationInfo{
			Created:  created,
			Creators: []string{tool},
		},
	}

	imgPkg := spdxPackage{
		Name:                  img.Name,
		SPDXID:                imageID,
		VersionInfo:           img.DiffID,
		Supplier:              orNoAssertion(in.supplier()),
		PackageFileName:       img.Tarball,
		DownloadLocation:      noAssertion,
		FilesAnalyzed:         true,
		Checksums:             []spdxChecksum{{"SHA256", hexOf(img.Digest)}},
		LicenseConcluded:      noAssertion,
		LicenseDeclared:       noAssertion,
		CopyrightText:         noAssertion,
		PrimaryPackagePurpose: "CONTAINER",
		BuiltDate:             created,
		Comment:               "rootfs tarball; versionInfo is the sha256 of the uncompressed tar (the OCI DiffID)",
	}
	if img.OCIManifest != "" {
		imgPkg.ExternalRefs = append(imgPkg.ExternalRefs, spdxExtRef{"OTHER", "oci-manifest", img.OCIManifest, "sha256 of the image's OCI manifest"})
	}
	files, err := spdxFiles(img.Files)
	if err != nil {
		return nil, fmt.Errorf("sbom: image %s: %w", img.Name, err)
	}
	for _, f := range files {
		imgPkg.HasFiles = append(imgPkg.HasFiles, f.SPDXID)
	}
	if len(files) > 0 {
		imgPkg.VerificationCode = &spdxVerifCode{verificationCode(img.Files)}
	}
	doc.Packages = append(doc.Packages, imgPkg)
	doc.Files = files
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", imageID})
	for _, f := range files {
		doc.Relationships = append(doc.Relationships, spdxRelationship{imageID, "CONTAINS", f.SPDXID})
	}

	licenseRefs := map[string]bool{}
	for _, s := range sources {
		p := componentPackage(s, in.patchesOf(s.Name), tool, created)
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{imageID, "CONTAINS", p.SPDXID})
		for _, ref := range licenseRefsOf(s.License) {
			licenseRefs[ref] = true
		}
	}
	refs := make([]string, 0, len(licenseRefs))
	for r := range licenseRefs {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	for _, r := range refs {
		doc.OtherLicenses = append(doc.OtherLicenses, spdxOtherLicense{
			LicenseID:     r,
			Name:          strings.TrimPrefix(r, "LicenseRef-"),
			ExtractedText: "Declared as " + r + " by the stack definition; the licence's text is not recorded in this document.",
		})
	}

	seen := map[string]bool{}
	for _, p := range doc.Packages {
		if seen[p.SPDXID] {
			return nil, fmt.Errorf("sbom: two packages have the SPDX id %s", p.SPDXID)
		}
		seen[p.SPDXID] = true
	}

	// The namespace names the document by what it describes: the same
	// inputs, the same namespace; any other input, another one.
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	doc.DocumentNamespace = spdxNamespacePrefix + spdxIDPart(in.stackName()) + "/" + spdxIDPart(img.Name) + "-" + hexSHA256(body)
	return marshal(doc)
}

// componentPackage is a from-source component of the image under its
// upstream identity. The patches applied to it are annotations: SPDX 2.3
// has no pedigree, a PATCH_APPLIED relationship needs each patch as an
// element of its own (a file needs a SHA1 cairn may not know, a package
// would be read as one more component of the image by syft), and an
// annotation is read by SPDX's own tools and carried by converters.
func componentPackage(s stack.Source, patches []Patch, tool, created string) spdxPackage {
	lic := orNoAssertion(s.License)
	p := spdxPackage{
		Name:             s.Name,
		SPDXID:           "SPDXRef-Package-" + spdxIDPart(s.Name),
		VersionInfo:      s.Version,
		Supplier:         orNoAssertion(s.Supplier),
		PackageFileName:  archiveName(s),
		DownloadLocation: downloadLocation(s),
		LicenseConcluded: lic,
		LicenseDeclared:  lic,
		CopyrightText:    noAssertion,
		SourceInfo:       sourceInfo(s, patches),
		Comment:          "built from a pinned source in a sandbox; its files are among the image's",
	}
	if s.Pin.ArchiveSHA256 != "" {
		p.Checksums = []spdxChecksum{{"SHA256", s.Pin.ArchiveSHA256}}
	}
	p.ExternalRefs = append(p.ExternalRefs, spdxExtRef{"PACKAGE-MANAGER", "purl", upstreamPURL(s), "upstream's identity of the source"})
	p.ExternalRefs = append(p.ExternalRefs, spdxExtRef{"OTHER", "cairn-tree", s.Pin.Tree, "cairn tree v1 digest of the pristine source (docs/digest.md)"})
	if s.Patches != nil && s.Patches.Tree != "" {
		p.ExternalRefs = append(p.ExternalRefs, spdxExtRef{"OTHER", "cairn-patched-tree", s.Patches.Tree, "cairn tree v1 digest of the source with its patches applied: what was built"})
	}
	// A git tree id is a Software Heritage directory id, and a commit id
	// a revision id: the persistent identifiers SPDX knows.
	if s.Pin.GitTree != "" {
		p.ExternalRefs = append(p.ExternalRefs, spdxExtRef{"PERSISTENT-ID", "swh", "swh:1:dir:" + s.Pin.GitTree, "the git tree of the pristine source"})
	}
	if s.Pin.GitCommit != "" {
		p.ExternalRefs = append(p.ExternalRefs, spdxExtRef{"PERSISTENT-ID", "swh", "swh:1:rev:" + s.Pin.GitCommit, "the git commit the source is"})
	}
	for _, pt := range patches {
		p.Annotations = append(p.Annotations, spdxAnnotation{
			Date:      created,
			Type:      "OTHER",
			Annotator: tool,
			Comment:   patchNote(s, pt),
		})
	}
	return p
}

// patchNote says what a patch is, where it comes from and what it fixes,
// in one line a person or a script can read: "patch-applied NAME;
// origin …; sha256 …; resolves CVE-…".
func patchNote(s stack.Source, p Patch) string {
	var b strings.Builder
	b.WriteString("patch-applied " + p.Name + "; origin ")
	switch p.Origin {
	case PatchDebian:
		b.WriteString("debian " + s.Debian + " debian/patches/" + p.Name)
	default:
		b.WriteString("local " + p.Path)
	}
	if p.SHA256 != "" {
		b.WriteString("; sha256 " + p.SHA256)
	}
	if len(p.Resolves) > 0 {
		b.WriteString("; resolves " + strings.Join(p.Resolves, " "))
	}
	return b.String()
}

// sourceInfo says how the component's files came to be.
func sourceInfo(s stack.Source, patches []Patch) string {
	var b strings.Builder
	switch {
	case len(s.Archives) > 0:
		b.WriteString("built from upstream's release archive")
	case s.Upstream != "" && s.Pin.ArchiveSHA256 != "":
		b.WriteString("built from " + archiveName(s) + ", a repack of upstream's release by the Debian source package " + s.Debian + " (the checksum is of that file)")
	case s.Git != "":
		b.WriteString("built from upstream's git repository")
	default:
		b.WriteString("built from a pinned tree")
	}
	if len(patches) == 0 {
		b.WriteString(", unpatched")
		return b.String()
	}
	fmt.Fprintf(&b, ", with %d patches applied in order (annotations):", len(patches))
	for i, p := range patches {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(" " + p.Name)
	}
	return b.String()
}

func orNoAssertion(s string) string {
	if s == "" {
		return noAssertion
	}
	return s
}

// spdxFiles lists the image's files, sorted by path.
func spdxFiles(files []File) ([]spdxFile, error) {
	var out []spdxFile
	ids := map[string]string{}
	for _, f := range files {
		if err := checkDigest("file "+f.Path, f.SHA256); err != nil {
			return nil, err
		}
		if !isHex(f.SHA1, 40) {
			return nil, fmt.Errorf("file %s: SHA1 %q is not 40 hex digits (SPDX 2.3 requires one: list files with ReadFiles)", f.Path, f.SHA1)
		}
		// The id is a hash of the path: stable when other files come and go.
		id := "SPDXRef-File-" + hexSHA256([]byte(f.Path))[:20]
		if prev, ok := ids[id]; ok {
			return nil, fmt.Errorf("files %s and %s: same SPDX id (listed twice?)", prev, f.Path)
		}
		ids[id] = f.Path
		sf := spdxFile{
			FileName:         "./" + f.Path,
			SPDXID:           id,
			Checksums:        []spdxChecksum{{"SHA1", f.SHA1}, {"SHA256", hexOf(f.SHA256)}},
			LicenseConcluded: noAssertion,
			CopyrightText:    noAssertion,
		}
		if f.Link != "" {
			sf.Comment = "hard link to ./" + f.Link
		}
		out = append(out, sf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FileName < out[j].FileName })
	return out, nil
}

// licenseRefsOf returns the LicenseRef- identifiers of an SPDX expression,
// which a document must define.
func licenseRefsOf(expr string) []string {
	var out []string
	for _, tok := range strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' || r == '(' || r == ')' }) {
		if strings.HasPrefix(tok, "LicenseRef-") {
			out = append(out, tok)
		}
	}
	return out
}

// spdxIDPart keeps what an SPDX id may hold: letters, digits, '.' and '-';
// any other byte becomes "-" and its uppercase hex ("libstdc++6" →
// "libstdc-2B-2B6"), which lowercase Debian and stack names cannot collide
// with. SPDX checks that every id is unique all the same.
func spdxIDPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "-%02X", c)
		}
	}
	return b.String()
}

func rfc3339(epoch int64) string { return time.Unix(epoch, 0).UTC().Format(time.RFC3339) }

func versionOr(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// hexOf strips the "sha256:" of a digest.
func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

// checkDigest refuses anything but "sha256:" and 64 lowercase hex digits.
func checkDigest(what, d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || !isHex64(h) {
		return fmt.Errorf("%s: %q is not sha256:HEX", what, d)
	}
	return nil
}

func isHex64(s string) bool { return isHex(s, 64) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// marshal writes indented JSON without HTML escaping and with a final
// newline: the bytes are the contract.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
