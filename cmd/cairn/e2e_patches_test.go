package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluekeyes/go-gitdiff/gitdiff"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/stack"
)

// checkPatches shows, on a store where the default stack was built, that
// the patched code is what was compiled:
//
//   - the key line of each step that uses a patched source names both the
//     patched tree (what the sandbox mounted at /src/NAME) and the pristine
//     one, in cairn plan --explain;
//   - every hunk of every applied patch is in that stored patched tree and
//     was not in the pristine one;
//   - for musl's iconv fix (CVE-2025-26519), a test program of this
//     repository, linked static against the musl the stack built, passes,
//     and the same program linked against a musl built from the pristine
//     tree in the same sandbox on the same seed fails.
func checkPatches(t *testing.T, bin, repo, storeDir string) {
	st, err := stack.Load(filepath.Join(repo, "toolchain", "stack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var patched []stack.Source
	for _, s := range st.Sources {
		if s.Patches != nil {
			patched = append(patched, s)
		}
	}
	if len(patched) == 0 {
		t.Fatal("the default stack patches no source")
	}

	t.Run("plan --explain names the pristine and the patched tree", func(t *testing.T) {
		out := runCairnIn(t, bin, repo, "plan", "--explain", "--store", storeDir)
		for _, r := range st.Recipes {
			for _, name := range r.Sources {
				src := st.Source(name)
				if src.Patches == nil {
					continue
				}
				want := fmt.Sprintf("source %s %s pristine %s", name, src.Patches.Tree, src.Pin.Tree)
				if !strings.Contains(out, "\n"+r.Name+":\n") || !strings.Contains(out, want) {
					t.Errorf("step %s: no key line %q in\n%s", r.Name, want, out)
				}
			}
		}
	})

	t.Run("every hunk is in the tree the step saw", func(t *testing.T) {
		for _, src := range patched {
			tree := filepath.Join(storeDir, "trees", "sha256", strings.TrimPrefix(src.Patches.Tree, "sha256:"))
			pristine := filepath.Join(storeDir, "trees", "sha256", strings.TrimPrefix(src.Pin.Tree, "sha256:"))
			for _, p := range patchTexts(t, storeDir, src) {
				n := checkHunks(t, src.Name, p.name, p.data, tree, pristine)
				cves := strings.Join(src.Patches.Resolves[p.name], ", ")
				if cves == "" {
					cves = "no CVE"
				}
				t.Logf("source %s: %s (%s): %d hunks in the patched tree %s", src.Name, p.name, cves, n, src.Patches.Tree)
			}
		}
	})

	t.Run("musl iconv CVE-2025-26519: fixed in the built musl, not in the pristine one", func(t *testing.T) {
		seedDir, muslOut := stepOutput(t, bin, repo, storeDir, "", "musl")
		out, err := iconvCheck(t, bin, seedDir, muslOut)
		if err != nil || !strings.HasPrefix(out, "ok:") {
			t.Fatalf("against the stack's musl: %v\n%s", err, out)
		}
		t.Logf("stack's musl %s: %s", muslOut, strings.TrimSpace(out))

		// The same recipe on the pristine tree, in the same store and seed.
		dir := t.TempDir()
		musl := st.Source("musl")
		copyDirFiles(t, filepath.Join(repo, "toolchain", "recipes", "musl"), filepath.Join(dir, "recipes", "musl"))
		copyDirFiles(t, filepath.Join(repo, "toolchain"), dir, "seed.lock")
		text := fmt.Sprintf("name = \"pristine-musl\"\nsource_date_epoch = %d\nrecipes = [\"recipes/musl\"]\ntransports = [\"store\"]\n\n[seed]\nlock = \"seed.lock\"\n\n"+
			"[[source]]\nname = \"musl\"\nversion = %q\nlicense = %q\ntree = %q\narchive_sha256 = %q\nstrip = %d\n",
			st.SourceDateEpoch, musl.Version, musl.License, musl.Pin.Tree, musl.Pin.ArchiveSHA256, musl.Strip)
		stackFile := filepath.Join(dir, "stack.toml")
		if err := os.WriteFile(stackFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		runCairnIn(t, bin, repo, "build", "musl", "--stack", stackFile, "--store", storeDir, "--out", filepath.Join(dir, "out"), "-j2")
		_, pristineOut := stepOutput(t, bin, repo, storeDir, stackFile, "musl")
		if pristineOut == muslOut {
			t.Fatalf("the pristine musl's output is the patched one's: %s", muslOut)
		}
		out, err = iconvCheck(t, bin, seedDir, pristineOut)
		if err == nil || !strings.HasPrefix(out, "VULNERABLE:") {
			t.Fatalf("against the pristine musl: want the check to fail, got %v\n%s", err, out)
		}
		t.Logf("pristine musl %s: %s", pristineOut, strings.TrimSpace(out))
	})
}

type patchText struct {
	name string
	data []byte
}

// patchTexts reads src's applied patches: the Debian ones from the pinned
// packaging tarball in the store, the local ones from the repository.
func patchTexts(t *testing.T, storeDir string, src stack.Source) []patchText {
	t.Helper()
	var out []patchText
	if len(src.Patches.Series) > 0 {
		in, err := os.Open(filepath.Join(storeDir, "blobs", "sha256", src.Patches.DebianTarSHA256))
		if err != nil {
			t.Fatalf("source %s: the packaging tarball is not in the store: %v", src.Name, err)
		}
		defer in.Close()
		dir := filepath.Join(t.TempDir(), "debian")
		if _, err := archive.Unpack(context.Background(), in, dir); err != nil {
			t.Fatal(err)
		}
		for _, n := range src.Patches.Series {
			data, err := os.ReadFile(filepath.Join(dir, "debian", "patches", n))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, patchText{n, data})
		}
	}
	for _, l := range src.Patches.Local {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, patchText{filepath.Base(l), data})
	}
	return out
}

// checkHunks checks that each hunk's new side (context and added lines,
// contiguous) is in the patched tree's file and not in the pristine one's,
// and returns how many hunks it checked.
func checkHunks(t *testing.T, source, name string, data []byte, tree, pristine string) int {
	t.Helper()
	files, _, err := gitdiff.Parse(bytes.NewReader(data))
	if err != nil || len(files) == 0 {
		t.Fatalf("source %s: %s: %v (%d files)", source, name, err, len(files))
	}
	git := bytes.Contains(data, []byte("\ndiff --git ")) || bytes.HasPrefix(data, []byte("diff --git "))
	n := 0
	for _, f := range files {
		file := f.NewName
		if !git {
			_, file, _ = strings.Cut(file, "/")
		}
		got, err := os.ReadFile(filepath.Join(tree, file))
		if err != nil {
			t.Errorf("source %s: %s: %v", source, name, err)
			continue
		}
		before, _ := os.ReadFile(filepath.Join(pristine, file))
		for i, fr := range f.TextFragments {
			var b strings.Builder
			for _, l := range fr.Lines {
				if l.New() {
					b.WriteString(l.Line)
				}
			}
			hunk := b.String()
			if !strings.Contains(string(got), hunk) {
				t.Errorf("source %s: %s: %s hunk %d (%s) is not in the patched tree", source, name, file, i+1, strings.TrimSpace(fr.Header()))
			}
			if strings.Contains(string(before), hunk) {
				t.Errorf("source %s: %s: %s hunk %d is in the pristine tree already: the check proves nothing", source, name, file, i+1)
			}
			n++
		}
	}
	return n
}

// stepOutput returns the seed tree and the stored output of step, from
// cairn plan --json on the stack file (the default stack when "").
func stepOutput(t *testing.T, bin, repo, storeDir, stackFile, step string) (seedDir, output string) {
	t.Helper()
	args := []string{"plan", "--json", "--store", storeDir}
	if stackFile != "" {
		args = append(args, "--stack", stackFile)
	}
	var status []plan.Status
	if err := json.Unmarshal([]byte(runCairnIn(t, bin, repo, args...)), &status); err != nil {
		t.Fatal(err)
	}
	for _, s := range status {
		if s.ID != step {
			continue
		}
		if !s.Cached {
			t.Fatalf("step %s is not built", step)
		}
		for _, l := range s.Lines {
			if d, ok := strings.CutPrefix(l, "seed sha256:"); ok {
				seedDir = filepath.Join(storeDir, "trees", "sha256", d)
			}
		}
		return seedDir, filepath.Join(storeDir, "outputs", "sha256", strings.TrimPrefix(s.Output, "sha256:"))
	}
	t.Fatalf("no step %s in the plan", step)
	return "", ""
}

// iconvCheck compiles testdata/patches/iconv-euckr.c static against the
// musl in muslOut and runs it, in a cairn sandbox on the seed.
func iconvCheck(t *testing.T, bin, seedDir, muslOut string) (string, error) {
	t.Helper()
	testdata, err := filepath.Abs(filepath.Join("testdata", "patches"))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command(bin, "sandbox", "run", "--root", seedDir, "--ro", "/deps/musl="+muslOut, "--ro", "/t="+testdata, "--rw", "/out="+out, "--",
		"/bin/sh", "-ec", "/deps/musl/bin/musl-gcc -static -O2 -o /out/iconv-euckr /t/iconv-euckr.c; /out/iconv-euckr")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil && !strings.HasPrefix(stdout.String(), "VULNERABLE:") {
		t.Logf("sandbox: %v\n%s", err, stderr.String())
	}
	return stdout.String(), err
}

func runCairnIn(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cairn %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// copyDirFiles copies the regular files of src (only those named, when
// names are given) into dst.
func copyDirFiles(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	if len(names) == 0 {
		ents, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(src, n))
		if err := os.WriteFile(filepath.Join(dst, n), data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}
