package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if _, _, code := runCairn(t, "push", "--out", out, "nosuch", "127.0.0.1:1/x:y"); code != exitUsage {
		t.Errorf("push of a missing layout: exit %d, want %d", code, exitUsage)
	}

	addr := startDockerRegistry(t)
	stdout, stderr, code := runCairn(t, "push", "--out", out, "hi", addr+"/cairn/hi:latest")
	if code != 0 {
		t.Fatalf("cairn push: exit %d\n%s", code, stderr)
	}
	if got := strings.TrimSpace(stdout); got != manifest {
		t.Errorf("cairn push printed %q, want %s", got, manifest)
	}
}

// startDockerRegistry runs Debian's docker-registry on a free loopback port
// with storage under a temporary directory, stopped at cleanup.
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	bin := testenv.NeedTool(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "storage"), addr)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("docker-registry exited\n%s", logs.Bytes())
		default:
		}
	}
	t.Fatalf("docker-registry not up on %s after 10s\n%s", addr, logs.Bytes())
	return ""
}
