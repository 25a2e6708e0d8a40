package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/cairn-build/cairn/internal/atomicfile"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-build/cairn/pkg/seed"
	"github.com/cairn-build/cairn/pkg/store"
)

// Seed makes sure the seed of the lock (its bytes, read by the caller
// through the stack, and its name for messages) is in the store and returns
// its tree and tree digest. The seed is found by the sha256 of the lock's bytes (a
// record under state/seeds/), so an unchanged lock costs one read; it is
// built once (the .debs cached under state/debs/ by sha256) and stored under
// its tree digest like any tree.
func Seed(ctx context.Context, st *store.Store, lockName string, data []byte, opts ...seed.Option) (dir, treeDigest string, err error) {
	sum := sha256.Sum256(data)
	lockHex := hex.EncodeToString(sum[:])
	records, err := st.StateDir("seeds")
	if err != nil {
		return "", "", err
	}
	record := filepath.Join(records, lockHex)
	if d, ok := readSeedRecord(st, record); ok {
		return d.path, d.digest, nil
	}
	unlock, err := st.Lock(ctx, "seed-"+lockHex)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if d, ok := readSeedRecord(st, record); ok {
		return d.path, d.digest, nil
	}

	debs, err := st.StateDir("debs")
	if err != nil {
		return "", "", err
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
	d, err := seed.BuildLock(ctx, lock, built, append([]seed.Option{seed.WithCache(debs)}, opts...)...)
	if err != nil {
		return "", "", err
	}
	// Move the built tree into the store: AddTree re-hashes what it is
	// given, so what is recorded is what was checked.
	path, err := st.AddTree(ctx, d, func(into string) error { return moveEntries(built, into) })
	if err != nil {
		return "", "", fmt.Errorf("store seed: %w", err)
	}
	if err := atomicfile.WriteBytes(record, []byte(d+"\n"), 0o644); err != nil {
		return "", "", err
	}
	return path, d, nil
}

type seedRecord struct{ path, digest string }

func readSeedRecord(st *store.Store, record string) (seedRecord, bool) {
	data, err := os.ReadFile(record)
	if err != nil {
		return seedRecord{}, false
	}
	d := strings.TrimSpace(string(data))
	p, ok := st.Tree(d)
	return seedRecord{p, d}, ok
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
