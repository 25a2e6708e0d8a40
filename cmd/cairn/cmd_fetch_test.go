package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// tgzOf makes a tar.gz with one leading directory holding n files.
func tgzOf(t testing.TB, salt string, n int) (data []byte, sum, tree string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "p-1/", Typeflag: tar.TypeDir, Mode: 0o755})
	for i := 0; i < n; i++ {
		c := strings.Repeat(fmt.Sprintf("%s line %d\n", salt, i), 200)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("p-1/f%03d.c", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))})
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
	data = buf.Bytes()
	s := sha256.Sum256(data)
	m, err := digest.FromArchive(context.Background(), bytes.NewReader(data), digest.Strip(1))
	if err != nil {
		t.Fatal(err)
	}
	return data, hex.EncodeToString(s[:]), m.TreeDigest()
}

// Two cairn fetch processes at once on one store: both succeed with the
// same answer, and the store holds each tree once, complete.
func TestFetchTwoProcesses(t *testing.T) {
	bin := cairnBinary(t)
	a, asum, atree := tgzOf(t, "a", 200)
	b, bsum, btree := tgzOf(t, "b", 50)
	// Slow the download down so that the two processes overlap.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(a); i += 1024 {
			w.Write(a[i:min(i+1024, len(a))])
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	bfile := filepath.Join(dir, "b-1.tar.gz")
	os.WriteFile(bfile, b, 0o644)
	stackFile := filepath.Join(dir, "stack.toml")
	os.WriteFile(stackFile, []byte(fmt.Sprintf(`name = "t"
source_date_epoch = 0
[seed]
lock = "seed.lock"

[[source]]
name = "a"
version = "1"
license = "MIT"
tree = %q
archive_sha256 = %q
strip = 1
archives = [%q]

[[source]]
name = "b"
version = "1"
license = "MIT"
tree = %q
archive_sha256 = %q
strip = 1
archives = [%q]
`, atree, asum, srv.URL+"/a-1.tar.gz", btree, bsum, "file://"+bfile)), 0o644)
	storeDir := filepath.Join(dir, "store")

	outs := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, "fetch", "--stack", stackFile, "--store", storeDir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i] = string(out)
			if err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, stderr.String())
			}
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		for _, want := range []string{atree, btree} {
			if !strings.Contains(outs[i], want) {
				t.Errorf("process %d printed %q, want it to name %s", i, outs[i], want)
			}
		}
	}
	s, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{atree, btree} {
		if err := s.VerifyTree(context.Background(), d); err != nil {
			t.Errorf("store: %v", err)
		}
	}
	for _, sum := range []string{asum, bsum} {
		if err := s.VerifyBlob(sum); err != nil {
			t.Errorf("store: %v", err)
		}
	}
	trees, _ := os.ReadDir(filepath.Join(storeDir, "trees", "sha256"))
	tmp, _ := os.ReadDir(filepath.Join(storeDir, "tmp"))
	if len(trees) != 2 || len(tmp) != 0 {
		t.Errorf("store: got %d trees and %d tmp entries, want 2 and 0", len(trees), len(tmp))
	}
}

// Offline with nothing anywhere: exit status 1 and every source named.
func TestFetchOfflineNamesEachSource(t *testing.T) {
	bin := cairnBinary(t)
	cmd := exec.Command(bin, "fetch", "--stack", "../../toolchain/stack.toml", "--store", t.TempDir(), "--offline", "--mirror", t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1", err)
	}
	st, err := stack.Load("../../toolchain/stack.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range st.Sources {
		if !strings.Contains(stderr.String(), "source "+src.Name+":") {
			t.Errorf("stderr does not name source %s:\n%s", src.Name, stderr.String())
		}
	}
}

// The real flow of an offline farm: cairn mirror DIR from the network,
// then cairn fetch --offline --mirror DIR into a fresh store.
func TestMirrorThenOfflineFetch(t *testing.T) {
	testenv.NeedNetwork(t)
	testenv.NeedTool(t, "apt-get")
	bin := cairnBinary(t)
	mirror := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	stackFile := "../../toolchain/stack.toml"
	run("mirror", mirror, "--stack", stackFile, "--store", t.TempDir(), "--offline=false")
	out := run("fetch", "--stack", stackFile, "--store", t.TempDir(), "--offline", "--mirror", mirror)
	st, err := stack.Load(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range st.Sources {
		want := fmt.Sprintf("%-12s %-9s %s", src.Name, "mirror", src.Pin.Tree)
		if src.Patches != nil {
			want += " patched " + src.Patches.Tree
		}
		if !strings.Contains(out, want) {
			t.Errorf("fetch --offline printed\n%s\nwant a line %q", out, want)
		}
	}
}

// cairn fetch killed with SIGKILL in the middle of a download leaves only a
// temporary directory, which the next run removes before it succeeds.
func TestFetchKilledMidDownload(t *testing.T) {
	bin := cairnBinary(t)
	a, asum, atree := tgzOf(t, "k", 100)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var hang sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(a)))
		first := false
		hang.Do(func() { first = true })
		if !first {
			w.Write(a)
			return
		}
		w.Write(a[:len(a)/2])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	dir := t.TempDir()
	stackFile := filepath.Join(dir, "stack.toml")
	os.WriteFile(stackFile, []byte(fmt.Sprintf("name = \"t\"\nsource_date_epoch = 0\n[seed]\nlock = \"seed.lock\"\n\n[[source]]\nname = \"a\"\nversion = \"1\"\nlicense = \"MIT\"\ntree = %q\narchive_sha256 = %q\nstrip = 1\narchives = [%q]\n",
		atree, asum, srv.URL+"/a-1.tar.gz")), 0o644)
	storeDir := filepath.Join(dir, "store")

	cmd := exec.Command(bin, "fetch", "--stack", stackFile, "--store", storeDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the download never started")
	}
	time.Sleep(100 * time.Millisecond) // let the first half reach the temp file
	cmd.Process.Kill()
	cmd.Wait()
	tmp, _ := os.ReadDir(filepath.Join(storeDir, "tmp"))
	if len(tmp) == 0 {
		t.Fatalf("tmp after the kill: empty, want the killed run's partial download")
	}
	for _, d := range []string{"trees/sha256", "blobs/sha256"} {
		if ents, _ := os.ReadDir(filepath.Join(storeDir, d)); len(ents) != 0 {
			t.Errorf("%s after the kill: got %d entries, want none", d, len(ents))
		}
	}
	out, err := exec.Command(bin, "fetch", "--stack", stackFile, "--store", storeDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), atree) {
		t.Fatalf("next run: %v\n%s", err, out)
	}
	if tmp, _ := os.ReadDir(filepath.Join(storeDir, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp after the next run: got %d entries, want none", len(tmp))
	}
}
