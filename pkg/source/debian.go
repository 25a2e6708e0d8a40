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

// What debianDownload picks from the files apt-get source fetched.
type debianFile int

const (
	debianOrig debianFile = iota // the orig tarball, by Pin.ArchiveSHA256
	debianTar                    // the packaging tarball, by Patches.DebianTarSHA256
)

// debianDownload runs apt-get source for src into a store temp dir and
// returns the file of the kind asked for whose sha256 is its pin. The
// packaging tarball, when src pins one, is kept as a blob whichever was
// asked for, so that one apt-get run serves both. The caller removes the
// temp dir with done.
func (f *Fetcher) debianDownload(ctx context.Context, src stack.Source, kind debianFile) (file string, done func(), err error) {
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
	var tarSum string
	if src.Patches != nil {
		tarSum = src.Patches.DebianTarSHA256
	}
	what, infix, want := "orig tarball", ".orig.tar.", src.Pin.ArchiveSHA256
	if kind == debianTar {
		what, infix, want = "packaging tarball", ".debian.tar.", tarSum
	}
	var found, tarPath string
	var seen []string
	for _, n := range names {
		if strings.HasSuffix(n, ".asc") || !strings.Contains(n, ".orig.tar.") && !strings.Contains(n, ".debian.tar.") {
			continue
		}
		p := filepath.Join(tmp, n)
		sum, err := fileSHA256(p)
		if err != nil {
			done()
			return "", nil, err
		}
		if tarSum != "" && sum == tarSum && strings.Contains(n, ".debian.tar.") {
			tarPath = p
		}
		if !strings.Contains(n, infix) {
			continue
		}
		if sum == want && found == "" {
			found = p
			continue
		}
		seen = append(seen, n+" sha256:"+sum)
	}
	if found != "" {
		// The packaging tarball came in the same run: keep it (checked by
		// its own pin) so that patching needs no second download. Only when
		// the file asked for was found: a failed fetch leaves nothing.
		if tarPath != "" {
			in, err := os.Open(tarPath)
			if err != nil {
				done()
				return "", nil, err
			}
			_, err = f.store.AddBlob(ctx, tarSum, in)
			in.Close()
			if err != nil {
				done()
				return "", nil, err
			}
		}
		return found, done, nil
	}
	done()
	if len(seen) == 0 {
		return "", nil, fmt.Errorf("%s: no %s among %s", src.Debian, what, strings.Join(names, ", "))
	}
	return "", nil, &store.DigestMismatchError{What: "Debian " + what + " of " + src.Debian,
		Want: "sha256:" + want, Got: strings.Join(seen, ", ")}
}

func (f *Fetcher) fromDebian(ctx context.Context, src stack.Source) (string, error) {
	if p, ok := f.store.Tree(src.Pin.Tree); ok {
		return p, nil
	}
	file, done, err := f.debianDownload(ctx, src, debianOrig)
	if err != nil {
		return "", err
	}
	defer done()
	return f.fromArchiveFile(ctx, src, file, filepath.Base(file), stack.TransportDebian)
}

// debianArchive keeps src's Debian orig tarball as a blob.
func (f *Fetcher) debianArchive(ctx context.Context, src stack.Source) (string, error) {
	file, done, err := f.debianDownload(ctx, src, debianOrig)
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
