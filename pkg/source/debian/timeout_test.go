package debian

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
)

// TestUpdateStalledArchive points apt-get at a server on 127.0.0.1 that
// accepts connections and never answers: with a 2 s timeout the update
// fails, naming the host, long before apt's own 120 s default would.
func TestUpdateStalledArchive(t *testing.T) {
	testenv.NeedTool(t, "apt-get")
	addr := testenv.StalledServer(t, testenv.StallSilent)
	etc := t.TempDir()
	os.MkdirAll(filepath.Join(etc, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(etc, "sources.list"), []byte("deb [trusted=yes] http://"+addr+"/debian bookworm main\n"), 0o644)
	osr := filepath.Join(etc, "os-release")
	os.WriteFile(osr, []byte("VERSION_CODENAME=bookworm\n"), 0o644)
	a := New(Config{SourceDir: etc, OSRelease: osr, Suites: []string{"bookworm"}, Timeout: 2 * time.Second}, t.TempDir())
	if err := a.Prepare(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	// apt-get update exits 0 when a fetch fails, with a warning; here
	// every failure is an error, so that the test sees what apt said.
	// No retries, to keep the test short.
	err := a.run(ctx, a.dir, "-o", "APT::Update::Error-Mode=any", "-o", "Acquire::Retries=0", "update")
	if ctx.Err() != nil {
		t.Fatalf("apt-get update still running after 100s: the timeout was not applied")
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	t.Logf("apt-get update: %v", err)
	host, port, _ := strings.Cut(addr, ":")
	// apt reports a server that never answers as "Connection failed",
	// naming the address as "[IP: HOST PORT]".
	if err == nil || !strings.Contains(msg, "Connection failed [IP: "+host+" "+port+"]") {
		t.Errorf("got %q, want apt's connection failure naming %s", msg, addr)
	}
}
