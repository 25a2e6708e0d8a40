package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
)

// TestSandboxLimitFlags: a run over a limit exits non-zero and names it.
func TestSandboxLimitFlags(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	base := []string{"sandbox", "run", "--root", root, "--ro", "/usr=/usr", "--rw", "/out=" + out}
	rows := []struct {
		name  string
		args  []string
		code  int
		inErr string
	}{
		{"memory", []string{"--memory", "64M", "--", "mawk", `BEGIN { s = "x"; for (i = 0; i < 29; i++) s = s s }`}, 137, "over the memory limit: went over its memory limit of 64MiB: the kernel's OOM killer"},
		{"pids", []string{"--pids", "20", "--", "sh", "-c", "for i in $(seq 100); do sleep 10 & done"}, 2, "over the pids limit"},
		{"output size", []string{"--output-size", "1M", "--", "sh", "-c", "truncate -s 600K /out/a; truncate -s 600K /out/b"}, 1, "over the output-size limit: /out holds 1228800 bytes"},
		{"a sparse file past it", []string{"--output-size", "1M", "--", "truncate", "-s", "2G", "/out/big"}, 1, "File too large"},
		{"setuid", []string{"--", "sh", "-c", "touch /out/s; chmod u+s /out/s"}, 1, "changing permissions of '/out/s': Operation not permitted"},
		{"bad size", []string{"--memory", "lots", "--", "true"}, 2, `--memory: size "lots"`},
		{"negative timeout", []string{"--timeout", "-1s", "--", "true"}, 2, "--timeout -1s"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			stdout, stderr, code := runCairn(t, append(append([]string{}, base...), r.args...)...)
			if code != r.code || !strings.Contains(stdout+stderr, r.inErr) {
				t.Errorf("exit %d, want %d; output %q %q, want %q", code, r.code, stdout, stderr, r.inErr)
			}
		})
	}
	// The log limit cuts, keeping head and tail.
	log := filepath.Join(t.TempDir(), "log")
	_, _, code := runCairn(t, append(base, "--log", log, "-q", "--log-size", "64K", "--", "sh", "-c", "echo first; head -c 10000000 /dev/zero; echo; echo last")...)
	b, _ := os.ReadFile(log)
	if code != 0 || len(b) > 64<<10+200 || !strings.HasPrefix(string(b), "first\n") || !strings.HasSuffix(string(b), "\nlast\n") || !strings.Contains(string(b), "bytes cut here") {
		t.Errorf("--log-size 64K: exit %d, %d bytes", code, len(b))
	}
}
