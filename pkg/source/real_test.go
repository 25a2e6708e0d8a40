package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

const defaultStack = "../../toolchain/stack.toml"

// TestDebianRealSources fetches the default stack's sources through the
// Debian transport alone, from the archive this machine's apt uses, and
// checks every pin; then a wrong archive pin is refused naming both sums.
func TestDebianRealSources(t *testing.T) {
	testenv.NeedNetwork(t)
	testenv.NeedTool(t, "apt-get")
	ctx := context.Background()
	st, err := stack.Load(defaultStack)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	f := New(s, WithTransports([]string{stack.TransportDebian}))
	res, err := f.FetchAll(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(st.Sources) {
		t.Fatalf("got %d sources, want %d", len(res), len(st.Sources))
	}
	for i, r := range res {
		src := st.Sources[i]
		if r.Transport != stack.TransportDebian {
			t.Errorf("%s: got transport %s, want debian", r.Source, r.Transport)
		}
		m, err := digest.FromDir(ctx, r.Path)
		if err != nil {
			t.Fatal(err)
		}
		if m.TreeDigest() != src.Tree() || r.Tree != src.Tree() {
			t.Errorf("%s: got tree %s (result %s), want %s", src.Name, m.TreeDigest(), r.Tree, src.Tree())
		}
		// The pristine tree is what Debian's orig tarball holds: the pins
		// (tree digest, git tree) are of it.
		if src.Patches != nil {
			p, ok := s.Tree(src.Pin.Tree)
			if !ok || r.Pristine != src.Pin.Tree {
				t.Fatalf("%s: pristine tree %s not in the store (result: %s)", src.Name, src.Pin.Tree, r.Pristine)
			}
			if m, err = digest.FromDir(ctx, p); err != nil {
				t.Fatal(err)
			}
			if m.TreeDigest() != src.Pin.Tree {
				t.Errorf("%s: got pristine tree %s, want %s", src.Name, m.TreeDigest(), src.Pin.Tree)
			}
		}
		if src.Pin.GitTree != "" && m.GitTree() != src.Pin.GitTree {
			t.Errorf("%s: got git tree %s, want %s", src.Name, m.GitTree(), src.Pin.GitTree)
		}
		if err := s.VerifyBlob(src.Pin.ArchiveSHA256); err != nil {
			t.Errorf("%s: archive blob: %v", src.Name, err)
		}
	}

	t.Run("wrong archive pin", func(t *testing.T) {
		musl := *st.Source("musl")
		wrong := strings.Repeat("0", 64)
		musl.Pin.ArchiveSHA256 = wrong
		musl.Pin.Tree = "sha256:" + strings.Repeat("1", 64)
		s2 := openStore(t)
		// Share the apt state so that the indices are not fetched again.
		os.Remove(filepath.Join(s2.Dir(), "state", "apt"))
		if err := os.Symlink(filepath.Join(s.Dir(), "state", "apt"), filepath.Join(s2.Dir(), "state", "apt")); err != nil {
			t.Fatal(err)
		}
		_, err := New(s2, WithTransports([]string{stack.TransportDebian})).Fetch(ctx, st, musl)
		var dm *store.DigestMismatchError
		if !errors.As(err, &dm) {
			t.Fatalf("got %v, want a *store.DigestMismatchError", err)
		}
		for _, want := range []string{"sha256:" + wrong, st.Source("musl").Pin.ArchiveSHA256, "debian", "source musl"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
		if got := storeEntries(t, s2); len(got) != 0 {
			t.Errorf("store after a mismatch: got %v, want nothing", got)
		}
	})
}
