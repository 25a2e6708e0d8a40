package main

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

// The end-to-end test builds the default stack for real, from the seed and
// the pinned sources, twice, and checks what the images hold. It takes
// minutes, so it runs from `make e2e` (CAIRN_E2E=1), which .ci/run calls.
func TestEndToEnd(t *testing.T) {
	if os.Getenv("CAIRN_E2E") != "1" {
		t.Skip("the full stack build runs with CAIRN_E2E=1 (make e2e)")
	}
	testenv.NeedRoot(t)
	testenv.NeedNetwork(t)
	bin := cairnBinary(t)
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()

	first := buildStack(t, bin, repo, filepath.Join(work, "a", "store"), filepath.Join(work, "a", "out"), nil, "-j2")
	t.Run("second build rebuilds nothing", func(t *testing.T) {
		cmd := exec.Command(bin, "build", "--store", filepath.Join(work, "a", "store"), "--out", filepath.Join(work, "a", "out"))
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cairn build: %v\n%s", err, out)
		}
		if !regexp.MustCompile(`\b0 built\b`).Match(out) {
			t.Errorf("second build ran steps:\n%s", out)
		}
	})

	// Elsewhere, with another umask, time zone, locale, job count and a
	// store at another path: the images must be the same bytes.
	second := buildStack(t, bin, repo, filepath.Join(work, "b", "other", "store"), filepath.Join(work, "b", "out"),
		[]string{"UMASK=077", "TZ=Pacific/Kiritimati", "LC_ALL=C.UTF-8", "CAIRN_E2E_CANARY=1"}, "-j1")
	t.Run("byte-identical rebuild", func(t *testing.T) {
		for name, d := range first {
			if second[name] != d {
				t.Errorf("image %s: first build %s, second %s", name, d, second[name])
			}
		}
		if len(first) == 0 || len(first) != len(second) {
			t.Errorf("images: first %v, second %v", first, second)
		}
		// Everything else written beside the images is a function of the
		// inputs too: docker-archives, SBOMs, provenance.
		for name := range first {
			for _, suffix := range []string{".docker.tar", ".spdx.json", ".cdx.json", ".provenance.json"} {
				a, errA := os.ReadFile(filepath.Join(work, "a", "out", name+suffix))
				b, errB := os.ReadFile(filepath.Join(work, "b", "out", name+suffix))
				if errA != nil || errB != nil {
					t.Errorf("%s%s: %v, %v", name, suffix, errA, errB)
				} else if !bytes.Equal(a, b) {
					t.Errorf("%s%s differs between the two builds", name, suffix)
				}
			}
		}
	})

	t.Run("SBOMs describe the image and nothing else", func(t *testing.T) { checkSBOMs(t, repo, filepath.Join(work, "a", "out"), first) })

	t.Run("cairn verify reports every output reproducible", func(t *testing.T) {
		cmd := exec.Command(bin, "verify", "--store", filepath.Join(work, "a", "store"), "--work", filepath.Join(work, "verify"))
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cairn verify: %v\n%s", err, out)
		}
		t.Logf("cairn verify:\n%s", out)
		if n := strings.Count(string(out), "reproducible"); n < 5 || strings.Contains(string(out), "DIFFERS") {
			t.Errorf("cairn verify: %d rows reproducible, want every step and image:\n%s", n, out)
		}
	})

	// An offline farm: everything the stack needs written to a mirror on
	// this machine, then a cold build that may use only that mirror.
	t.Run("offline build from a cairn mirror", func(t *testing.T) {
		mirror := filepath.Join(work, "mirror")
		cmd := exec.Command(bin, "mirror", "--store", filepath.Join(work, "a", "store"), mirror)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cairn mirror: %v\n%s", err, out)
		}
		offline := buildStack(t, bin, repo, filepath.Join(work, "c", "store"), filepath.Join(work, "c", "out"), nil,
			"--offline", "--mirror", mirror)
		for name, d := range first {
			if offline[name] != d {
				t.Errorf("image %s: online build %s, offline build %s", name, d, offline[name])
			}
		}
	})

	t.Run("store: corrupt objects, repair, concurrency, kill -9", func(t *testing.T) {
		storeE2E(t, bin, repo, filepath.Join(work, "a", "store"), first)
	})

	roots := map[string]string{}
	for name := range first {
		matches, _ := filepath.Glob(filepath.Join(work, "a", "out", name+".rootfs.sha256-*.tar.xz"))
		if len(matches) != 1 {
			t.Fatalf("image %s: want one tarball in out/, got %v", name, matches)
		}
		dir := filepath.Join(work, "roots", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// GNU tar, not cairn, unpacks: the tarball must stand on its own.
		if out, err := exec.Command("tar", "-xJf", matches[0], "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("tar -x %s: %v\n%s", matches[0], err, out)
		}
		roots[name] = dir
	}

	t.Run("busybox runs from its rootfs", func(t *testing.T) {
		root := roots["busybox"]
		out, err := exec.Command(bin, "sandbox", "run", "--root", root, "--",
			"/bin/busybox", "sh", "-c", "echo ok; ls /bin | wc -l").CombinedOutput()
		if err != nil {
			t.Fatalf("sandbox run: %v\n%s", err, out)
		}
		lines := strings.Fields(string(out))
		ents, _ := os.ReadDir(filepath.Join(root, "bin"))
		if len(lines) != 2 || lines[0] != "ok" || lines[1] != strconv.Itoa(len(ents)) {
			t.Errorf("got %q, want ok and %d entries of /bin", out, len(ents))
		}
		if len(ents) < 50 {
			t.Errorf("/bin has %d entries; want BusyBox's applet links", len(ents))
		}
	})

	t.Run("tinydns answers from its rootfs", func(t *testing.T) {
		dig := testenv.NeedTool(t, "dig")
		// The sandbox's root is the image; the host's /usr is mounted in
		// only so that dig can run in the same network namespace. tinydns
		// chroots to ROOT and setuids to UID, so it starts as uid 0 of its
		// own user namespace (--as-root), where only id 0 exists.
		script := `/bin/tinydns & for i in $(seq 50); do ` + dig +
			` +short +time=1 +tries=1 @127.0.0.1 www.example.test A && exit 0; sleep 0.1; done; exit 1`
		cmd := exec.Command(bin, "sandbox", "run", "--as-root", "--root", roots["tinydns"],
			"--ro", "/usr=/usr", "--ro", "/lib=/usr/lib", "--ro", "/lib64=/usr/lib64",
			"--env", "PATH=/usr/bin", "--env", "IP=127.0.0.1", "--env", "ROOT=/srv/tinydns",
			"--env", "UID=0", "--env", "GID=0", "--", "/usr/bin/sh", "-c", script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tinydns and dig: %v\n%s", err, out)
		}
		if !regexp.MustCompile(`(?m)^192\.0\.2\.10$`).Match(out) {
			t.Errorf("dig www.example.test: got\n%s\nwant the zone's A record 192.0.2.10", out)
		}
	})

	t.Run("images run under runc", func(t *testing.T) { testRuntime(t, filepath.Join(work, "a", "out")) })

	t.Run("every binary is static", func(t *testing.T) {
		n := 0
		for name, root := range roots {
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				f, err := elf.Open(p)
				if err != nil {
					return nil // not an ELF file
				}
				defer f.Close()
				n++
				for _, prog := range f.Progs {
					if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
						t.Errorf("image %s: %s is dynamically linked", name, p)
					}
				}
				return nil
			})
		}
		if n == 0 {
			t.Error("no ELF binaries found in the images")
		}
	})

	t.Run("patched code is what was compiled", func(t *testing.T) { checkPatches(t, bin, repo, filepath.Join(work, "a", "store")) })
}

// buildStack runs cairn build and returns each image's file digest.
// A umask in env (UMASK=077) is set for cairn's own process.
func buildStack(t *testing.T, bin, repo, store, out string, env []string, args ...string) map[string]string {
	t.Helper()
	umask := "022"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "UMASK="); ok {
			umask = v
		}
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", `umask "$0" && exec "$@"`, umask, bin, "build", "--store", store, "--out", out}, args...)...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cairn build --store %s: %v\n%s\n%s", store, err, stdout.String(), stderr.String())
	}
	t.Logf("cairn build --store %s:\n%s%s", store, stderr.String(), stdout.String())
	images := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 || !strings.HasPrefix(f[3], "sha256:") || !strings.HasPrefix(f[4], "oci sha256:") {
			t.Fatalf("build output line %q: want NAME PATH SIZE DIGEST oci MANIFEST", line)
		}
		images[f[0]] = f[3] + " " + f[4]
	}
	return images
}
