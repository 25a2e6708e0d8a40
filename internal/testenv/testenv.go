// Package testenv lets a test say what it needs from the machine (root, a
// tool on PATH, the network to the Debian archive) and skip without it on a
// laptop, while in CI the same missing need is a failure: CI sets CI=true or
// CAIRN_TEST_STRICT=1, and there a skip would hide a missing install step.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether skips are turned into failures.
func Strict() bool {
	return os.Getenv("CAIRN_TEST_STRICT") == "1" || os.Getenv("CI") == "true"
}

// SkipOrFail skips t with why, or fails it when Strict.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("required in CI: %s", why)
	}
	t.Skip(why)
}

// NeedRoot skips (or fails in CI) unless the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root")
	}
}

// NeedTool skips (or fails in CI) unless name is on PATH, and returns its path.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, name+" not on PATH (scripts/install-deps.sh installs it)")
	}
	return p
}

// NeedNetwork skips unless CAIRN_TEST_NETWORK=1 or Strict: tests that reach
// the Debian archive run in CI, which has it, and on a laptop only on request.
func NeedNetwork(t testing.TB) {
	t.Helper()
	if os.Getenv("CAIRN_TEST_NETWORK") != "1" && !Strict() {
		t.Skip("needs the Debian archive; set CAIRN_TEST_NETWORK=1")
	}
}
