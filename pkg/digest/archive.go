package digest

import (
	"context"
	"fmt"
	"io"

	"github.com/cairn-build/cairn/pkg/archive"
)

// ArchiveOption configures FromArchive: archive.Strip, archive.Name,
// archive.MaxBytes and the other archive options all apply.
type ArchiveOption = archive.Option

// Strip removes n leading components of every member name.
func Strip(n int) ArchiveOption { return archive.Strip(n) }

// FromArchive reads a tar archive (plain, gzip, bzip2 or xz, detected by
// magic bytes) and returns its manifest without writing to disk. Members are
// validated as archive.Unpack validates them; a refusal is an
// *archive.EntryError. A later member replaces an earlier one of the same
// path, and a hardlink takes its target's content, as on unpacking.
func FromArchive(ctx context.Context, r io.Reader, opts ...ArchiveOption) (Manifest, error) {
	bh := newBlobHasher()
	buf := make([]byte, 128<<10)
	var m Manifest
	index := map[string]int{}
	put := func(e Entry) {
		if i, ok := index[e.Path]; ok {
			m[i] = e
			return
		}
		index[e.Path] = len(m)
		m = append(m, e)
	}
	_, err := archive.Walk(ctx, r, func(ae *archive.Entry, content io.Reader) error {
		switch ae.Type {
		case archive.TypeFile:
			e := Entry{Path: ae.Name, Kind: File, Size: ae.Size}
			if ae.Exec {
				e.Kind = Exec
			}
			bh.start(ae.Size)
			n, err := io.CopyBuffer(bh, content, buf)
			if err != nil {
				return err
			}
			if n != ae.Size {
				return fmt.Errorf("entry %q: %d of %d bytes: %w", ae.Raw, n, ae.Size, io.ErrUnexpectedEOF)
			}
			bh.finish(&e)
			put(e)
		case archive.TypeSymlink:
			e := Entry{Path: ae.Name, Kind: Symlink, Size: int64(len(ae.Linkname)), Target: ae.Linkname}
			bh.hashBytes(&e, []byte(ae.Linkname))
			put(e)
		case archive.TypeHardlink:
			// Walk has checked that the target is an earlier regular file.
			e := m[index[ae.Linkname]]
			e.Path = ae.Name
			put(e)
		}
		return nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	sortManifest(m)
	return m, nil
}
