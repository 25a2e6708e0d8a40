package oci

import (
	"context"
	"io"

	"github.com/cairn-build/cairn/pkg/rootfs"
)

// WriteTree writes the image of a directory tree: rootfs.WriteTar (with
// opts: the epoch and explicit modes, as for the rootfs tarball) streamed
// into Write. The layer's DiffID is then the rootfs tarball's DiffID, and
// the xz tarball need not be decompressed again.
func WriteTree(ctx context.Context, src, dir, name string, cfg Config, tarOpts []rootfs.Option, opts ...Option) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(rootfs.WriteTar(ctx, src, pw, tarOpts...))
	}()
	res, err := Write(ctx, pr, dir, name, cfg, opts...)
	// On an early error Write stops reading; unblock the writer.
	pr.CloseWithError(io.ErrClosedPipe)
	return res, err
}
