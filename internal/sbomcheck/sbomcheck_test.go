package sbomcheck

import (
	"os"
	"strings"
	"testing"
)

// The script make runs before the tests installs the syft the tests pin.
func TestInstallScriptPinsTheSameSyft(t *testing.T) {
	data, err := os.ReadFile("../../scripts/install-test-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	if want := "install " + SyftPackage + " " + SyftVersion + "\n"; !strings.Contains(string(data), want) {
		t.Errorf("scripts/install-test-tools.sh does not say %q", want)
	}
}
