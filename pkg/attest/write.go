package attest

import (
	"path/filepath"

	"github.com/cairn-build/cairn/internal/atomicfile"
)

// Written names the documents Write wrote.
type Written struct {
	SBOM       string // DIR/IMAGE.spdx.json
	CycloneDX  string // DIR/IMAGE.cdx.json
	Provenance string // DIR/IMAGE.provenance.json
}

// Write writes in's image's SBOMs and provenance statement into dir as
// IMAGE.spdx.json, IMAGE.cdx.json and IMAGE.provenance.json. Each is written to a
// temporary file, synced and renamed: a reader never sees half a
// document, and on an error neither is left half-written.
func Write(in *Inputs, dir string) (*Written, error) {
	sbom, err := SPDX(in)
	if err != nil {
		return nil, err
	}
	bom, err := CycloneDX(in)
	if err != nil {
		return nil, err
	}
	prov, err := Provenance(in)
	if err != nil {
		return nil, err
	}
	w := &Written{
		SBOM:       filepath.Join(dir, in.Image.Name+".spdx.json"),
		CycloneDX:  filepath.Join(dir, in.Image.Name+".cdx.json"),
		Provenance: filepath.Join(dir, in.Image.Name+".provenance.json"),
	}
	if err := atomicfile.WriteBytes(w.SBOM, sbom, 0o644); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteBytes(w.CycloneDX, bom, 0o644); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteBytes(w.Provenance, prov, 0o644); err != nil {
		return nil, err
	}
	return w, nil
}
