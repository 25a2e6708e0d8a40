package attest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/cairn-build/cairn/pkg/rootfs"
	"github.com/cairn-build/cairn/pkg/stack"
)

const fixtureStack = "testdata/stack/stack.toml"

// fixture loads the test stack and builds a real rootfs tarball for its
// image with rootfs.Write, so that the files are those of a real tarball.
func fixture(t *testing.T) *Inputs {
	t.Helper()
	in, err := Load(context.Background(), fixtureStack)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, f := range []struct {
		path, body string
		mode       os.FileMode
	}{
		{"bin/hello", "#!/bin/sh\necho hello\n", 0o755},
		{"etc/hello.conf", "greeting = hello\n", 0o644},
		{"usr/share/doc/hello/README", "read me\n", 0o644},
	} {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		// Whatever the umask: the golden SBOMs pin these bytes.
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("hello", filepath.Join(root, "bin/hi")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "bin/hello"), filepath.Join(root, "bin/hullo")); err != nil {
		t.Fatal(err)
	}
	res, err := rootfs.Write(context.Background(), root, t.TempDir(), "hello", rootfs.WithEpoch(in.Stack.SourceDateEpoch))
	if err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(context.Background(), res.Path)
	if err != nil {
		t.Fatal(err)
	}
	in.CairnVersion = "v0.0.0-test"
	in.Targets = []string{"hello"}
	in.Image = Image{
		Name:          "hello",
		Recipe:        "hello-image",
		Tarball:       filepath.Base(res.Path),
		Digest:        res.Digest,
		DiffID:        res.DiffID,
		Files:         files,
		OCIManifest:   "sha256:" + hexSHA256([]byte("manifest")),
		DockerArchive: "sha256:" + hexSHA256([]byte("docker-archive")),
	}
	in.ActionKeys = []ActionKey{
		{Step: "libc", Key: "sha256:" + strings.Repeat("d", 64), Output: "sha256:" + strings.Repeat("e", 64)},
		{Step: "hello-image", Key: "sha256:" + strings.Repeat("f", 64), Output: "sha256:" + strings.Repeat("0", 64)},
		{Step: "tool", Key: "sha256:" + strings.Repeat("7", 64), Output: "sha256:" + strings.Repeat("8", 64)}, // not the image's
		{Step: "image:hello", Key: "sha256:" + strings.Repeat("5", 64)},
	}
	return in
}

func TestSPDXParsesAndNamesEveryComponent(t *testing.T) {
	in := fixture(t)
	data, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("tools-golang cannot read the SBOM: %v\n%s", err, data)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("spdxlib.ValidateDocument: %v", err)
	}
	if ids, err := spdxlib.GetDescribedPackageIDs(doc); err != nil || len(ids) != 1 || ids[0] != "Image-hello" {
		t.Errorf("described packages: got %v (%v), want [Image-hello]", ids, err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion: got %q, want SPDX-2.3", doc.SPDXVersion)
	}
	if got, want := doc.CreationInfo.Created, "2023-11-14T22:13:20Z"; got != want {
		t.Errorf("created: got %q, want %q (SOURCE_DATE_EPOCH)", got, want)
	}
	if !strings.HasPrefix(doc.DocumentNamespace, spdxNamespacePrefix+"fixture/hello-") {
		t.Errorf("documentNamespace: got %q", doc.DocumentNamespace)
	}

	type pkg struct{ id, version, supplier, license, location, file, sha256 string }
	got := map[string]pkg{}
	refs := map[string][]string{}
	notes := map[string][]string{}
	for _, p := range doc.Packages {
		sum := ""
		for _, c := range p.PackageChecksums {
			if c.Algorithm == "SHA256" {
				sum = c.Value
			}
		}
		id := string(p.PackageSPDXIdentifier)
		supplier := ""
		if p.PackageSupplier != nil {
			supplier = p.PackageSupplier.SupplierType + ": " + p.PackageSupplier.Supplier
		}
		got[id] = pkg{id, p.PackageVersion, supplier, p.PackageLicenseDeclared, p.PackageDownloadLocation, p.PackageFileName, sum}
		for _, r := range p.PackageExternalReferences {
			refs[id] = append(refs[id], r.RefType+" "+r.Locator)
		}
		for _, a := range p.Annotations {
			notes[id] = append(notes[id], a.AnnotationType+" "+a.Annotator.AnnotatorType+": "+a.Annotator.Annotator+" "+a.AnnotationDate+" "+a.AnnotationComment)
		}
	}
	// The image and what was built from source, under upstream's identity;
	// no seed package, no Debian purl.
	want := map[string]pkg{
		"Image-hello":   {"Image-hello", in.Image.DiffID, "Organization: cairn fixture", "NOASSERTION", "NOASSERTION", in.Image.Tarball, hexOf(in.Image.Digest)},
		"Package-libc":  {"Package-libc", "1.0", "Organization: libc project", "MIT", "https://example.invalid/releases/libc-1.0.tar.gz", "libc-1.0.tar.gz", strings.Repeat("4", 64)},
		"Package-hello": {"Package-hello", "2.12", "Person: Ann Hello", "LicenseRef-public-domain", "https://example.invalid/hello/hello-2.12.tar.gz", "hello_2.12.orig.tar.gz", strings.Repeat("ab", 32)},
	}
	if len(got) != len(want) {
		t.Errorf("got %d packages, want %d (tool is not in the image, the seed is no content): %v", len(got), len(want), got)
	}
	for id, w := range want {
		if g := got[id]; g != w {
			t.Errorf("package %s:\ngot  %+v\nwant %+v", id, g, w)
		}
	}
	for id, w := range map[string][]string{
		"Package-libc": {
			"purl pkg:generic/libc@1.0?download_url=https://example.invalid/releases/libc-1.0.tar.gz&vcs_url=git%2Bhttps://example.invalid/git/libc%403333333333333333333333333333333333333333",
			"cairn-tree sha256:" + strings.Repeat("1", 64),
			"swh swh:1:dir:" + strings.Repeat("2", 40),
			"swh swh:1:rev:" + strings.Repeat("3", 40),
		},
		"Package-hello": {
			"purl pkg:generic/hello@2.12?download_url=https://example.invalid/hello/hello-2.12.tar.gz",
			"cairn-tree sha256:" + strings.Repeat("5", 64),
			"cairn-patched-tree sha256:" + strings.Repeat("9a", 32),
			"swh swh:1:dir:" + strings.Repeat("6", 40),
		},
	} {
		if !reflect.DeepEqual(refs[id], w) {
			t.Errorf("external refs of %s:\ngot  %q\nwant %q", id, refs[id], w)
		}
	}
	fixtureSum := fmt.Sprintf("%x", sha256.Sum256([]byte("a patch that is only a fixture\n")))
	wantNotes := map[string][]string{"Package-hello": {
		"OTHER Tool: cairn-v0.0.0-test 2023-11-14T22:13:20Z patch-applied CVE-2025-0001.patch; origin debian hello=1:2.12-1 debian/patches/CVE-2025-0001.patch; resolves CVE-2024-9999 CVE-2025-0001",
		"OTHER Tool: cairn-v0.0.0-test 2023-11-14T22:13:20Z patch-applied 02-manpage.patch; origin debian hello=1:2.12-1 debian/patches/02-manpage.patch",
		"OTHER Tool: cairn-v0.0.0-test 2023-11-14T22:13:20Z patch-applied 0001-fixture.patch; origin local recipes/hello/0001-fixture.patch; sha256 " + fixtureSum + "; resolves CVE-2023-1234",
	}}
	if !reflect.DeepEqual(notes, wantNotes) {
		t.Errorf("annotations:\ngot  %q\nwant %q", notes, wantNotes)
	}
	for _, p := range doc.Packages {
		if p.PackageSPDXIdentifier == "Package-hello" && !strings.Contains(p.PackageSourceInfo, "3 patches") {
			t.Errorf("hello sourceInfo %q: want the patches named", p.PackageSourceInfo)
		}
	}
	if bytes.Contains(data, []byte("pkg:deb/")) {
		t.Error("the image SBOM names a Debian package")
	}
	if len(doc.OtherLicenses) != 1 || doc.OtherLicenses[0].LicenseIdentifier != "LicenseRef-public-domain" {
		t.Errorf("hasExtractedLicensingInfos: got %+v, want LicenseRef-public-domain defined", doc.OtherLicenses)
	}

	// Every file and hard link of the tarball, with digests computed here
	// from the bytes written; no symlink, no directory.
	files := map[string]string{}
	for _, f := range doc.Files {
		var sums []string
		for _, c := range f.Checksums {
			sums = append(sums, string(c.Algorithm)+":"+c.Value)
		}
		sort.Strings(sums)
		files[f.FileName] = strings.Join(sums, " ")
	}
	sums := func(body string) string {
		return "SHA1:" + fmt.Sprintf("%x", sha1.Sum([]byte(body))) + " SHA256:" + fmt.Sprintf("%x", sha256.Sum256([]byte(body)))
	}
	hello := sums("#!/bin/sh\necho hello\n")
	wantFiles := map[string]string{
		"./bin/hello":                  hello,
		"./bin/hullo":                  hello,
		"./etc/hello.conf":             sums("greeting = hello\n"),
		"./usr/share/doc/hello/README": sums("read me\n"),
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("files:\ngot  %v\nwant %v", files, wantFiles)
	}
	var img *spdx.Package
	for _, p := range doc.Packages {
		if p.PackageSPDXIdentifier == "Image-hello" {
			img = p
		}
	}
	if img == nil || img.PackageVerificationCode == nil || len(img.PackageVerificationCode.Value) != 40 {
		t.Errorf("image package: no packageVerificationCode: %+v", img)
	}

	rels := map[string]int{}
	for _, r := range doc.Relationships {
		rels[r.Relationship+" "+string(r.RefA.ElementRefID)+">"+strings.SplitN(string(r.RefB.ElementRefID), "-", 2)[0]]++
	}
	if len(rels) != 3 {
		t.Errorf("relationships: got %v, want only DESCRIBES and CONTAINS", rels)
	}
	for k, n := range map[string]int{
		"DESCRIBES DOCUMENT>Image":     1,
		"CONTAINS Image-hello>File":    4,
		"CONTAINS Image-hello>Package": 2,
	} {
		if rels[k] != n {
			t.Errorf("relationships %q: got %d, want %d (all: %v)", k, rels[k], n, rels)
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, gen := range []struct {
		name string
		fn   func(*Inputs) ([]byte, error)
	}{{"spdx", SPDX}, {"cyclonedx", CycloneDX}, {"provenance", Provenance}} {
		t.Run(gen.name, func(t *testing.T) {
			a, b := fixture(t), fixture(t)
			// Order must not matter: the build may list keys in any order.
			b.ActionKeys[0], b.ActionKeys[1] = b.ActionKeys[1], b.ActionKeys[0]
			x, err := gen.fn(a)
			if err != nil {
				t.Fatal(err)
			}
			y, err := gen.fn(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(x, y) {
				t.Fatalf("two runs differ:\n%s\n---\n%s", x, y)
			}
			c := fixture(t)
			c.Image.Digest = "sha256:" + strings.Repeat("9", 64)
			z, err := gen.fn(c)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(x, z) {
				t.Fatal("another image digest gave the same bytes")
			}
		})
	}
}

func TestProvenanceStatement(t *testing.T) {
	in := fixture(t)
	data, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["_type"] != StatementType || raw["predicateType"] != PredicateType {
		t.Errorf("_type %v, predicateType %v: want %s, %s", raw["_type"], raw["predicateType"], StatementType, PredicateType)
	}
	st, err := ParseStatement(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Subject[0].Digest["sha256"], hexOf(in.Image.Digest); got != want {
		t.Errorf("subject sha256: got %s, want %s", got, want)
	}
	def := st.Predicate.BuildDefinition
	if got, want := def.ExternalParameters.Stack.Digest["sha256"], in.StackSHA256; got != want || len(want) != 64 {
		t.Errorf("stack sha256: got %s, want %s", got, want)
	}
	var names []string
	for _, d := range def.ResolvedDependencies {
		names = append(names, d.Name)
	}
	wantNames := []string{
		"patch:hello/0001-fixture.patch", "patches:hello",
		"recipe:hello-image/build.sh", "recipe:hello-image/recipe.toml",
		"recipe:hello/0001-fixture.patch", "recipe:hello/build.sh", "recipe:hello/recipe.toml",
		"recipe:libc/build.sh", "recipe:libc/recipe.toml",
		"seed-lock", "seed:dash", "seed:gawk", "seed:gcc-12",
		"source:hello", "source:libc",
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("resolved dependencies:\ngot  %q\nwant %q", names, wantNames)
	}
	libc := *dep(st, "source:libc")
	wantLibc := map[string]string{"cairnTree": strings.Repeat("1", 64), "gitTree": strings.Repeat("2", 40),
		"gitCommit": strings.Repeat("3", 40), "sha256": strings.Repeat("4", 64)}
	if !reflect.DeepEqual(libc.Digest, wantLibc) {
		t.Errorf("source:libc digest: got %v, want %v", libc.Digest, wantLibc)
	}
	for name, w := range map[string]ResourceDescriptor{
		"patches:hello": {URI: "pkg:deb/debian/hello@1:2.12-1?arch=source", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)},
			Annotations: map[string]string{"series": "CVE-2025-0001.patch 02-manpage.patch"}},
		"source:hello": {Digest: map[string]string{"cairnTree": strings.Repeat("5", 64),
			"cairnPatchedTree": strings.Repeat("9a", 32), "gitTree": strings.Repeat("6", 40), "sha256": strings.Repeat("ab", 32)},
			Annotations: map[string]string{"version": "2.12"}},
		"seed:gawk": {URI: "pkg:deb/debian/gawk@1:5.2.1-2?arch=amd64&distro=debian-12", Digest: map[string]string{"sha256": strings.Repeat("b", 64)}},
	} {
		d := *dep(st, name)
		d.Name = ""
		if !reflect.DeepEqual(d, w) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", name, d, w)
		}
	}
	rd := st.Predicate.RunDetails
	if rd.Builder.ID != BuilderIDStart+"v0.0.0-test" {
		t.Errorf("builder %q", rd.Builder.ID)
	}
	// SLSA's times are when the build ran: a reproducible statement has none.
	if rd.Metadata.StartedOn != "" || rd.Metadata.FinishedOn != "" || bytes.Contains(data, []byte("startedOn")) || bytes.Contains(data, []byte("finishedOn")) {
		t.Errorf("startedOn %q, finishedOn %q: want neither", rd.Metadata.StartedOn, rd.Metadata.FinishedOn)
	}
	// Every file cairn writes for the image is a subject.
	spdxBytes, _ := SPDX(in)
	cdxBytes, _ := CycloneDX(in)
	var subjects []string
	for _, sub := range st.Subject {
		subjects = append(subjects, sub.Name+" "+sub.Digest["sha256"])
	}
	wantSubjects := []string{
		in.Image.Tarball + " " + hexOf(in.Image.Digest),
		"hello.oci " + hexOf(in.Image.OCIManifest),
		"hello.docker.tar " + hexOf(in.Image.DockerArchive),
		"hello.spdx.json " + hexSHA256(spdxBytes),
		"hello.cdx.json " + hexSHA256(cdxBytes),
	}
	if !reflect.DeepEqual(subjects, wantSubjects) {
		t.Errorf("subjects:\ngot  %q\nwant %q", subjects, wantSubjects)
	}
	var steps []string
	for _, b := range rd.Byproducts {
		steps = append(steps, b.Name)
	}
	if want := []string{"action:hello-image", "action:image:hello", "action:libc"}; !reflect.DeepEqual(steps, want) {
		t.Errorf("byproducts: got %q, want %q (the image's steps, sorted; not tool's)", steps, want)
	}
}

// tamper edits a statement as a forger (or a corrupted disk) would.
func tamper(t *testing.T, data []byte, edit func(*Statement)) []byte {
	t.Helper()
	st, err := ParseStatement(data)
	if err != nil {
		t.Fatal(err)
	}
	edit(st)
	out, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dep(st *Statement, name string) *ResourceDescriptor {
	for i := range st.Predicate.BuildDefinition.ResolvedDependencies {
		if d := &st.Predicate.BuildDefinition.ResolvedDependencies[i]; d.Name == name {
			return d
		}
	}
	panic("no dependency " + name)
}

func TestCheck(t *testing.T) {
	in := fixture(t)
	good, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	zero := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name string
		edit func(*Statement)
		want []string // Input/Field of each mismatch, in order
	}{
		{"untouched", func(*Statement) {}, nil},
		{"source tree", func(s *Statement) { dep(s, "source:libc").Digest["cairnTree"] = zero }, []string{"source:libc/digest.cairnTree"}},
		{"source archive", func(s *Statement) { dep(s, "source:libc").Digest["sha256"] = zero }, []string{"source:libc/digest.sha256"}},
		{"git commit dropped", func(s *Statement) { delete(dep(s, "source:libc").Digest, "gitCommit") }, []string{"source:libc/digest.gitCommit"}},
		{"seed package", func(s *Statement) { dep(s, "seed:dash").Digest["sha256"] = zero }, []string{"seed:dash/digest.sha256"}},
		{"debian patches", func(s *Statement) { dep(s, "patches:hello").Digest["sha256"] = zero }, []string{"patches:hello/digest.sha256"}},
		{"local patch", func(s *Statement) { dep(s, "patch:hello/0001-fixture.patch").Digest["sha256"] = zero }, []string{"patch:hello/0001-fixture.patch/digest.sha256"}},
		{"patched tree", func(s *Statement) { dep(s, "source:hello").Digest["cairnPatchedTree"] = zero }, []string{"source:hello/digest.cairnPatchedTree"}},
		{"seed lock", func(s *Statement) { dep(s, "seed-lock").Digest["sha256"] = zero }, []string{"seed-lock/digest.sha256"}},
		{"recipe file", func(s *Statement) { dep(s, "recipe:hello/build.sh").Digest["sha256"] = zero }, []string{"recipe:hello/build.sh/digest.sha256"}},
		{"recipe mode", func(s *Statement) { dep(s, "recipe:hello/build.sh").Annotations["mode"] = "0644" }, []string{"recipe:hello/build.sh/annotations.mode"}},
		{"source uri", func(s *Statement) { dep(s, "source:libc").URI = "https://example.invalid/evil.tar.gz" }, []string{"source:libc/uri"}},
		{"stack digest", func(s *Statement) { s.Predicate.BuildDefinition.ExternalParameters.Stack.Digest["sha256"] = zero }, []string{"stack/sha256"}},
		{"compressor", func(s *Statement) { s.Predicate.BuildDefinition.InternalParameters.Compressor = "gzip" }, []string{"internal:compressor/value"}},
		{"epoch", func(s *Statement) { s.Predicate.BuildDefinition.InternalParameters.SourceDateEpoch = 1 }, []string{"internal:sourceDateEpoch/value"}},
		{"dependency removed", func(s *Statement) {
			d := &s.Predicate.BuildDefinition.ResolvedDependencies
			*d = (*d)[1:]
		}, []string{"patch:hello/0001-fixture.patch/"}},
		{"dependency added", func(s *Statement) {
			d := &s.Predicate.BuildDefinition.ResolvedDependencies
			*d = append(*d, ResourceDescriptor{Name: "source:tool", Digest: map[string]string{"cairnTree": zero}})
		}, []string{"source:tool/"}},
		{"dependency twice", func(s *Statement) {
			d := &s.Predicate.BuildDefinition.ResolvedDependencies
			*d = append(*d, (*d)[0])
		}, []string{"patch:hello/0001-fixture.patch/name"}},
		{"unknown image", func(s *Statement) { s.Predicate.BuildDefinition.ExternalParameters.Image = "nginx" }, []string{"image:nginx/"}},
		{"several at once", func(s *Statement) {
			dep(s, "source:hello").Digest["cairnTree"] = zero
			dep(s, "seed:gcc-12").Digest["sha256"] = zero
			s.Predicate.BuildDefinition.ExternalParameters.Stack.Digest["sha256"] = zero
		}, []string{"seed:gcc-12/digest.sha256", "source:hello/digest.cairnTree", "stack/sha256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Check(tamper(t, good, tc.edit), in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Input+"/"+m.Field)
				if m.String() == "" || !strings.Contains(m.String(), m.Input) {
					t.Errorf("%+v: String() %q does not name the input", m, m.String())
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mismatches: got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCheckStackChanged edits the stack definition, not the statement: a
// re-pinned source is named, and so is the definition's digest.
func TestCheckStackChanged(t *testing.T) {
	in := fixture(t)
	good, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/stack")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "stack.toml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(strings.Repeat("5", 64)), []byte(strings.Repeat("9", 64)), 1)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recipes/hello/build.sh"), []byte("#!/bin/sh\necho changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	changed, err := Load(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Check(good, changed)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Input+"/"+m.Field)
	}
	sort.Strings(got)
	want := []string{"recipe:hello/build.sh/digest.sha256", "source:hello/digest.cairnTree", "stack/sha256"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mismatches: got %q, want %q", got, want)
	}
}

func TestParseStatementRefuses(t *testing.T) {
	in := fixture(t)
	good, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not json", []byte("<xml/>")},
		{"array", []byte("[]")},
		{"trailing data", append(append([]byte{}, good...), []byte(`{"x":1}`)...)},
		{"other statement type", bytes.Replace(good, []byte(StatementType), []byte("https://in-toto.io/Statement/v0.1"), 1)},
		{"other predicate", bytes.Replace(good, []byte(PredicateType), []byte("https://slsa.dev/provenance/v0.2"), 1)},
		{"other build type", bytes.Replace(good, []byte(BuildType), []byte("https://example.invalid/build"), 1)},
		{"no image", bytes.Replace(good, []byte(`"image": "hello"`), []byte(`"image": ""`), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.data, good) {
				t.Fatal("the fixture edit did not apply")
			}
			if _, err := Check(tc.data, in); !errors.Is(err, ErrStatement) {
				t.Errorf("got %v, want ErrStatement", err)
			}
		})
	}
}

func TestRefusesBadDigests(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Inputs)
		want string
	}{
		{"image digest", func(in *Inputs) { in.Image.Digest = "md5:00" }, "image hello digest"},
		{"file digest", func(in *Inputs) { in.Image.Files[1].SHA256 = "sha256:XYZ" }, "file bin/hullo"},
		{"file without sha1", func(in *Inputs) { in.Image.Files[2].SHA1 = "" }, "file etc/hello.conf: SHA1"},
		{"action key", func(in *Inputs) { in.ActionKeys[0].Key = "" }, "action key of libc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fixture(t)
			tc.edit(in)
			_, err1 := SPDX(in)
			_, err2 := Provenance(in)
			err := err1
			if tc.name == "action key" {
				err = err2
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// Without Image.Recipe the stack's image of that name says which recipe.
func TestRecipeFromStack(t *testing.T) {
	in := fixture(t)
	want, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Image.Recipe = ""
	got, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the statement differs when Image.Recipe is left to the stack")
	}
}

func TestSPDXIDPart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"gcc-12", "gcc-12"},
		{"libstdc++6", "libstdc-2B-2B6"},
		{"a_b/c", "a-5Fb-2Fc"},
	} {
		if got := spdxIDPart(tc.in); got != tc.want {
			t.Errorf("spdxIDPart(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPURL(t *testing.T) {
	for _, tc := range []struct{ name, version, arch, want string }{
		{"dash", "0.5.12-2", "amd64", "pkg:deb/debian/dash@0.5.12-2?arch=amd64&distro=debian-12"},
		{"gawk", "1:5.2.1-2", "amd64", "pkg:deb/debian/gawk@1:5.2.1-2?arch=amd64&distro=debian-12"},
		{"gcc-12", "12.2.0-14+deb12u1", "amd64", "pkg:deb/debian/gcc-12@12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12"},
		{"debianutils", "5.7-0.5~deb12u1", "amd64", "pkg:deb/debian/debianutils@5.7-0.5~deb12u1?arch=amd64&distro=debian-12"},
	} {
		if got := debPURL(tc.name, tc.version, tc.arch); got != tc.want {
			t.Errorf("debPURL(%q, %q): got %q, want %q", tc.name, tc.version, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		src  stack.Source
		want string
	}{
		{"archive and git", stack.Source{Name: "musl", Version: "1.2.5", Archives: []string{"https://example.invalid/releases/musl-1.2.5.tar.gz"},
			Git: "https://example.invalid/git/musl", Pin: stack.Pin{GitCommit: "0784374d561435f7c787a555aeab8ede699ed298"}},
			"pkg:generic/musl@1.2.5?download_url=https://example.invalid/releases/musl-1.2.5.tar.gz&vcs_url=git%2Bhttps://example.invalid/git/musl%400784374d561435f7c787a555aeab8ede699ed298"},
		{"archive only", stack.Source{Name: "busybox", Version: "1.37.0", Archives: []string{"https://example.invalid/downloads/busybox-1.37.0.tar.bz2"}},
			"pkg:generic/busybox@1.37.0?download_url=https://example.invalid/downloads/busybox-1.37.0.tar.bz2"},
		{"repack: upstream's URL", stack.Source{Name: "djbdns", Version: "1.05", Upstream: "https://example.invalid/djbdns/djbdns-1.05.tar.gz", Debian: "djbdns=1:1.05-15"},
			"pkg:generic/djbdns@1.05?download_url=https://example.invalid/djbdns/djbdns-1.05.tar.gz"},
		{"github", stack.Source{Name: "zlib", Version: "1.3.1", Git: "https://github.com/Madler/zlib.git", Pin: stack.Pin{GitCommit: strings.Repeat("1", 40)}},
			"pkg:github/madler/zlib@1.3.1"},
		{"file remote is no identity", stack.Source{Name: "x", Version: "1 beta", Git: "file:///srv/x"}, "pkg:generic/x@1%20beta"},
	} {
		if got := upstreamPURL(tc.src); got != tc.want {
			t.Errorf("%s: upstreamPURL:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestSetPatchSHA256(t *testing.T) {
	in := fixture(t)
	sum := strings.Repeat("e", 64)
	if err := in.SetPatchSHA256("hello", "CVE-2025-0001.patch", sum); err != nil {
		t.Fatal(err)
	}
	data, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("debian/patches/CVE-2025-0001.patch; sha256 "+sum+"; resolves")) {
		t.Error("the SPDX annotation does not carry the Debian patch's sha256")
	}
	for _, tc := range []struct{ source, name, sum, want string }{
		{"hello", "nope.patch", sum, "applies no such patch"},
		{"libc", "CVE-2025-0001.patch", sum, "applies no such patch"},
		{"hello", "CVE-2025-0001.patch", "ABC", "not 64 lowercase hex"},
	} {
		if err := in.SetPatchSHA256(tc.source, tc.name, tc.sum); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetPatchSHA256(%s, %s, %s): got %v, want %q", tc.source, tc.name, tc.sum, err, tc.want)
		}
	}
}
