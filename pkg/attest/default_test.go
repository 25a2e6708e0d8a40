package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"
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
