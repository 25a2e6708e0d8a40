package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

// TestImageOCIAndPush runs `cairn image oci` twice on a rootfs tarball
// (same output), then `cairn push NAME` to Debian's docker-registry on
// loopback, and checks the printed digest is the layout's.
func TestImageOCIAndPush(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "bin", "hi"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := rootfs.Write(context.Background(), tree, t.TempDir(), "hi", rootfs.WithEpoch(1700000000))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"image", "oci", res.Path, "--out", out, "--epoch", "1700000000", "--entrypoint", "/bin/hi", "--port", "8080"}
	first, stderr, code := runCairn(t, args...)
	if code != 0 {
		t.Fatalf("cairn image oci: exit %d\n%s", code, stderr)
	}
	second, _, _ := runCairn(t, args...)
	if first != second || !strings.HasPrefix(first, "manifest sha256:") {
		t.Errorf("two runs:\n%s\n%s\nwant the same digests", first, second)
	}
	if !strings.Contains(first, "diff_id "+res.DiffID+"\n") {
		t.Errorf("output %q does not name the tarball's DiffID %s", first, res.DiffID)
	}
	if !strings.Contains(first, filepath.Join(out, "hi.oci")) || !strings.Contains(first, "cairn/hi:latest") {
		t.Errorf("output %q: want the layout hi.oci (name from the file) and tag cairn/hi:latest", first)
	}
	manifest := strings.Fields(strings.SplitN(first, "\n", 2)[0])[1]

	if _, _, code := runCairn(t, "image", "oci", res.Path, "--out", out, "--epoch", "yesterday"); code != exitUsage {
		t.Errorf("bad --epoch: exit %d, want %d", code, exitUsage)
	}
	if _, stderr, code := runCairn(t, "image", "oci", res.Path, "--out", out, "--stop-signal", "TERM"); code != exitUsage || !strings.Contains(stderr, `"TERM"`) {
		t.Errorf("bad --stop-signal: exit %d, want %d naming it\n%s", code, exitUsage, stderr)
	}
	if _, _, code := runCairn(t, "push", "--out", out, "nosuch", "127.0.0.1:1/x:y"); code != exitUsage {
		t.Errorf("push of a missing layout: exit %d, want %d", code, exitUsage)
	}

	addr := testenv.StartRegistry(t)
	stdout, stderr, code := runCairn(t, "push", "--out", out, "hi", addr+"/cairn/hi:latest")
	if code != 0 {
		t.Fatalf("cairn push: exit %d\n%s", code, stderr)
	}
	if got := strings.TrimSpace(stdout); got != manifest {
		t.Errorf("cairn push printed %q, want %s", got, manifest)
	}
}
