package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/cairn-build/cairn/internal/ctxio"
)

// writeArchive writes the docker-archive (the format of `docker save`:
// manifest.json naming the config and an uncompressed layer.tar) to a
// temporary file beside res.Archive and renames it into place. The layer is
// stored uncompressed because that is what every `docker load` reads; its
// digest there is the DiffID.
func writeArchive(ctx context.Context, res *Result, configJSON []byte, layerPath string) error {
	configName := hexOf(res.Config) + ".json"
	layerDir := hexOf(res.DiffID)
	layerName := layerDir + "/layer.tar"
	manifestJSON, err := marshal([]dockerManifest{{
		Config:   configName,
		RepoTags: []string{res.Tag},
		Layers:   []string{layerName},
	}})
	if err != nil {
		return err
	}
	lf, err := os.Open(layerPath)
	if err != nil {
		return err
	}
	defer lf.Close()

	dir, base := filepath.Split(res.Archive)
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	buf := bufio.NewWriterSize(tmp, 256<<10)
	tw := tar.NewWriter(buf)
	member := func(name string, typ byte, mode, size int64) error {
		return tw.WriteHeader(&tar.Header{
			Typeflag: typ, Name: name, Mode: mode, Size: size,
			ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR,
		})
	}
	if err := member(configName, tar.TypeReg, 0o644, int64(len(configJSON))); err != nil {
		return err
	}
	if _, err := tw.Write(configJSON); err != nil {
		return err
	}
	if err := member(layerDir+"/", tar.TypeDir, 0o755, 0); err != nil {
		return err
	}
	if err := member(layerName, tar.TypeReg, 0o644, res.TarSize); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(tw, ctxio.Reader(ctx, lf), make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("docker-archive layer: %w", err)
	}
	if err := member("manifest.json", tar.TypeReg, 0o644, int64(len(manifestJSON))); err != nil {
		return err
	}
	if _, err := tw.Write(manifestJSON); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	// CreateTemp makes 0600; the archive is a public artifact, whatever the umask.
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), res.Archive); err != nil {
		return err
	}
	ok = true
	return nil
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// OpenTar opens a rootfs tarball, xz-compressed (as pkg/rootfs writes it) or
// plain, and returns a reader of the uncompressed tar.
func OpenTar(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	head, _ := br.Peek(len(xzMagic))
	if !bytes.Equal(head, xzMagic) {
		return struct {
			io.Reader
			io.Closer
		}{br, f}, nil
	}
	zr, err := xz.NewReader(br)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}
