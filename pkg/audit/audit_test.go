package audit

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/digest"
)

// git runs the real git in dir with a fixed identity and no user config.
func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	p := testenv.NeedTool(t, "git")
	cmd := exec.Command(p, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_AUTHOR_DATE=@0 +0000", "GIT_COMMITTER_DATE=@0 +0000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// repoFiles is the fixture project; "m4/" is where autotools macros live.
var repoFiles = map[string]string{
	".gitignore":          "configure\n",
	"README":              "a project\n",
	"configure.ac":        "AC_INIT([p], [1.0])\n",
	"m4/ax_check.m4":      "dnl a macro git has\n",
	"src/main.c":          "int main(void) { return 0; }\n",
	"tests/files/good.xz": "\xfd7zXZ\x00 not really\n",
}

// makeRepo commits repoFiles (plus an executable and a symlink), tags the
// commit v1.0 (annotated), and returns the work tree and a bare clone.
func makeRepo(t testing.TB) (work, bare string) {
	t.Helper()
	work = filepath.Join(t.TempDir(), "work")
	for p, c := range repoFiles {
		full := filepath.Join(work, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(work, "autogen.sh"), []byte("#!/bin/sh\nautoreconf -fi\n"), 0o755)
	os.Symlink("README", filepath.Join(work, "README.md"))
	runGit(t, work, "init", "-q", "-b", "main")
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "v1.0")
	runGit(t, work, "tag", "-a", "-m", "release", "v1.0")
	bare = filepath.Join(t.TempDir(), "p.git")
	runGit(t, work, "clone", "-q", "--bare", "--no-local", work, bare)
	return work, bare
}

// tarOf packs the work tree's files (not .git) under "p-1.0/", changed by
// edit: a value "" removes the path, anything else replaces or adds it.
func tarOf(t testing.TB, work string, edit map[string]string, exec map[string]bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "p-1.0/", Typeflag: tar.TypeDir, Mode: 0o755})
	err := filepath.Walk(work, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(work, p)
		if rel == ".git" {
			return filepath.SkipDir
		}
		if fi.IsDir() {
			return nil
		}
		if v, ok := edit[rel]; ok && v == "" {
			return nil
		}
		h := &tar.Header{Name: "p-1.0/" + rel, Mode: int64(fi.Mode().Perm())}
		var body []byte
		if fi.Mode()&os.ModeSymlink != 0 {
			h.Typeflag = tar.TypeSymlink
			h.Linkname, _ = os.Readlink(p)
		} else {
			h.Typeflag = tar.TypeReg
			body, _ = os.ReadFile(p)
			if v, ok := edit[rel]; ok {
				body = []byte(v)
			}
			if x, ok := exec[rel]; ok {
				h.Mode = map[bool]int64{true: 0o755, false: 0o644}[x]
			}
		}
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, v := range edit {
		if _, err := os.Lstat(filepath.Join(work, p)); os.IsNotExist(err) && v != "" {
			tw.WriteHeader(&tar.Header{Name: "p-1.0/" + p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(v))})
			tw.Write([]byte(v))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestArchive(t *testing.T) {
	work, bare := makeRepo(t)
	tests := []struct {
		name     string
		edit     map[string]string
		exec     map[string]bool
		verdict  Verdict
		onlyArch []string
		onlyGit  []string
		changed  []string
	}{
		{name: "identical", verdict: Identical},
		{name: "archive misses a file", edit: map[string]string{".gitignore": ""},
			verdict: IdenticalExcept, onlyGit: []string{".gitignore"}},
		{name: "archive adds a file", edit: map[string]string{"m4/build-to-host.m4": "dnl not in git\n", "configure": "#!/bin/sh\n"},
			verdict: IdenticalExcept, onlyArch: []string{"configure", "m4/build-to-host.m4"}},
		{name: "archive changes a file", edit: map[string]string{"tests/files/good.xz": "payload"},
			verdict: Differs, changed: []string{"tests/files/good.xz"}},
		{name: "archive changes a mode", exec: map[string]bool{"autogen.sh": false},
			verdict: Differs, changed: []string{"autogen.sh"}},
		{name: "changes and additions", edit: map[string]string{"src/main.c": "int main;", "extra": "x", "README": ""},
			verdict: Differs, onlyArch: []string{"extra"}, onlyGit: []string{"README"}, changed: []string{"src/main.c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tarOf(t, work, tc.edit, tc.exec)
			for _, repo := range []string{work, bare} {
				for _, rev := range []string{"v1.0", "main", runGit(t, work, "rev-parse", "HEAD")} {
					rep, err := Archive(context.Background(), bytes.NewReader(data), repo, rev, digest.Strip(1))
					if err != nil {
						t.Fatal(err)
					}
					if rep.Verdict != tc.verdict {
						t.Errorf("%s@%s: got %v, want %v (%+v)", repo, rev, rep.Verdict, tc.verdict, rep)
					}
					var changed []string
					for _, c := range rep.Changed {
						changed = append(changed, c.Path)
					}
					if !eq(rep.OnlyInArchive, tc.onlyArch) || !eq(rep.OnlyInGit, tc.onlyGit) || !eq(changed, tc.changed) {
						t.Errorf("got only-in-archive %q, only-in-git %q, changed %q; want %q, %q, %q",
							rep.OnlyInArchive, rep.OnlyInGit, changed, tc.onlyArch, tc.onlyGit, tc.changed)
					}
					if rep.Commit != runGit(t, work, "rev-parse", "HEAD") {
						t.Errorf("commit: got %s", rep.Commit)
					}
				}
			}
		})
	}
}

func eq(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b)) }

// TestGitTreeMatchesDigest: the git side, read through go-git, agrees with
// digest's git tree id of the same files.
func TestGitTreeMatchesDigest(t *testing.T) {
	work, _ := makeRepo(t)
	m, err := digest.FromArchive(context.Background(), bytes.NewReader(tarOf(t, work, nil, nil)), digest.Strip(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.GitTree(), runGit(t, work, "rev-parse", "HEAD^{tree}"); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	gt, _, err := GitTree(context.Background(), work, "v1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gt, FromManifest(m)) {
		t.Errorf("go-git tree %v\ndigest tree %v", gt, FromManifest(m))
	}
}

func TestErrors(t *testing.T) {
	work, _ := makeRepo(t)
	data := tarOf(t, work, nil, nil)
	if _, err := Archive(context.Background(), bytes.NewReader(data), work, "v9.9"); !errors.Is(err, ErrRevision) {
		t.Errorf("unknown tag: got %v, want ErrRevision", err)
	}
	if _, err := Archive(context.Background(), bytes.NewReader(data), t.TempDir(), "main"); err == nil {
		t.Error("not a repository: got no error")
	}
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../x", Typeflag: tar.TypeReg})
	tw.Close()
	if _, err := Archive(context.Background(), &evil, work, "main", archive.Name("evil.tar")); !errors.Is(err, archive.ErrUnsafePath) {
		t.Errorf("hostile archive: got %v, want ErrUnsafePath", err)
	}
}

func TestChangeDescribe(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Archive: File{"100644", "a"}, Git: File{"100644", "b"}}, "content differs"},
		{Change{Archive: File{"100644", "a"}, Git: File{"100755", "a"}}, "mode 100644 in archive, 100755 in git"},
		{Change{Archive: File{"100644", "a"}, Git: File{"120000", "b"}}, "file in archive, symlink in git"},
		{Change{Archive: File{"100755", "a"}, Git: File{"100644", "b"}}, "content and mode differ (100755 in archive, 100644 in git)"},
	} {
		if got := tc.c.Describe(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
