package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/store"
)

func TestStoreVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := "an archive"
	raw := sha256.Sum256([]byte(data))
	h := hex.EncodeToString(raw[:])
	if _, err := s.AddBlob(context.Background(), h, strings.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	blob := s.Path(store.Ref{Kind: store.Blob, Digest: "sha256:" + h})
	s.Close()

	if _, stderr, code := runCairn(t, "store", "verify", "--store", dir); code != 0 || !strings.Contains(stderr, "0 corrupt") {
		t.Fatalf("clean store: exit %d\n%s", code, stderr)
	}
	os.Chmod(blob, 0o644)
	os.WriteFile(blob, []byte("tampered"), 0o644)
	stdout, stderr, code := runCairn(t, "store", "verify", "--store", dir)
	if code != exitFailure || !strings.Contains(stdout, blob) || !strings.Contains(stderr, "1 corrupt") {
		t.Fatalf("corrupt blob: exit %d, want 1 naming %s\n%s%s", code, blob, stdout, stderr)
	}
	stdout, _, code = runCairn(t, "store", "verify", "--repair", "--store", dir)
	if code != exitFailure || !strings.Contains(stdout, "removed "+blob) {
		t.Fatalf("--repair: exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("%s survived --repair", blob)
	}
	if _, stderr, code := runCairn(t, "store", "verify", "--store", dir); code != 0 {
		t.Errorf("after --repair: exit %d\n%s", code, stderr)
	}
	if _, _, code := runCairn(t, "store", "verify", "--store", dir, "extra"); code != exitUsage {
		t.Errorf("an argument: exit %d, want %d", code, exitUsage)
	}
}
