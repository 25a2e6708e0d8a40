package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/attest"
)

// writeStatement copies the attest fixture stack into a temporary
// directory and writes a statement for its image there.
func writeStatement(t *testing.T) (dir, stmt string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../pkg/attest/testdata/stack")); err != nil {
		t.Fatal(err)
	}
	in, err := attest.Load(context.Background(), filepath.Join(dir, "stack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	in.Image = attest.Image{Name: "hello", Recipe: "hello-image", Digest: "sha256:" + strings.Repeat("1", 64)}
	data, err := attest.Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	stmt = filepath.Join(dir, "hello.provenance.json")
	if err := os.WriteFile(stmt, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, stmt
}

func TestProvenanceCheckCommand(t *testing.T) {
	dir, stmt := writeStatement(t)
	data, err := os.ReadFile(stmt)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.json")
	bad := bytes.Replace(data, []byte(strings.Repeat("1", 64)+`",`+"\n"+`            "gitCommit"`), []byte(strings.Repeat("0", 64)+`",`+"\n"+`            "gitCommit"`), 1)
	bad = bytes.Replace(bad, []byte(`"aaaaaaaa`), []byte(`"00000000`), 1)
	if bytes.Equal(bad, data) {
		t.Fatal("the tampering did not apply")
	}
	if err := os.WriteFile(tampered, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.toml")
	stackData, err := os.ReadFile(filepath.Join(dir, "stack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, bytes.Replace(stackData, []byte(`version = "2.12"`), []byte(`version = "2.13"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	notJSON := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notJSON, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   string
		notInOut string
	}{
		{"matches", []string{"provenance", "check", stmt}, 0, []string{"every input matches"}, "", ""},
		{"tampered", []string{"provenance", "check", tampered}, 1,
			[]string{"source:libc: digest.cairnTree", "seed:dash: digest.sha256", "2 differences"}, "", "stack:"},
		{"other stack", []string{"provenance", "check", stmt, "--stack", other}, 1,
			[]string{"stack: sha256", "source:hello: annotations.version", `want "2.13"`}, "", ""},
		{"json", []string{"provenance", "check", "--json", tampered}, 1, []string{`"input": "seed:dash"`, `"match": false`}, "", ""},
		{"not a statement", []string{"provenance", "check", notJSON}, 1, nil, "not a cairn provenance statement", ""},
		{"no file", []string{"provenance", "check"}, 2, nil, "accepts 1 arg", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCairn(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit status: got %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout does not contain %q:\n%s", s, out)
				}
			}
			if tc.notInOut != "" && strings.Contains(out, tc.notInOut) {
				t.Errorf("stdout contains %q:\n%s", tc.notInOut, out)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr: got %q, want it to contain %q", errOut, tc.stderr)
			}
			if tc.name == "json" {
				var v struct{ Mismatches []attest.Mismatch }
				if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Mismatches) != 2 {
					t.Errorf("--json: got %d mismatches (%v), want 2", len(v.Mismatches), err)
				}
			}
		})
	}
}
