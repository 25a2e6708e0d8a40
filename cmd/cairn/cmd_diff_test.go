package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/diff"
)

func TestDiffExitStatus(t *testing.T) {
	dir := t.TempDir()
	for name, files := range map[string]map[string]string{
		"a": {"x": "one\n", "same": "s\n"},
		"b": {"x": "two\n", "same": "s\n", "new": "n\n"},
	} {
		for f, data := range files {
			p := filepath.Join(dir, name, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings
	}{
		{"same", []string{"diff", a, a}, 0, nil},
		{"different", []string{"diff", a, b}, 1, []string{"added    new", "changed  x  content 4 -> 4 bytes", "first difference at byte 0"}},
		{"one argument", []string{"diff", a}, exitUsage, nil},
		{"missing input", []string{"diff", a, filepath.Join(dir, "nope")}, exitInternal, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCairn(t, tc.args...)
			if code != tc.code {
				t.Fatalf("got exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("got stdout\n%s\nwant it to contain %q", stdout, s)
				}
			}
		})
	}
	stdout, _, code := runCairn(t, "diff", "--json", a, b)
	var res diff.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 1 {
		t.Fatalf("diff --json: exit %d, %v\n%s", code, err, stdout)
	}
	if len(res.Changes) != 2 || res.Changes[0].Path != "new" || res.Changes[1].Path != "x" {
		t.Errorf("diff --json: got %+v, want new added and x changed", res.Changes)
	}
}
