// Package sbomcheck checks SBOMs with their real consumers, for tests: the
// CycloneDX 1.5 and SPDX 2.3 JSON schemas, pinned by Go modules and by
// their own digests, and syft at a pinned version. Only tests import it.
package sbomcheck

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cairn-build/cairn/internal/testenv"
)

// The consumers the SBOMs are checked with, pinned. syft is installed by
// the test itself (testenv.GoTool); the schemas are files of Go modules,
// fetched through the module proxy and checked by the Go checksum
// database, and pinned once more by their own sha256 here.
const (
	SyftPackage = "github.com/anchore/syft/cmd/syft"
	SyftVersion = "v1.57.2"

	// cyclonedx-go, at the version go.mod requires, ships the CycloneDX
	// schemas (schema/bom-1.5.schema.json and the SPDX licence list it
	// refers to; the JSF schema it also refers to is schemax.json there).
	cdxModule       = "github.com/CycloneDX/cyclonedx-go"
	cdxSchema       = "schema/bom-1.5.schema.json"
	cdxSchemaSHA256 = "d38e11a8dd9caef49b2601ce4f93a5d4bead6dcd96a496ec67f66b90e505ea4e"
	// syft's module ships the SPDX 2.3 JSON schema it tests against.
	spdxSchema       = "schema/spdx-json/spdx-schema-2.3.json"
	spdxSchemaSHA256 = "c2e139546ef93597d3b1214d1d452369d0b536af6c6d6500dbd25c582034aa7c"
)

// pinnedFile reads a module's file and checks its sha256.
func pinnedFile(t testing.TB, dir, file, sum string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
		t.Fatalf("%s: sha256 %x, pinned %s", file, got, sum)
	}
	return data
}

// Schemas compiles the pinned CycloneDX 1.5 and SPDX 2.3 JSON schemas,
// with formats asserted; nothing is fetched while compiling.
func Schemas(t testing.TB) (cdx, spdx *jsonschema.Schema) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	add := func(url string, data []byte) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
	}
	cdxDir := testenv.GoModuleDir(t, cdxModule, "")
	add("http://cyclonedx.org/schema/bom-1.5.schema.json", pinnedFile(t, cdxDir, cdxSchema, cdxSchemaSHA256))
	for url, file := range map[string]string{
		"http://cyclonedx.org/schema/spdx.schema.json":     "schema/spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "schema/jsf-0.82.schemax.json",
	} {
		data, err := os.ReadFile(filepath.Join(cdxDir, file))
		if err != nil {
			t.Fatal(err)
		}
		add(url, data)
	}
	syftDir := testenv.GoModuleDir(t, "github.com/anchore/syft", SyftVersion)
	add("http://spdx.org/rdf/terms/2.3", pinnedFile(t, syftDir, spdxSchema, spdxSchemaSHA256))
	var err error
	if cdx, err = c.Compile("http://cyclonedx.org/schema/bom-1.5.schema.json"); err != nil {
		t.Fatal(err)
	}
	if spdx, err = c.Compile("http://spdx.org/rdf/terms/2.3"); err != nil {
		t.Fatal(err)
	}
	return cdx, spdx
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: the schemas are pinned files, nothing is fetched", url)
}

// ValidateJSON validates data against sch.
func ValidateJSON(sch *jsonschema.Schema, data []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// SyftPackages runs syft on an SBOM file and returns the packages it
// reads, as "NAME VERSION PURL" (the purl as syft writes it back), sorted,
// and the table it prints.
func SyftPackages(t testing.TB, syft, file string) (pkgs []string, table string) {
	t.Helper()
	run := func(format string) []byte {
		cmd := exec.Command(syft, "convert", file, "-o", format, "-q")
		cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false", "HOME="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("syft convert %s -o %s: %v\n%s", file, format, err, stderr.String())
		}
		return out
	}
	var doc struct {
		Artifacts []struct {
			Name, Version, Type, PURL string
		}
	}
	if err := json.Unmarshal(run("syft-json"), &doc); err != nil {
		t.Fatal(err)
	}
	for _, a := range doc.Artifacts {
		pkgs = append(pkgs, a.Name+" "+a.Version+" "+a.PURL)
	}
	sort.Strings(pkgs)
	return pkgs, string(run("table"))
}

// Syft installs the pinned syft (testenv.GoTool) and returns its path.
func Syft(t testing.TB) string {
	t.Helper()
	return testenv.GoTool(t, SyftPackage, SyftVersion)
}
