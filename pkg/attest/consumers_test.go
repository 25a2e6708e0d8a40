package attest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cairn-build/cairn/internal/sbomcheck"
)

var update = flag.Bool("update", false, "rewrite the golden SBOMs in testdata/golden")

func TestSchemas(t *testing.T) {
	cdxSch, spdxSch := sbomcheck.Schemas(t)
	in := fixture(t)
	spdxData, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	cdxData, err := CycloneDX(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := sbomcheck.ValidateJSON(spdxSch, spdxData); err != nil {
		t.Errorf("SPDX 2.3 schema: %v", err)
	}
	if err := sbomcheck.ValidateJSON(cdxSch, cdxData); err != nil {
		t.Errorf("CycloneDX 1.5 schema: %v", err)
	}
	// The schemas must catch what they check.
	for _, bad := range []struct {
		name string
		sch  *jsonschema.Schema
		data []byte
	}{
		{"spdx without spdxVersion", spdxSch, bytes.Replace(spdxData, []byte(`"spdxVersion"`), []byte(`"version"`), 1)},
		{"cdx with an unknown patch type", cdxSch, bytes.Replace(cdxData, []byte(`"type": "unofficial"`), []byte(`"type": "official"`), 1)},
	} {
		if bytes.Equal(bad.data, spdxData) || bytes.Equal(bad.data, cdxData) {
			t.Fatalf("%s: the edit did not apply", bad.name)
		}
		if err := sbomcheck.ValidateJSON(bad.sch, bad.data); err == nil {
			t.Errorf("%s: passed the schema", bad.name)
		}
	}
}

// syft, the scanners' reader, finds in each SBOM exactly the image's
// components with their versions and upstream purls, and no Debian
// package.
func TestSyftReadsTheSBOMs(t *testing.T) {
	syft := sbomcheck.Syft(t)
	in := fixture(t)
	dir := t.TempDir()
	w, err := Write(in, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"hello 2.12 pkg:generic/hello@2.12?download_url=https://example.invalid/hello/hello-2.12.tar.gz",
		"libc 1.0 pkg:generic/libc@1.0?download_url=https://example.invalid/releases/libc-1.0.tar.gz&vcs_url=git%2Bhttps://example.invalid/git/libc%403333333333333333333333333333333333333333",
	}
	for _, file := range []string{w.SBOM, w.CycloneDX} {
		got, table := sbomcheck.SyftPackages(t, syft, file)
		t.Logf("syft convert %s -o table:\n%s", filepath.Base(file), table)
		// syft writes purls in its own encoding; compare what they say.
		for i := range got {
			got[i] = strings.NewReplacer("%3A", ":", "%2F", "/").Replace(got[i])
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: syft reads\n%s\nwant\n%s", filepath.Base(file), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// The SBOM bytes of the fixture stack are the contract: any change to them
// shows in a diff of testdata/golden, rewritten by go test -update.
func TestGolden(t *testing.T) {
	in := fixture(t)
	// The fixture's tarball is written by rootfs.Write, whose bytes the
	// rootfs tests pin; its name and digests are pinned here too.
	for _, g := range []struct {
		file string
		fn   func(*Inputs) ([]byte, error)
	}{
		{"hello.spdx.json", SPDX},
		{"hello.cdx.json", CycloneDX},
		{"hello.provenance.json", Provenance},
	} {
		got, err := g.fn(in)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "golden", g.file)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./pkg/attest -run TestGolden -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file (go test -run TestGolden -update, then review the diff):\n%s", g.file, lineDiff(want, got))
		}
	}
}

// lineDiff names the first lines that differ.
func lineDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
			if n++; n == 5 {
				break
			}
		}
	}
	return b.String()
}
