package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-build/cairn/pkg/source/debian"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// debianDownload runs apt-get source for src into a store temp dir and
// returns the orig tarball whose sha256 is the pin. The caller removes the
// temp dir with done.
func (f *Fetcher) debianDownload(ctx context.Context, src stack.Source) (file string, done func(), err error) {
	state, err := f.store.StateDir("apt")
	if err != nil {
		return "", nil, err
	}
	// One apt run at a time per store: apt locks its own state, and two
	// updates at once would fail rather than wait.
	unlock, err := f.store.Lock(ctx, "apt")
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	tmp, done, err := f.store.TempDir("deb")
	if err != nil {
		return "", nil, err
	}
	f.event(Event{Source: src.Name, Transport: stack.TransportDebian, Phase: "apt-get source " + src.Debian})
	names, err := debian.New(f.debian, state).Source(ctx, src.Debian, tmp)
	if err != nil {
		done()
		return "", nil, err
	}
	var seen []string
	for _, n := range names {
		if !strings.Contains(n, ".orig.tar.") || strings.HasSuffix(n, ".asc") {
			continue
		}
		p := filepath.Join(tmp, n)
		sum, err := fileSHA256(p)
		if err != nil {
			done()
			return "", nil, err
		}
		if sum == src.Pin.ArchiveSHA256 {
			return p, done, nil
		}
		seen = append(seen, n+" sha256:"+sum)
	}
	done()
	if len(seen) == 0 {
		return "", nil, fmt.Errorf("%s: no orig tarball among %s", src.Debian, strings.Join(names, ", "))
	}
	return "", nil, &store.DigestMismatchError{What: "Debian orig tarball of " + src.Debian,
		Want: "sha256:" + src.Pin.ArchiveSHA256, Got: strings.Join(seen, ", ")}
}

func (f *Fetcher) fromDebian(ctx context.Context, src stack.Source) (string, error) {
	if p, ok := f.store.Tree(src.Pin.Tree); ok {
		return p, nil
	}
	file, done, err := f.debianDownload(ctx, src)
	if err != nil {
		return "", err
	}
	defer done()
	return f.fromArchiveFile(ctx, src, file, filepath.Base(file), stack.TransportDebian)
}

// debianArchive keeps src's Debian orig tarball as a blob.
func (f *Fetcher) debianArchive(ctx context.Context, src stack.Source) (string, error) {
	file, done, err := f.debianDownload(ctx, src)
	if err != nil {
		return "", err
	}
	defer done()
	in, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer in.Close()
	return f.store.AddBlob(ctx, src.Pin.ArchiveSHA256, in)
}

func fileSHA256(p string) (string, error) {
	in, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
