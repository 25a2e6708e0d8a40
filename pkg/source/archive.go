package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/cairn-build/cairn/internal/ctxio"
	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// ShortDownloadError is a download that ended before its announced length.
type ShortDownloadError struct {
	URL       string
	Got, Want int64
}

func (e *ShortDownloadError) Error() string {
	return fmt.Sprintf("%s: download cut short: got %d of %d bytes", e.URL, e.Got, e.Want)
}

// fromArchiveURLs downloads src's release archive from each URL in turn
// until one delivers.
func (f *Fetcher) fromArchiveURLs(ctx context.Context, src stack.Source) (string, error) {
	var errs []error
	for _, u := range src.Archives {
		p, err := f.fromArchiveURL(ctx, src, u)
		if err == nil {
			return p, nil
		}
		var dm *store.DigestMismatchError
		if errors.As(err, &dm) {
			return "", err
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func (f *Fetcher) fromArchiveURL(ctx context.Context, src stack.Source, u string) (string, error) {
	if p, ok := f.store.Tree(src.Pin.Tree); ok {
		return p, nil
	}
	tmp, done, err := f.store.TempDir("dl")
	if err != nil {
		return "", err
	}
	defer done()
	file := filepath.Join(tmp, "archive")
	if err := f.download(ctx, src, u, file); err != nil {
		return "", err
	}
	return f.fromArchiveFile(ctx, src, file, u, stack.TransportArchive)
}

// download fetches u into file, checking its length and its sha256 against
// the pin as it goes. On any error file may hold a part, inside a temp dir
// the caller removes.
func (f *Fetcher) download(ctx context.Context, src stack.Source, u, file string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	var body io.Reader
	var total int64 = -1
	switch pu.Scheme {
	case "file":
		in, err := os.Open(pu.Path)
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		defer in.Close()
		if fi, err := in.Stat(); err == nil {
			total = fi.Size()
		}
		body = in
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %s: %w", u, resp.Status, errNotHere)
		}
		total = resp.ContentLength
		body = resp.Body
	default:
		return fmt.Errorf("%s: want an https, http or file URL", u)
	}
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	pw := &progressWriter{f: f, e: Event{Source: src.Name, Transport: stack.TransportArchive, Phase: "download", Total: max(total, 0)}}
	if total > f.maxDownload {
		return fmt.Errorf("%s: announces %d bytes, over the limit of %d", u, total, f.maxDownload)
	}
	// A server that never stops (or lies about nothing) must not fill the disk.
	n, err := io.Copy(io.MultiWriter(out, h, pw), io.LimitReader(ctxio.Reader(ctx, body), f.maxDownload+1))
	if err == nil && n > f.maxDownload {
		return fmt.Errorf("%s: more than %d bytes, over the limit", u, f.maxDownload)
	}
	if err != nil {
		if total > 0 && n < total {
			return fmt.Errorf("%w: %w", &ShortDownloadError{URL: u, Got: n, Want: total}, err)
		}
		return fmt.Errorf("%s: %w", u, err)
	}
	if total >= 0 && n != total {
		return &ShortDownloadError{URL: u, Got: n, Want: total}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != src.Pin.ArchiveSHA256 {
		return &store.DigestMismatchError{What: "archive " + u, Want: "sha256:" + src.Pin.ArchiveSHA256, Got: "sha256:" + got}
	}
	return out.Close()
}

// fromArchiveFile unpacks an archive file already known to be the pinned
// one (or checks it first: a mirror's file is re-hashed) into the store,
// then keeps the archive as a blob. Nothing is kept if the tree does not
// match its pin.
func (f *Fetcher) fromArchiveFile(ctx context.Context, src stack.Source, file, name, transport string) (string, error) {
	if err := checkFileSHA256(file, src.Pin.ArchiveSHA256, name); err != nil {
		return "", err
	}
	p, err := f.store.AddTree(ctx, src.Pin.Tree, func(dir string) error {
		in, err := os.Open(file)
		if err != nil {
			return err
		}
		defer in.Close()
		var total int64
		if fi, err := in.Stat(); err == nil {
			total = fi.Size()
		}
		e := Event{Source: src.Name, Transport: transport, Phase: "unpack", Total: total}
		_, err = archive.Unpack(ctx, in, dir, archive.Strip(src.Strip), archive.Name(path.Base(name)),
			archive.Progress(func(n int64) { e.Done = n; f.event(e) }))
		return err
	})
	if err != nil {
		return "", err
	}
	if src.Pin.ArchiveSHA256 != "" {
		in, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer in.Close()
		if _, err := f.store.AddBlob(ctx, src.Pin.ArchiveSHA256, in); err != nil {
			return "", err
		}
	}
	return p, nil
}

func checkFileSHA256(file, want, name string) error {
	if want == "" {
		return nil
	}
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &store.DigestMismatchError{What: "archive " + name, Want: "sha256:" + want, Got: "sha256:" + got}
	}
	return nil
}

type progressWriter struct {
	f *Fetcher
	e Event
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.e.Done += int64(len(b))
	p.f.event(p.e)
	return len(b), nil
}

// Archive makes sure the store holds src's release archive as a blob and
// returns its path: from the store, the mirrors, the archive URLs or Debian
// (network transports not offline). cairn mirror uses it for sources that
// were delivered by git.
func (f *Fetcher) Archive(ctx context.Context, src stack.Source) (string, error) {
	sum := src.Pin.ArchiveSHA256
	if sum == "" {
		return "", fmt.Errorf("source %s: no archive_sha256 pin", src.Name)
	}
	if p, ok := f.store.Blob(sum); ok {
		return p, nil
	}
	var errs []error
	for _, m := range f.mirrors {
		p, cerrs := f.blobFromFiles(ctx, sum, mirrorArchiveNames(m, src))
		if p != "" {
			return p, nil
		}
		errs = append(errs, cerrs...)
	}
	if !f.offline {
		for _, u := range src.Archives {
			tmp, done, err := f.store.TempDir("dl")
			if err != nil {
				return "", err
			}
			file := filepath.Join(tmp, "archive")
			err = f.download(ctx, src, u, file)
			if err == nil {
				var in *os.File
				if in, err = os.Open(file); err == nil {
					var p string
					p, err = f.store.AddBlob(ctx, sum, in)
					in.Close()
					if err == nil {
						done()
						return p, nil
					}
				}
			}
			done()
			errs = append(errs, fmt.Errorf("archive %s: %w", u, err))
		}
		if src.Debian != "" {
			p, err := f.debianArchive(ctx, src)
			if err == nil {
				return p, nil
			}
			errs = append(errs, fmt.Errorf("debian %s: %w", src.Debian, err))
		}
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("source %s: archive sha256:%s: %w", src.Name, sum, errNotHere)
	}
	return "", fmt.Errorf("source %s: archive sha256:%s: %w", src.Name, sum, errors.Join(errs...))
}
