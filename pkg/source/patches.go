package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/patch"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// PatchError is a source whose patches could not be applied, or whose
// patched tree is not its pin. It names the source and, through Err, the
// patch (*patch.Error) or both digests (*store.DigestMismatchError).
type PatchError struct {
	Source string
	Err    error
}

func (e *PatchError) Error() string { return fmt.Sprintf("source %s: patches: %v", e.Source, e.Err) }

func (e *PatchError) Unwrap() error { return e.Err }

// DebianTarNames returns the names Debian gives src's packaging tarball:
// NAME_VERSION.debian.tar.{xz,gz,bz2}, VERSION without its epoch.
func DebianTarNames(src stack.Source) []string {
	if src.Debian == "" {
		return nil
	}
	name, ver := src.DebianPackage()
	if i := strings.Index(ver, ":"); i >= 0 {
		ver = ver[i+1:]
	}
	if name == "" || ver == "" || strings.ContainsAny(name+ver, "/\\") {
		return nil
	}
	var out []string
	for _, c := range []string{"xz", "gz", "bz2"} {
		out = append(out, fmt.Sprintf("%s_%s.debian.tar.%s", name, ver, c))
	}
	return out
}

// patchedFromStore returns src's patched tree if the store holds it (and,
// with WithVerify, it still hashes to its pin).
func (f *Fetcher) patchedFromStore(ctx context.Context, src stack.Source) (string, bool) {
	p, ok := f.store.Tree(src.Patches.Tree)
	if !ok {
		return "", false
	}
	if f.verify {
		if err := f.store.VerifyTree(ctx, src.Patches.Tree); err != nil {
			var dm *store.DigestMismatchError
			if errors.As(err, &dm) {
				f.store.RemoveTree(src.Patches.Tree)
			}
			return "", false
		}
	}
	return p, true
}

// patched makes src's patched tree from its pristine tree: a copy of it,
// with the Debian series (as pinned, in series order) and then the local
// patch files applied, stored under its own digest only if it is the pin.
func (f *Fetcher) patched(ctx context.Context, st *stack.Stack, src stack.Source, pristine string) (string, error) {
	if p, ok := f.patchedFromStore(ctx, src); ok {
		return p, nil
	}
	ps, err := f.patchList(ctx, st, src)
	if err != nil {
		return "", &PatchError{Source: src.Name, Err: err}
	}
	f.event(Event{Source: src.Name, Transport: "patches", Phase: fmt.Sprintf("apply %d", len(ps))})
	p, err := f.store.AddTree(ctx, src.Patches.Tree, func(dir string) error {
		if err := copyTree(ctx, pristine, dir); err != nil {
			return fmt.Errorf("copy of the pristine tree %s: %w", src.Pin.Tree, err)
		}
		return patch.Apply(ctx, dir, ps)
	})
	if err != nil {
		var dm *store.DigestMismatchError
		if errors.As(err, &dm) {
			dm.What = fmt.Sprintf("patched tree (pristine %s with %s)", src.Pin.Tree, strings.Join(names(ps), ", "))
		}
		return "", &PatchError{Source: src.Name, Err: err}
	}
	return p, nil
}

func names(ps []patch.Patch) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// patchList reads src's patches in the order they apply.
func (f *Fetcher) patchList(ctx context.Context, st *stack.Stack, src stack.Source) ([]patch.Patch, error) {
	var out []patch.Patch
	if len(src.Patches.Series) > 0 {
		ps, err := f.debianSeries(ctx, st, src)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	for _, l := range src.Patches.Local {
		// Through the stack's root, as the stack was checked: a symlink
		// swapped in since is not followed out of the stack directory.
		data, err := st.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("local patch: %w", err)
		}
		out = append(out, patch.Patch{Name: filepath.Base(l), Data: data, Strip: 1})
	}
	return out, nil
}

// debianSeries unpacks src's pinned packaging tarball and returns the
// patches the stack selects from its debian/patches/series, in series
// order. Every selected name must be in the series, in the same order.
func (f *Fetcher) debianSeries(ctx context.Context, st *stack.Stack, src stack.Source) ([]patch.Patch, error) {
	if _, err := f.DebianTar(ctx, st, src); err != nil {
		return nil, err
	}
	tmp, done, err := f.store.TempDir("debian-tar")
	if err != nil {
		return nil, err
	}
	defer done()
	in, _, err := f.store.OpenBlob(src.Patches.DebianTarSHA256)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	dir := filepath.Join(tmp, "x")
	if _, err := archive.Unpack(ctx, in, dir); err != nil {
		return nil, fmt.Errorf("Debian packaging tarball sha256:%s: %w", src.Patches.DebianTarSHA256, err)
	}
	root, err := os.OpenRoot(filepath.Join(dir, "debian", "patches"))
	if err != nil {
		return nil, fmt.Errorf("Debian packaging tarball of %s: no debian/patches: %w", src.Debian, err)
	}
	defer root.Close()
	seriesData, err := readRootFile(root, "series")
	if err != nil {
		return nil, fmt.Errorf("Debian packaging tarball of %s: debian/patches/series: %w", src.Debian, err)
	}
	series, err := patch.ParseSeries(seriesData)
	if err != nil {
		return nil, fmt.Errorf("%s debian/patches/%w", src.Debian, err)
	}
	pos := map[string]int{}
	for i, e := range series {
		pos[e.Name] = i
	}
	var chosen []patch.SeriesEntry
	if len(src.Patches.Series) == 1 && src.Patches.Series[0] == "*" {
		chosen = series
	} else {
		last := -1
		for _, n := range src.Patches.Series {
			i, ok := pos[n]
			if !ok {
				return nil, fmt.Errorf("patch %s is not in the series of %s (debian/patches/series)", n, src.Debian)
			}
			if i < last {
				return nil, fmt.Errorf("patch %s: listed after %s, but the series of %s applies it before: list them in series order",
					n, series[last].Name, src.Debian)
			}
			last = i
			chosen = append(chosen, series[i])
		}
	}
	var out []patch.Patch
	for _, e := range chosen {
		data, err := readRootFile(root, e.Name)
		if err != nil {
			return nil, fmt.Errorf("patch %s of %s: %w", e.Name, src.Debian, err)
		}
		out = append(out, patch.Patch{Name: e.Name, Data: data, Strip: e.Strip})
	}
	return out, nil
}

// readRootFile reads a regular file inside root; a symlink is refused.
func readRootFile(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	in, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return io.ReadAll(in)
}

// DebianTar makes sure the store holds src's pinned Debian packaging
// tarball (Patches.DebianTarSHA256) and returns its path, trying src's
// transports in order where they apply: the store, the mirrors (by sha256
// or by Debian's file name) and Debian's archive (not offline).
func (f *Fetcher) DebianTar(ctx context.Context, st *stack.Stack, src stack.Source) (string, error) {
	if src.Patches == nil || src.Patches.DebianTarSHA256 == "" {
		return "", fmt.Errorf("source %s: no debian_tar_sha256 pin", src.Name)
	}
	sum := src.Patches.DebianTarSHA256
	fe := &FetchError{Source: src.Name + " (Debian packaging tarball sha256:" + sum + ")"}
	for _, t := range f.Order(st, src) {
		var p string
		var err error
		switch t {
		case stack.TransportStore:
			var ok bool
			if p, ok = f.store.Blob(sum); !ok {
				err = errNotHere
			} else if f.verify {
				err = f.store.VerifyBlob(sum)
			}
		case stack.TransportMirror:
			p, err = f.debianTarFromMirror(ctx, src)
		case stack.TransportDebian:
			switch {
			case src.Debian == "":
				err = ErrNotConfigured
			case f.offline:
				err = ErrOffline
			default:
				var done func()
				if _, done, err = f.debianDownload(ctx, src, debianTar); err == nil {
					done()
					p, _ = f.store.Blob(sum)
				}
			}
		default:
			continue // git, archives and submodules carry no Debian packaging
		}
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		fe.Failures = append(fe.Failures, &TransportError{Source: src.Name, Transport: t, Err: err})
	}
	return "", fe
}

func (f *Fetcher) debianTarFromMirror(ctx context.Context, src stack.Source) (string, error) {
	if len(f.mirrors) == 0 {
		return "", fmt.Errorf("no mirror directory given: %w", ErrNotConfigured)
	}
	sum := src.Patches.DebianTarSHA256
	var errs []error
	for _, m := range f.mirrors {
		cands := []string{filepath.Join(m, "sha256", sum)}
		for _, n := range DebianTarNames(src) {
			cands = append(cands, filepath.Join(m, n))
		}
		p, cerrs := f.blobFromFiles(ctx, sum, cands)
		if p != "" {
			return p, nil
		}
		errs = append(errs, cerrs...)
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("in %s: %w", strings.Join(f.mirrors, ", "), errNotHere)
	}
	return "", errors.Join(errs...)
}

// copyTree copies the tree src into the empty directory dst: directories,
// regular files (new inodes: nothing is shared with the store) and
// symlinks, in name order.
func copyTree(ctx context.Context, src, dst string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	var paths []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		switch {
		case fi.IsDir():
			err = os.Mkdir(target, 0o755)
		case fi.Mode().IsRegular():
			err = copyRootFile(root, p, target, fi.Mode().Perm()|0o200)
		case fi.Mode()&fs.ModeSymlink != 0:
			var link string
			if link, err = root.Readlink(p); err == nil {
				err = os.Symlink(link, target)
			}
		default:
			err = fmt.Errorf("%s: not a file, directory or symlink", p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func copyRootFile(root *os.Root, name, target string, mode os.FileMode) error {
	in, err := root.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// PatchSum is one patch a source applies and the sha256 (hex) of its bytes.
type PatchSum struct {
	Name   string
	SHA256 string
}

// PatchSums returns src's patches in the order they apply, each with the
// sha256 of the bytes that were applied: what an SBOM names. The packaging
// tarball is read from where the fetch left it (the store, or a mirror):
// call it after the source was fetched.
func (f *Fetcher) PatchSums(ctx context.Context, st *stack.Stack, src stack.Source) ([]PatchSum, error) {
	if src.Patches == nil {
		return nil, nil
	}
	ps, err := f.patchList(ctx, st, src)
	if err != nil {
		return nil, &PatchError{Source: src.Name, Err: err}
	}
	out := make([]PatchSum, len(ps))
	for i, p := range ps {
		sum := sha256.Sum256(p.Data)
		out[i] = PatchSum{Name: p.Name, SHA256: hex.EncodeToString(sum[:])}
	}
	return out, nil
}

// blobFromFiles stores the first of the candidate files (a mirror's, by name
// or by sha256) whose bytes are sum, and returns its blob path; "" and what
// went wrong with each file that exists when none is.
func (f *Fetcher) blobFromFiles(ctx context.Context, sum string, cands []string) (string, []error) {
	var errs []error
	for _, c := range cands {
		fi, err := os.Stat(c)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		in, err := os.Open(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := f.store.AddBlob(ctx, sum, in)
		in.Close()
		if err == nil {
			return p, nil
		}
		errs = append(errs, fmt.Errorf("mirror %s: %w", c, err))
	}
	return "", errs
}
