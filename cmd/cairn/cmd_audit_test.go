package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

var (
	auditBinOnce sync.Once
	auditBin     string
	auditBinErr  error
)

// cairnBinary builds cairn once per test run, for every test that runs it
// as a process (real exit statuses, two processes on one store, e2e).
func cairnBinary(t testing.TB) string {
	t.Helper()
	auditBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-test-")
		if err != nil {
			auditBinErr = err
			return
		}
		auditBin = filepath.Join(dir, "cairn")
		if out, err := exec.Command("go", "build", "-o", auditBin, ".").CombinedOutput(); err != nil {
			auditBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if auditBinErr != nil {
		t.Fatal(auditBinErr)
	}
	return auditBin
}

// runCairn runs the binary and returns stdout, stderr and the exit status.
func runCairn(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cairnBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

type tfile struct {
	name, body string
	mode       int64
}

func writeTgz(t *testing.T, path string, files []tfile) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: "p-1.0/" + f.name, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.body))})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAuditCommand(t *testing.T) {
	gitPath := testenv.NeedTool(t, "git")
	base := []tfile{{"configure.ac", "AC_INIT\n", 0o644}, {"autogen.sh", "#!/bin/sh\n", 0o755}, {"m4/ax.m4", "dnl\n", 0o644}}
	repo := filepath.Join(t.TempDir(), "repo")
	for _, f := range base {
		p := filepath.Join(repo, f.name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(f.body), os.FileMode(f.mode))
	}
	git := func(args ...string) {
		cmd := exec.Command(gitPath, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "release")
	git("tag", "v1.0")
	git("branch", "release-1.0") // a branch name, whatever git init's default is

	dir := t.TempDir()
	arch := func(name string, files []tfile) string {
		p := filepath.Join(dir, name)
		writeTgz(t, p, files)
		return p
	}
	same := arch("same.tar.gz", base)
	missing := arch("missing.tar.gz", base[:2])
	added := arch("added.tar.gz", append(append([]tfile(nil), base...), tfile{"m4/build-to-host.m4", "dnl evil\n", 0o644}))
	changed := arch("changed.tar.gz", []tfile{base[0], {"autogen.sh", "#!/bin/sh\nevil\n", 0o755}, base[2]})
	refused := filepath.Join(dir, "refused.tar")
	os.WriteFile(refused, []byte(strings.Repeat("\x00", 100)), 0o644)

	tests := []struct {
		name string
		args []string
		code int
		out  string // exact stdout, or "" to not check
		err  string // substring of stderr
	}{
		{"identical", []string{"audit", same, "--git", repo, "--commit", "v1.0", "--strip", "1"}, 0, "identical\n", ""},
		{"missing", []string{"audit", missing, "--git", repo, "--commit", "v1.0", "--strip", "1"}, 1,
			"identical except\nonly in git: m4/ax.m4\n", ""},
		{"added", []string{"audit", added, "--git", repo, "--commit", "HEAD", "--strip", "1"}, 1,
			"identical except\nonly in archive: m4/build-to-host.m4\n", ""},
		{"changed", []string{"audit", changed, "--git", repo, "--commit", "release-1.0", "--strip", "1"}, 2,
			"differs\nchanged: autogen.sh: content differs\n", ""},
		{"no strip", []string{"audit", same, "--git", repo, "--commit", "v1.0"}, 1, "", ""},
		{"unknown revision", []string{"audit", same, "--git", repo, "--commit", "v2.0"}, 3, "", "revision not found"},
		{"not an archive", []string{"audit", refused, "--git", repo, "--commit", "v1.0"}, 3, "", "refused.tar"},
		{"missing archive", []string{"audit", filepath.Join(dir, "nope.tar"), "--git", repo, "--commit", "v1.0"}, 3, "", "nope.tar"},
		{"no --git", []string{"audit", same, "--commit", "v1.0"}, 4, "", "--git"},
		{"unknown flag", []string{"audit", same, "--git", repo, "--commit", "v1.0", "--frobnicate"}, 4, "", "frobnicate"},
		{"two archives", []string{"audit", same, same, "--git", repo, "--commit", "v1.0"}, 4, "", "accepts 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCairn(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit status: got %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if tc.out != "" && out != tc.out {
				t.Errorf("stdout: got %q, want %q", out, tc.out)
			}
			if !strings.Contains(errOut, tc.err) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.err)
			}
		})
	}

	out, _, code := runCairn(t, "audit", added, "--git", repo, "--commit", "v1.0", "--strip", "1", "--json")
	var rep struct {
		Verdict       string   `json:"verdict"`
		OnlyInArchive []string `json:"only_in_archive"`
		OnlyInGit     []string `json:"only_in_git"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || rep.Verdict != "identical except" || len(rep.OnlyInArchive) != 1 || rep.OnlyInGit == nil {
		t.Errorf("--json: exit %d, %+v", code, rep)
	}
}

func TestDigestAndUnpackCommands(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "p.tar.gz")
	writeTgz(t, a, []tfile{{"hello", "hello\n", 0o644}})
	out, errOut, code := runCairn(t, "digest", "--strip", "1", a)
	want := "sha256:671862705eb6c61509e0da4037463e066dceb4f6931f40e13373eb858dc87e36\ngit-tree:b4d01e9b0c4a9356736dfddf8830ba9a54f5271c\n"
	if code != 0 || out != want {
		t.Errorf("digest: exit %d, stdout %q, stderr %q; want 0, %q", code, out, errOut, want)
	}
	dst := filepath.Join(dir, "out")
	if _, errOut, code := runCairn(t, "unpack", "--strip", "1", a, dst); code != 0 {
		t.Fatalf("unpack: exit %d: %s", code, errOut)
	}
	if out, _, code := runCairn(t, "digest", dst); code != 0 || out != want {
		t.Errorf("digest of the unpacked tree: exit %d, %q, want %q", code, out, want)
	}
	if out, _, _ := runCairn(t, "digest", "--json", dst); !strings.Contains(out, `"git_tree": "b4d01e9b0c4a9356736dfddf8830ba9a54f5271c"`) {
		t.Errorf("digest --json: %s", out)
	}

	evil := filepath.Join(dir, "evil.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"})
	tw.WriteHeader(&tar.Header{Name: "l/passwd", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	os.WriteFile(evil, buf.Bytes(), 0o644)
	dst2 := filepath.Join(dir, "evil-out")
	_, errOut, code = runCairn(t, "unpack", evil, dst2)
	if code != 1 || !strings.Contains(errOut, evil) || !strings.Contains(errOut, `"l"`) {
		t.Errorf("unpack evil: exit %d, stderr %q; want 1 naming the archive and entry", code, errOut)
	}
	if _, err := os.Lstat(dst2); !os.IsNotExist(err) {
		t.Errorf("refused unpack left %s", dst2)
	}
	if _, _, code := runCairn(t, "unpack", evil); code != 2 {
		t.Errorf("unpack with one argument: exit %d, want 2", code)
	}
}
