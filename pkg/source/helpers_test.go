package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// fixture is a small source: its files, its release archive (tar.gz with
// one leading directory) and its pins.
type fixture struct {
	files map[string]string // name -> content; names ending in .sh are executable
	tgz   []byte
	sha   string // archive sha256
	tree  string // tree digest
}

func newFixture(t testing.TB, salt string) *fixture {
	t.Helper()
	f := &fixture{files: map[string]string{
		"README":       "a fixture source " + salt + "\n",
		"src/main.c":   "int main(void) { return 0; } /* " + salt + " */\n",
		"configure.sh": "#!/bin/sh\necho configured\n",
	}}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(f.files))
	for n := range f.files {
		names = append(names, n)
	}
	sort.Strings(names)
	tw.WriteHeader(&tar.Header{Name: "fixture-1.0/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "fixture-1.0/src/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		c := f.files[n]
		tw.WriteHeader(&tar.Header{Name: "fixture-1.0/" + n, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(c))})
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
	f.tgz = buf.Bytes()
	s := sha256.Sum256(f.tgz)
	f.sha = hex.EncodeToString(s[:])
	m, err := digest.FromArchive(context.Background(), bytes.NewReader(f.tgz), digest.Strip(1))
	if err != nil {
		t.Fatal(err)
	}
	f.tree = m.TreeDigest()
	return f
}

// writeFiles writes the fixture's files into dir.
func (f *fixture) writeFiles(t testing.TB, dir string) {
	t.Helper()
	for n, c := range f.files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
}

// gitRun runs git in dir with a fixed identity and no user configuration.
func gitRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// gitRepo makes a repository holding the fixture's files in one commit and
// returns its directory, commit and tree.
func (f *fixture) gitRepo(t testing.TB) (dir, commit, tree string) {
	t.Helper()
	testenv.NeedTool(t, "git")
	dir = t.TempDir()
	gitRun(t, dir, "init", "-q", "-b", "main")
	f.writeFiles(t, dir)
	gitRun(t, dir, "add", "-A")
	gitRun(t, dir, "commit", "-q", "-m", "fixture")
	return dir, gitRun(t, dir, "rev-parse", "HEAD"), gitRun(t, dir, "rev-parse", "HEAD^{tree}")
}

// bareMirror clones repo bare into MIRROR/git/example.invalid/git/NAME.git
// and returns the URL it serves.
func bareMirror(t testing.TB, mirror, repo, name string) string {
	t.Helper()
	dst := filepath.Join(mirror, "git", "example.invalid", "git", name+".git")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	gitRun(t, mirror, "clone", "-q", "--bare", repo, dst)
	return "https://example.invalid/git/" + name
}

// stackOf parses a stack with the given [[source]] tables.
func stackOf(t testing.TB, dir string, sources ...string) *stack.Stack {
	t.Helper()
	text := "name = \"test\"\nsource_date_epoch = 0\n[seed]\nlock = \"seed.lock\"\n"
	for _, s := range sources {
		text += "\n[[source]]\n" + s + "\n"
	}
	st, err := stack.Parse(filepath.Join(dir, "stack.toml"), []byte(text))
	if err != nil {
		t.Fatalf("stack: %v\n%s", err, text)
	}
	return st
}

// sourceTOML is the [[source]] table of a fixture source.
func sourceTOML(name string, f *fixture, extra string) string {
	return fmt.Sprintf("name = %q\nversion = \"1.0\"\nlicense = \"MIT\"\ntree = %q\narchive_sha256 = %q\nstrip = 1\n%s",
		name, f.tree, f.sha, extra)
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// storeEntries lists what the store holds in trees/, blobs/ and tmp/.
func storeEntries(t testing.TB, s *store.Store) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"trees/sha256", "blobs/sha256", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(s.Dir(), d))
		for _, e := range ents {
			out = append(out, d+"/"+e.Name())
		}
	}
	return out
}
