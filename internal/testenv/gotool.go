package testenv

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
	"time"
)

// GoTool returns the path of a Go command installed with `go install
// PKG@VERSION`, the version pinned by the caller and checked by the Go
// checksum database. It is installed once into a cache directory
// ($CAIRN_TEST_TOOLS, else the user's cache directory under
// cairn-test-tools/NAME@VERSION) and reused; installing needs the Go
// module proxy, so without the binary it skips unless the network is
// allowed (CAIRN_TEST_NETWORK=1, or Strict), and fails in CI if the
// install fails.
func GoTool(t testing.TB, pkg, version string) string {
	t.Helper()
	name := path.Base(pkg)
	dir := toolDir(t, name+"@"+version)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if os.Getenv("CAIRN_TEST_NETWORK") != "1" && !Strict() {
		t.Skipf("%s@%s is not installed in %s, and installing needs the Go module proxy; set CAIRN_TEST_NETWORK=1", pkg, version, dir)
	}
	goBin := NeedTool(t, "go")
	tmp, err := os.MkdirTemp(dir, ".install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command(goBin, "install", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		SkipOrFail(t, "go install "+pkg+"@"+version+": "+err.Error()+"\n"+string(out))
	}
	// Renamed into place: a test running beside this one never sees half
	// a binary.
	if err := os.Rename(filepath.Join(tmp, name), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("go install %s@%s: %s", pkg, version, time.Since(start).Round(time.Second))
	return bin
}

// GoModuleDir returns the directory of a Go module's files: with a
// version, as `go mod download` fetches and checks it against the Go
// checksum database; without, the version the main module requires, as
// go.sum pins it.
func GoModuleDir(t testing.TB, module, version string) string {
	t.Helper()
	goBin := NeedTool(t, "go")
	arg := module
	if version != "" {
		arg += "@" + version
	}
	// go list knows a required module already in the cache; go mod
	// download reads the cache too, and fetches through the proxy what is
	// not there (failing, or skipping on a laptop, without it).
	for _, args := range [][]string{{"list", "-m", "-json", arg}, {"mod", "download", "-json", arg}} {
		if args[0] == "list" && version != "" {
			continue
		}
		cmd := exec.Command(goBin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var m struct{ Dir, Error string }
		if err == nil {
			err = json.Unmarshal(out, &m)
		}
		if err == nil && m.Dir != "" {
			return m.Dir
		}
		if args[0] == "mod" {
			SkipOrFail(t, "go mod download "+arg+": "+m.Error+" "+stderr.String())
		}
	}
	return ""
}

func toolDir(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv("CAIRN_TEST_TOOLS")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(c, "cairn-test-tools")
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
