package seed

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

// scripts/lock-seed.sh resolves a lock this package parses, with every
// root package in it, and writes the same bytes twice in a row.
func TestLockScript(t *testing.T) {
	testenv.NeedNetwork(t)
	testenv.NeedTool(t, "apt-get")
	bash := testenv.NeedTool(t, "bash")
	dir := t.TempDir()
	var outs [2][]byte
	for i := range outs {
		out := filepath.Join(dir, "seed.lock")
		cmd := exec.Command(bash, "../../scripts/lock-seed.sh", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("lock-seed.sh: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = b
	}
	if string(outs[0]) != string(outs[1]) {
		t.Error("two runs of lock-seed.sh wrote different locks")
	}
	got, err := ParseLockFile(filepath.Join(dir, "seed.lock"))
	if err != nil {
		t.Fatal(err)
	}
	want := repoLock(t)
	if len(got.Links) != len(want.Links) {
		t.Errorf("links: got %d, want %d", len(got.Links), len(want.Links))
	}
	if string(outs[0]) != mustRead(t, "../../toolchain/seed.lock") {
		// Not a failure: the archive moves on (security updates).
		t.Logf("the archive has moved on from toolchain/seed.lock: %d packages now, %d locked; re-lock when convenient", len(got.Packages), len(want.Packages))
	}
	names := map[string]bool{}
	for _, p := range got.Packages {
		names[p.Name] = true
	}
	for _, p := range want.Packages {
		if !names[p.Name] {
			t.Errorf("fresh lock lacks %s", p.Name)
		}
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
