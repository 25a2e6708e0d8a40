package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cairn-build/cairn/pkg/stack"
)

// mirrorArchiveNames lists the files of mirror directory dir that may hold
// src's archive, most specific first: by sha256, by each URL's base name,
// then by Debian's orig tarball names.
func mirrorArchiveNames(dir string, src stack.Source) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if src.Pin.ArchiveSHA256 != "" {
		add(filepath.Join(dir, "sha256", src.Pin.ArchiveSHA256))
	}
	for _, u := range src.Archives {
		if b := archiveBaseName(u); b != "" {
			add(filepath.Join(dir, b))
		}
	}
	for _, n := range DebianOrigNames(src) {
		add(filepath.Join(dir, n))
	}
	return out
}

// archiveBaseName is the file name a URL names, or "" if it names none that
// is safe to look up in a directory.
func archiveBaseName(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	b := path.Base(pu.Path)
	if b == "." || b == "/" || b == ".." || strings.HasPrefix(b, ".") {
		return ""
	}
	return b
}

// DebianOrigNames returns the names Debian gives src's orig tarball:
// NAME_UPSTREAM.orig.tar.{gz,bz2,xz}, UPSTREAM being the version without
// its epoch and Debian revision.
func DebianOrigNames(src stack.Source) []string {
	if src.Debian == "" {
		return nil
	}
	name, ver := src.DebianPackage()
	if i := strings.Index(ver, ":"); i >= 0 {
		ver = ver[i+1:]
	}
	if i := strings.LastIndex(ver, "-"); i >= 0 {
		ver = ver[:i]
	}
	if name == "" || ver == "" || strings.ContainsAny(name+ver, "/\\") {
		return nil
	}
	var out []string
	for _, c := range []string{"gz", "bz2", "xz"} {
		out = append(out, fmt.Sprintf("%s_%s.orig.tar.%s", name, ver, c))
	}
	return out
}

// fromMirror looks for src in every mirror directory: its archive (by
// sha256, by name), then its git repository by URL path.
func (f *Fetcher) fromMirror(ctx context.Context, src stack.Source) (string, error) {
	if len(f.mirrors) == 0 {
		return "", fmt.Errorf("no mirror directory given: %w", ErrNotConfigured)
	}
	var errs []error
	for _, m := range f.mirrors {
		if src.Pin.ArchiveSHA256 == "" {
			break
		}
		for _, cand := range mirrorArchiveNames(m, src) {
			fi, err := os.Stat(cand)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			p, err := f.fromArchiveFile(ctx, src, cand, cand, stack.TransportMirror)
			if err == nil {
				return p, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", cand, err))
		}
	}
	if src.Git != "" && src.Pin.GitCommit != "" {
		if cands := f.mirrorGitCandidates(src.Git); len(cands) > 0 {
			p, err := f.fromGit(ctx, src, src.Git, cands, true)
			if err == nil {
				return p, nil
			}
			if !errors.Is(err, errNotHere) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("in %s: %w", strings.Join(f.mirrors, ", "), errNotHere)
	}
	return "", errors.Join(errs...)
}
