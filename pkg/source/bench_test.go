package source

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

var (
	benchOnce  sync.Once
	benchStore string
	benchErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore != "" {
		removeTree(benchStore)
	}
	os.Exit(code)
}

// removeTree removes a store directory, whose trees are read-only.
func removeTree(dir string) {
	os.Chmod(dir, 0o755)
	walkDirs(dir, func(p string) { os.Chmod(p, 0o755) })
	os.RemoveAll(dir)
}

func walkDirs(dir string, fn func(string)) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() {
			p := dir + "/" + e.Name()
			fn(p)
			walkDirs(p, fn)
		}
	}
}

// cachedDefaultStack returns a store holding every source of the default
// stack, fetched once per process (through Debian: needs the archive).
func cachedDefaultStack(b *testing.B) (*stack.Stack, string) {
	testenv.NeedNetwork(b)
	st, err := stack.Load(defaultStack)
	if err != nil {
		b.Fatal(err)
	}
	benchOnce.Do(func() {
		benchStore, benchErr = os.MkdirTemp("", "cairn-bench-store-")
		if benchErr != nil {
			return
		}
		s, err := store.Open(benchStore)
		if err != nil {
			benchErr = err
			return
		}
		defer s.Close()
		_, benchErr = New(s).FetchAll(context.Background(), st, nil)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return st, benchStore
}

// BenchmarkFetchOfflineCached is `cairn fetch --offline` with every source
// already in the store: open the store, resolve each source, close. The
// goal is under 50 ms per run for the default stack. The verify case also
// re-hashes every stored tree (`--verify`), for comparison.
func BenchmarkFetchOfflineCached(b *testing.B) {
	st, dir := cachedDefaultStack(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		verify bool
	}{{"store", false}, {"verify", true}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s, err := store.Open(dir)
				if err != nil {
					b.Fatal(err)
				}
				res, err := New(s, WithOffline(true), WithVerify(bc.verify)).FetchAll(ctx, st, nil)
				s.Close()
				if err != nil || len(res) != len(st.Sources) {
					b.Fatalf("got %d results, %v", len(res), err)
				}
			}
		})
	}
}
