// Package oci turns a rootfs tar into an OCI image layout directory
// (NAME.oci/) and a docker-archive tarball (NAME.docker.tar), and pushes a
// layout to a registry.
//
// Both outputs are deterministic: the same tar, configuration and epoch give
// the same bytes, so the manifest digest is an identity a build can key on.
// That is by construction. Every JSON document is a Go struct (fixed field
// order; the only map, ExposedPorts, is written by encoding/json with sorted
// keys) encoded without HTML escaping and without a trailing newline; the one
// time in the config, `created` and the history entry's `created`, is the
// caller's SOURCE_DATE_EPOCH; the history says only "cairn build". Tar
// headers of the docker-archive are built from scratch (uid/gid 0, mtime 0,
// mode 0644, USTAR), members in a fixed order.
//
// The image has one layer: the rootfs tar compressed with compress/gzip at a
// fixed level (6) and a zero header (no name, no comment, mtime 0). Gzip, not
// zstd: the standard library has it, and every runtime and registry in use
// reads it, while zstd layers are refused by older ones and would need
// another module. Compressed bytes depend on compress/gzip, that is, on the
// Go release: CompressorID names both and belongs in any cache key of an
// image. The layer's DiffID (sha256 of the uncompressed tar) does not depend
// on it and is the identity `verify` compares.
//
// The JSON and the layouts are plain structs rather than
// go-containerregistry's mutate/layout packages: those set their own
// defaults (a config `created` of the zero time, history entries, media
// types by layer kind) that would then have to be overridden field by field,
// and writing the three small documents directly makes every byte visible
// here. go-containerregistry's remote package does the push, where its
// registry protocol handling (chunked uploads, token auth, mounts) earns its
// place.
//
// Writes are atomic: the layout is assembled in a temporary directory beside
// the target and renamed into place, the docker-archive written to a
// temporary file and renamed; on an error nothing is left behind.
package oci

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	gcrname "github.com/google/go-containerregistry/pkg/name"

	"github.com/cairn-build/cairn/internal/ctxio"
	"github.com/cairn-build/cairn/pkg/stack"
)

// Media types, set explicitly on every descriptor.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// gzipLevel is fixed: a change of compress/gzip's default must not change
// the layer.
const gzipLevel = 6

// CompressorID describes what makes the layer's compressed bytes: the
// compressor, its settings and the Go release whose compress/gzip it is.
var CompressorID = fmt.Sprintf("compress/gzip level=%d header=zero %s", gzipLevel, runtime.Version())

// CreatedBy is the history entry's created_by: fixed, no host data.
const CreatedBy = "cairn build"

// Config is what the image's config says about running it.
type Config struct {
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string // KEY=VALUE, in the order given
	WorkingDir string
	Ports      []string // "80", "80/tcp", "53/udp"; a bare number is tcp
	StopSignal string   // "SIGTERM", what `docker stop` sends first; "": the runtime's default (SIGTERM)
	Epoch      int64    // SOURCE_DATE_EPOCH, seconds: `created` of the config and history
}

// Result describes written image outputs. Digests are "sha256:HEX".
type Result struct {
	Layout    string // DIR/NAME.oci
	Archive   string // DIR/NAME.docker.tar
	Tag       string // the docker-archive's RepoTag: cairn/NAME:latest
	Manifest  string // digest of the image manifest: the image's identity
	Config    string // digest of the config JSON (docker's image ID)
	Layer     string // digest of the gzip layer blob
	DiffID    string // digest of the uncompressed tar
	LayerSize int64  // bytes of the gzip layer
	TarSize   int64  // bytes of the uncompressed tar
}

// Option adjusts Write.
type Option func(*options)

type options struct {
	noArchive bool
	hook      func(string)
}

// WithHook calls fn("oci") once the layout's staging directory holds the
// first bytes of the layer: tests kill cairn there.
func WithHook(fn func(point string)) Option { return func(o *options) { o.hook = fn } }

type hookReader struct {
	r    io.Reader
	fn   func(string)
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 && !h.done {
		h.done = true
		h.fn("oci")
	}
	return n, err
}

// WithoutArchive skips the docker-archive.
func WithoutArchive() Option { return func(o *options) { o.noArchive = true } }

// PortError is a port that is not NUMBER or NUMBER/tcp|udp|sctp.
type PortError struct{ Port string }

func (e *PortError) Error() string {
	return fmt.Sprintf("port %q: want NUMBER or NUMBER/PROTO (tcp, udp, sctp)", e.Port)
}

// SignalError is a stop signal that is not a signal name such as SIGTERM.
type SignalError struct{ Signal string }

func (e *SignalError) Error() string {
	return fmt.Sprintf("stop signal %q: want a signal name such as SIGTERM or SIGRTMIN+3", e.Signal)
}

// Write reads the uncompressed rootfs tar from r and writes DIR/NAME.oci and
// DIR/NAME.docker.tar, replacing earlier ones. The tar is streamed once: into
// the gzip layer blob and, for the docker-archive, into a temporary copy.
func Write(ctx context.Context, r io.Reader, dir, name string, cfg Config, opts ...Option) (*Result, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	ports, err := exposed(cfg.Ports)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	if cfg.StopSignal != "" && !stack.StopSignalOK(cfg.StopSignal) {
		return nil, fmt.Errorf("image %s: %w", name, &SignalError{Signal: cfg.StopSignal})
	}
	res := &Result{
		Layout: filepath.Join(dir, name+".oci"),
		Tag:    "cairn/" + name + ":latest",
	}
	if !o.noArchive {
		res.Archive = filepath.Join(dir, name+".docker.tar")
	}
	stage, err := os.MkdirTemp(dir, "."+name+".oci.*.tmp")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	defer os.RemoveAll(stage) // after the rename, only the copied tar is left in it
	if o.hook != nil {
		r = &hookReader{r: r, fn: o.hook}
	}
	if err := write(ctx, r, stage, res, cfg, ports); err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	return res, nil
}

// checkName accepts names that make a valid docker tag cairn/NAME:latest
// (lower case, digits and single separators), which the file names then
// share.
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, "/:@") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("oci: invalid image name %q", name)
	}
	if _, err := gcrname.NewTag("cairn/" + name + ":latest"); err != nil {
		return fmt.Errorf("oci: invalid image name %q: %w", name, err)
	}
	return nil
}

func exposed(ports []string) (map[string]struct{}, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	m := make(map[string]struct{}, len(ports))
	for _, p := range ports {
		num, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" || num == "" || len(num) > 5 || strings.Trim(num, "0123456789") != "" {
			return nil, &PortError{Port: p}
		}
		var n int
		fmt.Sscan(num, &n)
		if n < 1 || n > 65535 || num[0] == '0' {
			return nil, &PortError{Port: p}
		}
		m[num+"/"+proto] = struct{}{}
	}
	return m, nil
}

// write fills stage/layout with the OCI layout, stage/layer.tar with the tar
// copy, then writes the docker-archive and renames the layout into place.
func write(ctx context.Context, r io.Reader, stage string, res *Result, cfg Config, ports map[string]struct{}) error {
	layout := filepath.Join(stage, "layout")
	blobs := filepath.Join(layout, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	// Modes are set, not left to the umask: the layout is a public artifact.
	for _, d := range []string{layout, filepath.Dir(blobs), blobs} {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	var copyPath string
	if res.Archive != "" {
		copyPath = filepath.Join(stage, "layer.tar")
	}
	gz := filepath.Join(stage, "layer.gz")
	if err := layer(ctx, r, gz, copyPath, res); err != nil {
		return err
	}
	if err := os.Rename(gz, filepath.Join(blobs, hexOf(res.Layer))); err != nil {
		return err
	}

	created := time.Unix(cfg.Epoch, 0).UTC().Format(time.RFC3339)
	config := imageConfig{
		Created:      created,
		Architecture: "amd64",
		OS:           "linux",
		Config: runConfig{
			User:         cfg.User,
			ExposedPorts: ports,
			Env:          cfg.Env,
			Entrypoint:   cfg.Entrypoint,
			Cmd:          cfg.Cmd,
			WorkingDir:   cfg.WorkingDir,
			StopSignal:   cfg.StopSignal,
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{res.DiffID}},
		History: []history{{Created: created, CreatedBy: CreatedBy}},
	}
	configJSON, err := marshal(config)
	if err != nil {
		return err
	}
	res.Config = digestBytes(configJSON)
	manifestJSON, err := marshal(manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        descriptor{MediaType: MediaTypeConfig, Digest: res.Config, Size: int64(len(configJSON))},
		Layers:        []descriptor{{MediaType: MediaTypeLayer, Digest: res.Layer, Size: res.LayerSize}},
	})
	if err != nil {
		return err
	}
	res.Manifest = digestBytes(manifestJSON)
	indexJSON, err := marshal(index{
		SchemaVersion: 2,
		MediaType:     MediaTypeIndex,
		Manifests: []descriptor{{
			MediaType: MediaTypeManifest, Digest: res.Manifest, Size: int64(len(manifestJSON)),
			// umoci and skopeo name an image of a layout by this tag.
			Annotations: &annotations{RefName: "latest"},
		}},
	})
	if err != nil {
		return err
	}
	layoutJSON, err := marshal(ociLayout{Version: "1.0.0"})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{filepath.Join(blobs, hexOf(res.Config)), configJSON},
		{filepath.Join(blobs, hexOf(res.Manifest)), manifestJSON},
		{filepath.Join(layout, "index.json"), indexJSON},
		{filepath.Join(layout, "oci-layout"), layoutJSON},
	} {
		if err := writeSynced(f.path, f.data); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.Archive != "" {
		if err := writeArchive(ctx, res, configJSON, copyPath); err != nil {
			return err
		}
	}
	return replaceDir(layout, res.Layout, stage)
}

// layer streams r into the gzip blob at gzPath (and a copy of the tar at
// copyPath, when set), recording digests and sizes in res.
func layer(ctx context.Context, r io.Reader, gzPath, copyPath string, res *Result) error {
	gf, err := os.Create(gzPath)
	if err != nil {
		return err
	}
	defer gf.Close()
	gzHash, gzCount := sha256.New(), &counter{}
	gbuf := bufio.NewWriterSize(io.MultiWriter(gf, gzHash, gzCount), 256<<10)
	zw, err := gzip.NewWriterLevel(gbuf, gzipLevel)
	if err != nil {
		return err
	}
	// The zero Header already has no name, comment or mtime, and OS 255
	// ("unknown"): nothing of the host.
	diffHash, tarCount := sha256.New(), &counter{}
	sinks := []io.Writer{zw, diffHash, tarCount}
	var cf *os.File
	if copyPath != "" {
		if cf, err = os.Create(copyPath); err != nil {
			return err
		}
		defer cf.Close()
		sinks = append(sinks, cf)
	}
	// The tar is checked as it streams, by a reader on the other end of a pipe.
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() {
		err := checkTar(pr)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // record padding after the end
		}
		pr.CloseWithError(err)
		checked <- err
	}()
	sinks = append(sinks, pw)
	_, err = io.CopyBuffer(io.MultiWriter(sinks...), ctxio.Reader(ctx, r), make([]byte, 256<<10))
	pw.Close()
	switch cerr := <-checked; {
	case cerr != nil && (err == nil || errors.Is(err, cerr)):
		return cerr
	case err != nil:
		return fmt.Errorf("read rootfs tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := gbuf.Flush(); err != nil {
		return err
	}
	if err := gf.Chmod(0o644); err != nil {
		return err
	}
	if err := gf.Sync(); err != nil {
		return err
	}
	res.Layer, res.LayerSize = digestOf(gzHash), gzCount.n
	res.DiffID, res.TarSize = digestOf(diffHash), tarCount.n
	return nil
}

// replaceDir renames from to to, moving an existing to aside into stage
// first (rename cannot replace a non-empty directory) and removing it after.
func replaceDir(from, to, stage string) error {
	old := filepath.Join(stage, "old")
	moved := false
	if err := os.Rename(to, old); err == nil {
		moved = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		if moved {
			os.Rename(old, to)
		}
		return err
	}
	return syncDir(filepath.Dir(to))
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot sync a directory (EINVAL); the rename stands.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// marshal encodes v as compact JSON without HTML escaping and without the
// newline json.Encoder adds.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func digestBytes(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
