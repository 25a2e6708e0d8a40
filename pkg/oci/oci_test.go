package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/rootfs"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt")

const epoch = 1700000000

var fixtureConfig = Config{
	Entrypoint: []string{"/bin/sh", "-c"},
	Cmd:        []string{"echo hello"},
	User:       "1000:1000",
	Env:        []string{"PATH=/bin", "LANG=C.UTF-8"},
	WorkingDir: "/home",
	Ports:      []string{"8080", "53/udp"},
	StopSignal: "SIGQUIT",
	Epoch:      epoch,
}

// fixtureTar builds a small tree (a file, an executable, a directory, a
// symlink, an empty dir) and returns its rootfs tar.
func fixtureTar(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []struct {
		path, data string
		mode       fs.FileMode
	}{
		{"etc/motd", "hello from cairn\n", 0o644},
		{"bin/hello", "#!/bin/sh\necho hello\n", 0o755},
		{"home/.keep", "", 0o644},
	} {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello", filepath.Join(dir, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rootfs.WriteTar(context.Background(), dir, &b, rootfs.WithEpoch(epoch), rootfs.WithMode("tmp", 0o1777)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// files returns every regular file under dir with its content's sha256.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		s := sha256.Sum256(data)
		out[rel] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFixture(t *testing.T, dir string) *Result {
	t.Helper()
	res, err := Write(context.Background(), bytes.NewReader(fixtureTar(t)), dir, "hello", fixtureConfig)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDeterministic(t *testing.T) {
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "other", "path")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	ra := writeFixture(t, a)
	old := umask(0o077) // the process's umask must not reach the outputs
	rb := writeFixture(t, b)
	umask(old)
	for _, d := range []struct{ name, x, y string }{
		{"manifest", ra.Manifest, rb.Manifest},
		{"config", ra.Config, rb.Config},
		{"layer", ra.Layer, rb.Layer},
		{"diffid", ra.DiffID, rb.DiffID},
	} {
		if d.x != d.y || !strings.HasPrefix(d.x, "sha256:") {
			t.Errorf("%s digest: got %s and %s, want equal sha256 digests", d.name, d.x, d.y)
		}
	}
	fa, fb := files(t, a), files(t, b)
	if fmt.Sprint(fa) != fmt.Sprint(fb) {
		t.Errorf("outputs differ:\n%v\n%v", fa, fb)
	}
	want := []string{
		"hello.docker.tar",
		"hello.oci/blobs/sha256/" + hexOf(ra.Config),
		"hello.oci/blobs/sha256/" + hexOf(ra.Layer),
		"hello.oci/blobs/sha256/" + hexOf(ra.Manifest),
		"hello.oci/index.json",
		"hello.oci/oci-layout",
	}
	sort.Strings(want)
	var got []string
	for p := range fb {
		got = append(got, p)
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files: got %v, want %v (no temporary left)", got, want)
	}
	for p, sum := range fb {
		if strings.Contains(p, "/blobs/sha256/") && filepath.Base(p) != sum {
			t.Errorf("blob %s has sha256 %s", p, sum)
		}
	}
	// Permissions are fixed, whatever the umask.
	err := filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == b {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if fi.IsDir() {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Writing again over the outputs replaces them with the same bytes.
	writeFixture(t, a)
	if fa2 := files(t, a); fmt.Sprint(fa2) != fmt.Sprint(fa) {
		t.Errorf("rewrite differs:\n%v\n%v", fa2, fa)
	}
}

// TestGolden pins the fixture's digests. The layer and manifest digests
// depend on compress/gzip and so on the Go release; they are checked only
// when CompressorID is the golden one. Update with -update.
func TestGolden(t *testing.T) {
	res := writeFixture(t, t.TempDir())
	got := fmt.Sprintf("compressor %s\ndiffid %s\nconfig %s\nlayer %s\nmanifest %s\n",
		CompressorID, res.DiffID, res.Config, res.Layer, res.Manifest)
	golden := filepath.Join("testdata", "golden.txt")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(data), "\n")
	if len(wl) != len(gl) {
		t.Fatalf("golden has %d lines, want %d", len(wl), len(gl))
	}
	sameCompressor := gl[0] == wl[0]
	for i := 1; i < len(gl); i++ {
		if !sameCompressor && (strings.HasPrefix(gl[i], "layer") || strings.HasPrefix(gl[i], "manifest")) {
			continue
		}
		if gl[i] != wl[i] {
			t.Errorf("got %q, want %q", gl[i], wl[i])
		}
	}
}

func TestConfigJSON(t *testing.T) {
	res := writeFixture(t, t.TempDir())
	data, err := os.ReadFile(filepath.Join(res.Layout, "blobs", "sha256", hexOf(res.Config)))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"created":"2023-11-14T22:13:20Z","architecture":"amd64","os":"linux",` +
		`"config":{"User":"1000:1000","ExposedPorts":{"53/udp":{},"8080/tcp":{}},"Env":["PATH=/bin","LANG=C.UTF-8"],` +
		`"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hello"],"WorkingDir":"/home","StopSignal":"SIGQUIT"},` +
		`"rootfs":{"type":"layers","diff_ids":["` + res.DiffID + `"]},` +
		`"history":[{"created":"2023-11-14T22:13:20Z","created_by":"cairn build"}]}`
	if string(data) != want {
		t.Errorf("config:\ngot  %s\nwant %s", data, want)
	}
	tarball := fixtureTar(t)
	if s := sha256.Sum256(tarball); res.DiffID != "sha256:"+hex.EncodeToString(s[:]) {
		t.Errorf("DiffID %s is not the tar's sha256", res.DiffID)
	}
	if res.TarSize != int64(len(tarball)) {
		t.Errorf("TarSize: got %d, want %d", res.TarSize, len(tarball))
	}
}

func TestLayerGzipHeader(t *testing.T) {
	res := writeFixture(t, t.TempDir())
	data, err := os.ReadFile(filepath.Join(res.Layout, "blobs", "sha256", hexOf(res.Layer)))
	if err != nil {
		t.Fatal(err)
	}
	// RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS.
	if len(data) < 10 || data[0] != 0x1f || data[1] != 0x8b || data[3] != 0 || !bytes.Equal(data[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip header: got % x, want no flags (no name) and mtime 0", data[:10])
	}
	if int64(len(data)) != res.LayerSize {
		t.Errorf("LayerSize: got %d, want %d", res.LayerSize, len(data))
	}
}

// failReader yields some bytes, then an error.
type failReader struct{ n int }

func (f *failReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

func TestErrorsLeaveNothing(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    io.Reader
		img  string
		cfg  Config
		want any // error to match with errors.Is/As, or nil for any error
	}{
		{"empty input", context.Background(), bytes.NewReader(nil), "x", Config{}, nil},
		{"read error", context.Background(), &failReader{n: 1 << 20}, "x", Config{}, nil},
		{"canceled", canceled, bytes.NewReader(fixtureTar(t)), "x", Config{}, context.Canceled},
		{"bad port", context.Background(), bytes.NewReader(fixtureTar(t)), "x", Config{Ports: []string{"80/icmp"}}, new(*PortError)},
		{"port zero", context.Background(), bytes.NewReader(fixtureTar(t)), "x", Config{Ports: []string{"0"}}, new(*PortError)},
		{"port range", context.Background(), bytes.NewReader(fixtureTar(t)), "x", Config{Ports: []string{"70000"}}, new(*PortError)},
		{"stop signal a number", context.Background(), bytes.NewReader(fixtureTar(t)), "x", Config{StopSignal: "15"}, new(*SignalError)},
		{"stop signal bare", context.Background(), bytes.NewReader(fixtureTar(t)), "x", Config{StopSignal: "TERM"}, new(*SignalError)},
		{"slash name", context.Background(), bytes.NewReader(fixtureTar(t)), "a/b", Config{}, nil},
		{"dot name", context.Background(), bytes.NewReader(fixtureTar(t)), ".x", Config{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Write(tc.ctx, tc.r, dir, tc.img, tc.cfg)
			if err == nil {
				t.Fatal("got no error")
			}
			switch w := tc.want.(type) {
			case error:
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			case **PortError:
				if !errors.As(err, w) {
					t.Errorf("got %v, want a *PortError", err)
				}
			case **SignalError:
				if !errors.As(err, w) {
					t.Errorf("got %v, want a *SignalError", err)
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
}

func TestErrorKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	before := writeFixture(t, dir)
	if _, err := Write(context.Background(), &failReader{n: 4096}, dir, "hello", fixtureConfig); err == nil {
		t.Fatal("got no error")
	}
	if got := files(t, dir); len(got) != 6 || got["hello.oci/index.json"] == "" {
		t.Errorf("previous outputs of %s not kept: %v", before.Manifest, got)
	}
}

func TestOpenTar(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := rootfs.Write(context.Background(), src, t.TempDir(), "t", rootfs.WithEpoch(epoch))
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if err := rootfs.WriteTar(context.Background(), src, &plain, rootfs.WithEpoch(epoch)); err != nil {
		t.Fatal(err)
	}
	plainPath := filepath.Join(t.TempDir(), "plain.tar")
	if err := os.WriteFile(plainPath, plain.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{res.Path, plainPath} {
		rc, err := OpenTar(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain.Bytes()) {
			t.Errorf("OpenTar(%s): got %d bytes, want the %d of the tar", filepath.Base(p), len(got), plain.Len())
		}
	}
}

// TestSkopeoUmoci checks the layout with skopeo and umoci, and that the
// unpacked root equals the tar's content, and the docker-archive with skopeo.
func TestSkopeoUmoci(t *testing.T) {
	skopeo := testenv.NeedTool(t, "skopeo")
	umoci := testenv.NeedTool(t, "umoci")
	res := writeFixture(t, t.TempDir())

	var insp struct {
		Digest       string
		Architecture string
		Os           string
		Layers       []string
	}
	run(t, &insp, skopeo, "inspect", "oci:"+res.Layout+":latest")
	if insp.Digest != res.Manifest || insp.Architecture != "amd64" || insp.Os != "linux" ||
		len(insp.Layers) != 1 || insp.Layers[0] != res.Layer {
		t.Errorf("skopeo inspect oci: got %+v, want digest %s layer %s", insp, res.Manifest, res.Layer)
	}
	var cfg struct {
		Config struct {
			Entrypoint, Cmd, Env []string
			StopSignal           string
		}
	}
	run(t, &cfg, skopeo, "inspect", "--config", "oci:"+res.Layout+":latest")
	if got, want := fmt.Sprint(cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.Env, cfg.Config.StopSignal),
		fmt.Sprint(fixtureConfig.Entrypoint, fixtureConfig.Cmd, fixtureConfig.Env, fixtureConfig.StopSignal); got != want {
		t.Errorf("skopeo config: got %s, want %s", got, want)
	}

	var arch struct {
		Digest string
		Layers []string
	}
	run(t, &arch, skopeo, "inspect", "docker-archive:"+res.Archive)
	if len(arch.Layers) != 1 || arch.Layers[0] != res.DiffID {
		t.Errorf("skopeo inspect docker-archive: got layers %v, want [%s]", arch.Layers, res.DiffID)
	}

	// skopeo reads the docker-archive back into a directory: the same config
	// and the uncompressed tar as its layer.
	copied := filepath.Join(t.TempDir(), "copied")
	run(t, nil, skopeo, "copy", "docker-archive:"+res.Archive, "dir:"+copied)
	for _, blob := range []string{res.Config, res.DiffID} {
		if _, err := os.Stat(filepath.Join(copied, hexOf(blob))); err != nil {
			t.Errorf("skopeo copy docker-archive: no blob %s: %v", blob, err)
		}
	}

	bundle := filepath.Join(t.TempDir(), "bundle")
	args := []string{"unpack", "--image", res.Layout + ":latest", bundle}
	if os.Geteuid() != 0 {
		args = []string{"unpack", "--rootless", "--image", res.Layout + ":latest", bundle}
	}
	run(t, nil, umoci, args...)
	want, err := rootfs.List(bytes.NewReader(fixtureTar(t)))
	if err != nil {
		t.Fatal(err)
	}
	got := walkEntries(t, filepath.Join(bundle, "rootfs"))
	if g, w := entriesString(got), entriesString(want); g != w {
		t.Errorf("unpacked rootfs:\ngot\n%s\nwant\n%s", g, w)
	}
}

func run(t *testing.T, into any, name string, args ...string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	if into != nil {
		if err := json.Unmarshal(out, into); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
}

// walkEntries lists an unpacked root as rootfs entries (hard links are not
// in the fixture, so every file is a file).
func walkEntries(t *testing.T, root string) []rootfs.Entry {
	t.Helper()
	var out []rootfs.Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := rootfs.Entry{Path: filepath.ToSlash(rel), Mode: fi.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)}
		switch {
		case fi.IsDir():
			e.Type = rootfs.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = rootfs.TypeSymlink
			e.Link, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(data)
			e.Type, e.Size, e.SHA256 = rootfs.TypeFile, fi.Size(), "sha256:"+hex.EncodeToString(s[:])
		default:
			e.Type = rootfs.TypeOther
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entriesString(es []rootfs.Entry) string {
	lines := make([]string, 0, len(es))
	for _, e := range es {
		mode := e.Mode
		if e.Type == rootfs.TypeSymlink {
			mode = 0 // symlink modes are not kept by every filesystem
		}
		lines = append(lines, fmt.Sprintf("%s %s %v %d %s %s", e.Path, e.Type, mode, e.Size, e.SHA256, e.Link))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestValidate runs go-containerregistry's validate over the layout: every
// digest, size and DiffID checked by an independent reader.
func TestValidate(t *testing.T) {
	res := writeFixture(t, t.TempDir())
	img, h, err := layoutImage(res.Layout)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != res.Manifest {
		t.Errorf("index names %s, want %s", h, res.Manifest)
	}
	if err := validate.Image(img); err != nil {
		t.Error(err)
	}
	mt, err := img.MediaType()
	if err != nil || string(mt) != MediaTypeManifest {
		t.Errorf("media type: got %q, %v, want %s", mt, err, MediaTypeManifest)
	}
}

// TestWriteTree: the image of a tree has the rootfs tarball's DiffID and the
// same bytes as Write over the tar.
func TestWriteTree(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := []rootfs.Option{rootfs.WithEpoch(epoch), rootfs.WithMode("tmp", 0o1777)}
	rf, err := rootfs.Write(context.Background(), src, t.TempDir(), "t", opts...)
	if err != nil {
		t.Fatal(err)
	}
	a, b := t.TempDir(), t.TempDir()
	fromTree, err := WriteTree(context.Background(), src, a, "t", fixtureConfig, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenTar(rf.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fromTar, err := Write(context.Background(), r, b, "t", fixtureConfig)
	if err != nil {
		t.Fatal(err)
	}
	if fromTree.DiffID != rf.DiffID || fromTree.Manifest != fromTar.Manifest {
		t.Errorf("WriteTree: DiffID %s manifest %s, want the tarball's %s and %s", fromTree.DiffID, fromTree.Manifest, rf.DiffID, fromTar.Manifest)
	}
	if fmt.Sprint(files(t, a)) != fmt.Sprint(files(t, b)) {
		t.Error("WriteTree and Write over the tarball wrote different bytes")
	}
	// A tree that cannot be written (here: missing) fails, leaving nothing.
	out := t.TempDir()
	if _, err := WriteTree(context.Background(), filepath.Join(src, "nosuch"), out, "t", fixtureConfig, nil); err == nil {
		t.Error("missing tree: got no error")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
