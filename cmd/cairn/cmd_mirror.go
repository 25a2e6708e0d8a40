package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/source"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// mirrorExtras are further writers of `cairn mirror` (the seed's .debs):
// another command file appends to it in its init.
var mirrorExtras []func(ctx context.Context, st *stack.Stack, s *store.Store, dir string) error

func init() {
	var sf sourceFlags
	cmd := &cobra.Command{
		Use:   "mirror DIR",
		Short: "Write everything the stack needs into DIR, for fetch --offline --mirror DIR",
		Long: `mirror writes each source's release archive into DIR twice over: by sha256
as DIR/sha256/HEX and by file name (the archive URL's base name and, for a
Debian source, its orig tarball name), taking it from the store or fetching
it first. A source whose patches come from Debian has its pinned packaging
tarball written the same way: DIR/sha256/HEX and NAME_VERSION.debian.tar.*. A machine with no network can then run
  cairn fetch --offline --mirror DIR
Files already in DIR with the right content are left as they are.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if _, err := sf.net.timeouts(); err != nil {
				return err
			}
			st, err := sf.loadStack()
			if err != nil {
				return err
			}
			s, err := sf.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			f, done, err := sf.fetcher(cmd, s)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			var errs []error
			for _, src := range st.Sources {
				names, err := mirrorSource(ctx, f, s, st, src, dir)
				if err != nil {
					errs = append(errs, fmt.Errorf("source %s: %w", src.Name, err))
					continue
				}
				for _, n := range names {
					fmt.Fprintf(cmd.OutOrStdout(), "%-12s %s\n", src.Name, n)
				}
			}
			for _, x := range mirrorExtras {
				if err := x(ctx, st, s, dir); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	addSourceFlags(cmd, &sf)
	rootCmd.AddCommand(cmd)
}

// mirrorSource writes src's archive into dir and returns the names written.
func mirrorSource(ctx context.Context, f *source.Fetcher, s *store.Store, st *stack.Stack, src stack.Source, dir string) ([]string, error) {
	if src.Pin.ArchiveSHA256 == "" {
		return nil, errors.New("no archive_sha256 pin: only archives are mirrored")
	}
	blob, err := f.Archive(ctx, src)
	if err != nil {
		return nil, err
	}
	names := []string{filepath.Join("sha256", src.Pin.ArchiveSHA256)}
	for _, u := range src.Archives {
		if b := filepath.Base(u); b != "" && b != "." && b != "/" {
			names = append(names, b)
		}
	}
	if src.Debian != "" {
		ext, err := compressionExt(blob)
		if err != nil {
			return nil, err
		}
		for _, n := range source.DebianOrigNames(src) {
			if filepath.Ext(n) == ext {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if err := copyChecked(blob, filepath.Join(dir, n), src.Pin.ArchiveSHA256); err != nil {
			return nil, err
		}
	}
	if src.Patches == nil || src.Patches.DebianTarSHA256 == "" {
		return names, nil
	}
	sum := src.Patches.DebianTarSHA256
	tar, err := f.DebianTar(ctx, st, src)
	if err != nil {
		return nil, err
	}
	ext, err := compressionExt(tar)
	if err != nil {
		return nil, err
	}
	tarNames := []string{filepath.Join("sha256", sum)}
	for _, n := range source.DebianTarNames(src) {
		if filepath.Ext(n) == ext {
			tarNames = append(tarNames, n)
		}
	}
	for _, n := range tarNames {
		if err := copyChecked(tar, filepath.Join(dir, n), sum); err != nil {
			return nil, err
		}
	}
	return append(names, tarNames...), nil
}

func compressionExt(p string) (string, error) {
	in, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer in.Close()
	_, c, err := archive.Open(in)
	if err != nil {
		return "", err
	}
	switch c {
	case archive.Gzip:
		return ".gz", nil
	case archive.Bzip2:
		return ".bz2", nil
	case archive.Xz:
		return ".xz", nil
	}
	return ".tar", nil
}

// copyChecked copies blob to dst through a temporary name, unless dst
// already holds the content sum; the copy is hashed as it is written.
func copyChecked(blob, dst, sum string) error {
	if got, err := fileSum(dst); err == nil && got == sum {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		tmp.Close()
		return &store.DigestMismatchError{What: "stored blob " + blob, Want: "sha256:" + sum, Got: "sha256:" + got}
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func fileSum(p string) (string, error) {
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
