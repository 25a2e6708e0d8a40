package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-build/cairn/pkg/seed"
	"github.com/cairn-build/cairn/pkg/store"
)

// Seed makes sure the seed of the lock (its bytes, read by the caller
// through the stack, and its name for messages) is in the store and returns
// its tree and tree digest. The seed is found by the sha256 of the lock's
// bytes (a seed record in the store), so an unchanged lock costs one read;
// it is built once (the .debs cached in the store's deb directory by sha256)
// and stored under its tree digest like any tree. The tree is checked before
// a step mounts it (Builder), not here: a no-op build does not walk it.
func Seed(ctx context.Context, st *store.Store, lockName string, data []byte, opts ...seed.Option) (dir, treeDigest string, err error) {
	sum := sha256.Sum256(data)
	lockHex := hex.EncodeToString(sum[:])
	key := "sha256:" + lockHex
	if d, ok := readSeedRecord(st, key); ok {
		return d.path, d.digest, nil
	}
	unlock, err := st.Lock(ctx, "seed-"+lockHex)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if d, ok := readSeedRecord(st, key); ok {
		return d.path, d.digest, nil
	}

	tmp, cleanup, err := st.TempDir("seed")
	if err != nil {
		return "", "", err
	}
	defer cleanup()
	built := filepath.Join(tmp, "root")
	lock, err := seed.ParseLock(bytes.NewReader(data), lockName)
	if err != nil {
		return "", "", err
	}
	d, err := seed.BuildLock(ctx, lock, built, append([]seed.Option{seed.WithCache(st.DebDir())}, opts...)...)
	if err != nil {
		return "", "", err
	}
	// Move the built tree into the store: AddTree re-hashes what it is
	// given, so what is recorded is what was checked.
	path, err := st.AddTree(ctx, d, func(into string) error { return moveEntries(built, into) })
	if err != nil {
		return "", "", fmt.Errorf("store seed: %w", err)
	}
	if err := st.PutSeedRecord(key, store.Record{Tree: d}); err != nil {
		return "", "", err
	}
	return path, d, nil
}

type seedRecord struct{ path, digest string }

func readSeedRecord(st *store.Store, key string) (seedRecord, bool) {
	r, err := st.SeedRecord(key)
	if err != nil || r.Tree == "" {
		return seedRecord{}, false
	}
	p, ok := st.Tree(r.Tree)
	return seedRecord{p, r.Tree}, ok
}

// moveEntries renames every top-level entry of src into dst (one filesystem).
func moveEntries(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
