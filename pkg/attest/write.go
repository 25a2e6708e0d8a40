package attest

import (
	"fmt"
	"os"
	"path/filepath"
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
	if err := writeAtomic(w.SBOM, sbom); err != nil {
		return nil, err
	}
	if err := writeAtomic(w.CycloneDX, bom); err != nil {
		return nil, err
	}
	if err := writeAtomic(w.Provenance, prov); err != nil {
		return nil, err
	}
	return w, nil
}

func writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
