package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/cairn-build/cairn/internal/atomicfile"
	"path"
	"path/filepath"

	"github.com/cairn-build/cairn/pkg/seed"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// cairn mirror also writes the seed's .debs, by their pool file name, so an
// offline farm can run `cairn build --offline --mirror DIR`.
func init() {
	mirrorExtras = append(mirrorExtras, mirrorSeed)
}

func mirrorSeed(ctx context.Context, st *stack.Stack, s *store.Store, dir string) error {
	data, err := st.ReadFile(st.Seed.Lock)
	if err != nil {
		return fmt.Errorf("seed lock: %w", err)
	}
	lock, err := seed.ParseLock(bytes.NewReader(data), st.Seed.Lock)
	if err != nil {
		return err
	}
	cache, err := s.DebDir(), error(nil)
	if err != nil {
		return err
	}
	files, err := seed.Fetch(ctx, lock, "", seed.WithCache(cache))
	if err != nil {
		return fmt.Errorf("mirror the seed: %w", err)
	}
	for _, p := range lock.Packages {
		dst := filepath.Join(dir, path.Base(p.Filename))
		if sum, err := fileSum(dst); err == nil && sum == p.SHA256 {
			continue
		}
		if err := atomicfile.Copy(files[p.Name], dst, 0o644); err != nil {
			return fmt.Errorf("mirror %s: %w", p.Name, err)
		}
	}
	return nil
}
