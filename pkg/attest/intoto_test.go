package attest

import (
	"testing"

	prov "github.com/in-toto/attestation/go/predicates/provenance/v1"
	ita1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// The statement is read and validated by in-toto's own Go bindings: the
// Statement v1 envelope, and the predicate as SLSA provenance v1.
func TestInTotoBindingsAccept(t *testing.T) {
	in := fixture(t)
	in.Image.OCIManifest = "sha256:" + hexSHA256([]byte("manifest"))
	data, err := Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	var st ita1.Statement
	if err := protojson.Unmarshal(data, &st); err != nil {
		t.Fatalf("in-toto Statement: %v", err)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("in-toto Statement.Validate: %v", err)
	}
	if got := len(st.GetSubject()); got != 5 {
		t.Errorf("subjects: got %d, want 5 (tarball, OCI manifest, docker-archive, two SBOMs)", got)
	}
	pred, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		t.Fatal(err)
	}
	var p prov.Provenance
	if err := protojson.Unmarshal(pred, &p); err != nil {
		t.Fatalf("SLSA provenance v1: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("SLSA Provenance.Validate: %v", err)
	}
	deps := p.GetBuildDefinition().GetResolvedDependencies()
	if len(deps) != 15 {
		t.Errorf("resolved dependencies: got %d, want 15", len(deps))
	}
	for _, d := range deps {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", d.GetName(), err)
		}
	}
	if md := p.GetRunDetails().GetMetadata(); md.GetStartedOn() != nil || md.GetFinishedOn() != nil || md.GetInvocationId() == "" {
		t.Errorf("run metadata: got %v, want an invocation id and no times", md)
	}

	// The bindings must catch what they check: a digest of the wrong length.
	bad := tamper(t, data, func(s *Statement) { dep(s, "seed:dash").Digest["sha256"] = "abcd" })
	var st2 ita1.Statement
	if err := protojson.Unmarshal(bad, &st2); err != nil {
		t.Fatal(err)
	}
	pred2, _ := protojson.Marshal(st2.GetPredicate())
	var p2 prov.Provenance
	if err := protojson.Unmarshal(pred2, &p2); err != nil {
		t.Fatal(err)
	}
	failed := false
	for _, d := range p2.GetBuildDefinition().GetResolvedDependencies() {
		failed = failed || d.Validate() != nil
	}
	if !failed {
		t.Error("a 2-byte sha256 passed ResourceDescriptor.Validate")
	}
}
