package source

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

func serve(t testing.TB, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestArchiveURL(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, "a")
	srv := serve(t, fx.tgz)
	st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, `archives = ["`+srv.URL+`/fixture-1.0.tar.gz"]`))
	s := openStore(t)
	var events int
	f := New(s, WithProgress(func(Event) { events++ }))
	res, err := f.FetchAll(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Transport != stack.TransportArchive || res[0].Tree != fx.tree {
		t.Fatalf("got %+v, want fx delivered by archive as %s", res, fx.tree)
	}
	if _, ok := s.Blob(fx.sha); !ok {
		t.Errorf("archive blob sha256:%s not kept", fx.sha)
	}
	if events == 0 {
		t.Errorf("got no progress events, want some")
	}
	// Second run: the store delivers.
	res, err = f.FetchAll(ctx, st, nil)
	if err != nil || res[0].Transport != stack.TransportStore {
		t.Fatalf("second fetch: got %+v, %v, want transport store", res, err)
	}
}

// A server that announces the whole length, sends half and closes.
func TestDownloadCutShort(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, "cut")
	var cut atomic.Bool
	cut.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(fx.tgz)))
		if !cut.Load() {
			w.Write(fx.tgz)
			return
		}
		w.Write(fx.tgz[:len(fx.tgz)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}))
	defer srv.Close()
	st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, `archives = ["`+srv.URL+`/fixture-1.0.tar.gz"]`+"\ntransports = [\"store\", \"archive\"]"))
	s := openStore(t)
	f := New(s)
	_, err := f.FetchAll(ctx, st, nil)
	var short *ShortDownloadError
	if !errors.As(err, &short) {
		t.Fatalf("got %v, want a *ShortDownloadError", err)
	}
	if short.Want != int64(len(fx.tgz)) || short.Got >= short.Want {
		t.Errorf("got %d of %d bytes, want fewer than %d of %d", short.Got, short.Want, len(fx.tgz), len(fx.tgz))
	}
	if !strings.Contains(err.Error(), "source fx") || !strings.Contains(err.Error(), "archive") {
		t.Errorf("error %q does not name the source and the transport", err)
	}
	if got := storeEntries(t, s); len(got) != 0 {
		t.Errorf("store after a cut download: got %v, want nothing", got)
	}
	cut.Store(false)
	if _, err := f.FetchAll(ctx, st, nil); err != nil {
		t.Fatalf("next run: %v", err)
	}
}

// TestMismatchEveryTransport gives each transport content that is not the
// pin: the error names both digests and the store keeps nothing new.
func TestMismatchEveryTransport(t *testing.T) {
	testenv.NeedTool(t, "git")
	ctx := context.Background()
	good := newFixture(t, "good")
	bad := newFixture(t, "bad")

	tests := []struct {
		name string
		// setup returns the source's TOML and the fetcher options.
		setup func(t *testing.T, s *store.Store) (string, []Option)
		want  string // the digest the error must name as wanted
		got   string // and as found
	}{
		{"store", func(t *testing.T, s *store.Store) (string, []Option) {
			// Store the good tree, then tamper with it.
			p, err := s.AddTree(ctx, good.tree, func(d string) error { good.writeFiles(t, d); return nil })
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(p, "README")
			os.Chmod(f, 0o644)
			os.WriteFile(f, []byte("tampered\n"), 0o644)
			return sourceTOML("fx", good, `transports = ["store"]`), []Option{WithVerify(true)}
		}, good.tree, ""},
		{"mirror", func(t *testing.T, s *store.Store) (string, []Option) {
			m := t.TempDir()
			os.WriteFile(filepath.Join(m, "fixture-1.0.tar.gz"), bad.tgz, 0o644)
			return sourceTOML("fx", good, `archives = ["https://example.invalid/fixture-1.0.tar.gz"]`+"\ntransports = [\"mirror\"]"),
				[]Option{WithMirrors(m)}
		}, "sha256:" + good.sha, "sha256:" + bad.sha},
		{"archive", func(t *testing.T, s *store.Store) (string, []Option) {
			srv := serve(t, bad.tgz)
			return sourceTOML("fx", good, `archives = ["`+srv.URL+`/fixture-1.0.tar.gz"]`+"\ntransports = [\"archive\"]"), nil
		}, "sha256:" + good.sha, "sha256:" + bad.sha},
		{"archive tree", func(t *testing.T, s *store.Store) (string, []Option) {
			// The archive is the pinned one, the tree pin is not its tree.
			srv := serve(t, bad.tgz)
			toml := strings.Replace(sourceTOML("fx", bad, `archives = ["`+srv.URL+`/fixture-1.0.tar.gz"]`+"\ntransports = [\"archive\"]"), bad.tree, good.tree, 1)
			return toml, nil
		}, good.tree, bad.tree},
		{"git", func(t *testing.T, s *store.Store) (string, []Option) {
			repo, commit, _ := bad.gitRepo(t)
			m := t.TempDir()
			u := bareMirror(t, m, repo, "fx")
			return sourceTOML("fx", good, `git = "`+u+`"`+"\ngit_commit = \""+commit+"\"\ntransports = [\"git\"]"), []Option{WithMirrors(m)}
		}, good.tree, bad.tree},
		{"submodule", func(t *testing.T, s *store.Store) (string, []Option) {
			super, commit := superWithSubmodule(t, bad)
			return sourceTOML("fx", good, "submodule = \"sub\"\ngit_commit = \""+commit+"\"\ntransports = [\"submodule\"]"),
				[]Option{WithSuperproject(super)}
		}, good.tree, bad.tree},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			toml, opts := tt.setup(t, s)
			before := storeEntries(t, s)
			st := stackOf(t, t.TempDir(), toml)
			_, err := New(s, opts...).FetchAll(ctx, st, nil)
			var dm *store.DigestMismatchError
			if !errors.As(err, &dm) {
				t.Fatalf("got %v, want a *store.DigestMismatchError", err)
			}
			if dm.Want != tt.want || (tt.got != "" && dm.Got != tt.got) {
				t.Errorf("got want=%s got=%s, want want=%s got=%s", dm.Want, dm.Got, tt.want, tt.got)
			}
			msg := err.Error()
			for _, s := range []string{dm.Want, dm.Got, "source fx", tt.name[:strings.IndexByte(tt.name+" ", ' ')]} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not name %q", msg, s)
				}
			}
			after := storeEntries(t, s)
			if tt.name == "store" {
				before = nil // the tampered entry is dropped
			}
			if strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("store: got %v, want %v (nothing new)", after, before)
			}
		})
	}
}

// superWithSubmodule makes a superproject with the fixture as a checked-out
// submodule at "sub", and returns it and the submodule's commit.
func superWithSubmodule(t testing.TB, fx *fixture) (string, string) {
	t.Helper()
	repo, commit, _ := fx.gitRepo(t)
	super := t.TempDir()
	gitRun(t, super, "init", "-q", "-b", "main")
	gitRun(t, super, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+repo, "sub")
	gitRun(t, super, "commit", "-q", "-m", "add sub")
	return super, commit
}

func TestSubmodule(t *testing.T) {
	testenv.NeedTool(t, "git")
	ctx := context.Background()
	fx := newFixture(t, "sub")
	super, commit := superWithSubmodule(t, fx)
	_, _, tree := fx.gitRepo(t)
	// A dirty working tree must not leak into what is delivered.
	os.WriteFile(filepath.Join(super, "sub", "README"), []byte("dirty\n"), 0o644)

	s := openStore(t)
	st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, "submodule = \"sub\"\ngit_commit = \""+commit+"\"\ngit_tree = \""+tree+"\"\ntransports = [\"submodule\"]"))
	res, err := New(s, WithSuperproject(super), WithOffline(true)).FetchAll(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := digest.FromDir(ctx, res[0].Path)
	if err != nil || m.TreeDigest() != fx.tree || m.GitTree() != tree {
		t.Fatalf("delivered tree: got %s git %s (%v), want %s git %s", m.TreeDigest(), m.GitTree(), err, fx.tree, tree)
	}

	t.Run("gitlink differs from the pin", func(t *testing.T) {
		other := strings.Repeat("1", 40)
		st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, "submodule = \"sub\"\ngit_commit = \""+other+"\"\ntransports = [\"submodule\"]"))
		_, err := New(openStore(t), WithSuperproject(super)).FetchAll(ctx, st, nil)
		var gm *GitlinkMismatchError
		if !errors.As(err, &gm) || gm.Want != other || gm.Got != commit {
			t.Fatalf("got %v, want a *GitlinkMismatchError naming %s and %s", err, other, commit)
		}
		if !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), commit) {
			t.Errorf("error %q does not name both commits", err)
		}
	})
}

// A gitlink whose submodule is not checked out: delivered from a mirror's
// bare repository by the .gitmodules URL, offline; without the mirror, the
// transport fails cleanly, saying so, and the next one delivers.
func TestSubmoduleNotCheckedOut(t *testing.T) {
	testenv.NeedTool(t, "git")
	ctx := context.Background()
	fx := newFixture(t, "nco")
	repo, commit, _ := fx.gitRepo(t)
	mirror := t.TempDir()
	u := bareMirror(t, mirror, repo, "fx")
	super := t.TempDir()
	gitRun(t, super, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(super, ".gitmodules"), []byte("[submodule \"sub\"]\n\tpath = sub\n\turl = "+u+"\n"), 0o644)
	gitRun(t, super, "update-index", "--add", "--cacheinfo", "160000,"+commit+",sub")
	gitRun(t, super, "add", ".gitmodules")
	gitRun(t, super, "commit", "-q", "-m", "gitlink only")

	st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, "submodule = \"sub\"\ngit_commit = \""+commit+"\"\ntransports = [\"submodule\", \"mirror\"]"))
	res, err := New(openStore(t), WithSuperproject(super), WithMirrors(mirror), WithOffline(true)).FetchAll(ctx, st, nil)
	if err != nil || res[0].Transport != stack.TransportSubmodule {
		t.Fatalf("got %+v, %v, want delivered by submodule from the mirror", res, err)
	}

	// No mirror holds it: offline, the submodule transport fails, naming why.
	_, err = New(openStore(t), WithSuperproject(super), WithOffline(true)).FetchAll(ctx, st, nil)
	var fe *FetchError
	if !errors.As(err, &fe) || len(fe.Failures) != 2 {
		t.Fatalf("got %v, want a *FetchError with two failures", err)
	}
	if msg := fe.Failures[0].Error(); !strings.Contains(msg, "not checked out") || !strings.Contains(msg, "submodule") {
		t.Errorf("submodule failure %q does not say it is not checked out", msg)
	}
}

func TestHostileGitmodules(t *testing.T) {
	testenv.NeedTool(t, "git")
	ctx := context.Background()
	fx := newFixture(t, "h")
	outside := t.TempDir()
	tests := []struct {
		name   string
		module string // the .gitmodules text
		field  string
		value  string
		prep   func(super string)
	}{
		{"name with ..", "[submodule \"../../hooks\"]\n\tpath = sub\n\turl = https://example.invalid/x\n", "name", "../../hooks", nil},
		{"path with ..", "[submodule \"sub\"]\n\tpath = sub/../../x\n\turl = https://example.invalid/x\n", "path", "sub/../../x", nil},
		{"absolute path", "[submodule \"sub\"]\n\tpath = /etc\n\turl = https://example.invalid/x\n", "path", "/etc", nil},
		{"path through a symlink", "[submodule \"sub\"]\n\tpath = out/sub\n\turl = https://example.invalid/x\n", "path", "out/sub",
			func(super string) { os.Symlink(outside, filepath.Join(super, "out")) }},
		{"path starting with -", "[submodule \"sub\"]\n\tpath = -rf\n\turl = https://example.invalid/x\n", "path", "-rf", nil},
		{"url starting with -", "[submodule \"sub\"]\n\tpath = sub\n\turl = -u./payload\n", "url", "-u./payload", nil},
		{"ext:: url", "[submodule \"sub\"]\n\tpath = sub\n\turl = ext::sh -c touch% /tmp/pwned\n", "url", "ext::sh -c touch% /tmp/pwned", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			super := t.TempDir()
			gitRun(t, super, "init", "-q", "-b", "main")
			os.WriteFile(filepath.Join(super, ".gitmodules"), []byte(tt.module), 0o644)
			if tt.prep != nil {
				tt.prep(super)
			}
			st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, "submodule = \"sub\"\ngit_commit = \""+strings.Repeat("a", 40)+"\"\ntransports = [\"submodule\"]"))
			s := openStore(t)
			_, err := New(s, WithSuperproject(super)).FetchAll(ctx, st, nil)
			var ue *UnsafeSubmoduleError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want an *UnsafeSubmoduleError", err)
			}
			if ue.Field != tt.field || ue.Value != tt.value {
				t.Errorf("refused %s %q, want %s %q", ue.Field, ue.Value, tt.field, tt.value)
			}
			if !strings.Contains(err.Error(), tt.value) {
				t.Errorf("error %q does not name %q", err, tt.value)
			}
			if got := storeEntries(t, s); len(got) != 0 {
				t.Errorf("store: got %v, want nothing", got)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("something was written outside the tree: %v", ents)
			}
		})
	}
}

func TestGitMirrorAndRewrite(t *testing.T) {
	testenv.NeedTool(t, "git")
	ctx := context.Background()
	fx := newFixture(t, "g")
	repo, commit, tree := fx.gitRepo(t)
	mirror := t.TempDir()
	u := bareMirror(t, mirror, repo, "fx")
	toml := sourceTOML("fx", fx, `git = "`+u+`"`+"\ngit_commit = \""+commit+"\"\ngit_tree = \""+tree+"\"")
	tests := []struct {
		name      string
		opts      []Option
		transport string
	}{
		{"mirror by URL path", []Option{WithMirrors(mirror), WithOffline(true)}, stack.TransportMirror},
		{"rewrite to a file URL", []Option{WithGitRewrites(Rewrite{From: "https://example.invalid/git/", To: "file://" + mirror + "/git/example.invalid/git/"}), WithTransports([]string{"git"})}, stack.TransportGit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stackOf(t, t.TempDir(), toml)
			res, err := New(openStore(t), tt.opts...).FetchAll(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Transport != tt.transport || res[0].Tree != fx.tree {
				t.Errorf("got %s %s, want %s %s", res[0].Transport, res[0].Tree, tt.transport, fx.tree)
			}
		})
	}
	t.Run("commit missing", func(t *testing.T) {
		st := stackOf(t, t.TempDir(), strings.Replace(toml, commit, strings.Repeat("b", 40), 1))
		_, err := New(openStore(t), WithMirrors(mirror), WithOffline(true)).FetchAll(ctx, st, nil)
		if err == nil || !strings.Contains(err.Error(), strings.Repeat("b", 40)) {
			t.Fatalf("got %v, want an error naming the missing commit", err)
		}
	})
}

func TestMirrorBySHA256AndDebianName(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, "m")
	tests := []struct {
		name string
		file string
		toml string
	}{
		{"by sha256", filepath.Join("sha256", fx.sha), ""},
		{"by url name", "fixture-1.0.tar.gz", `archives = ["https://example.invalid/dl/fixture-1.0.tar.gz"]`},
		{"by debian orig name", "fixture_1.0.orig.tar.gz", `debian = "fixture=1:1.0-3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := t.TempDir()
			os.MkdirAll(filepath.Join(m, "sha256"), 0o755)
			os.WriteFile(filepath.Join(m, tt.file), fx.tgz, 0o644)
			st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, tt.toml))
			res, err := New(openStore(t), WithMirrors(m), WithOffline(true)).FetchAll(ctx, st, nil)
			if err != nil || res[0].Transport != stack.TransportMirror {
				t.Fatalf("got %+v, %v, want delivered by mirror", res, err)
			}
		})
	}
}

// Offline, every source that is not there is named, not just the first.
func TestOfflineListsEachMissing(t *testing.T) {
	ctx := context.Background()
	a, b := newFixture(t, "1"), newFixture(t, "2")
	st := stackOf(t, t.TempDir(),
		sourceTOML("one", a, `archives = ["https://example.invalid/one.tar.gz"]`),
		sourceTOML("two", b, `debian = "two=1.0-1"`))
	_, err := New(openStore(t), WithMirrors(t.TempDir()), WithOffline(true)).FetchAll(ctx, st, nil)
	if err == nil {
		t.Fatal("got no error, want both sources missing")
	}
	for _, want := range []string{"source one", "source two", "not allowed offline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var fe *FetchError
	if !errors.As(err, &fe) {
		t.Errorf("got %T, want *FetchError inside", err)
	}
	if !errors.Is(err, ErrOffline) {
		t.Errorf("errors.Is(err, ErrOffline) = false, want true")
	}
}

func TestRewriteURL(t *testing.T) {
	rws := []Rewrite{{"https://a.invalid/", "file:///m/a/"}, {"https://a.invalid/git/", "file:///m/git/"}}
	tests := []struct{ in, want string }{
		{"https://a.invalid/git/musl", "file:///m/git/musl"},
		{"https://a.invalid/x", "file:///m/a/x"},
		{"https://b.invalid/x", "https://b.invalid/x"},
	}
	for _, tt := range tests {
		if got := rewriteURL(tt.in, rws); got != tt.want {
			t.Errorf("rewriteURL(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDebianOrigNames(t *testing.T) {
	tests := []struct{ deb, want string }{
		{"musl=1.2.5-3.1~deb13u1", "musl_1.2.5.orig.tar.gz"},
		{"busybox=1:1.37.0-6", "busybox_1.37.0.orig.tar.gz"},
		{"djbdns=1:1.05-15", "djbdns_1.05.orig.tar.gz"},
	}
	for _, tt := range tests {
		got := DebianOrigNames(stack.Source{Debian: tt.deb})
		if len(got) != 3 || got[0] != tt.want {
			t.Errorf("DebianOrigNames(%s): got %v, want %s first", tt.deb, got, tt.want)
		}
	}
}

// A server that sends more than the limit, with no length announced, is cut
// off and nothing is kept.
func TestDownloadOverLimit(t *testing.T) {
	fx := newFixture(t, "big")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 64; i++ {
			w.Write(make([]byte, 1024))
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
	}))
	defer srv.Close()
	st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, `archives = ["`+srv.URL+`/fixture-1.0.tar.gz"]`+"\ntransports = [\"archive\"]"))
	s := openStore(t)
	_, err := New(s, WithMaxDownload(16<<10)).FetchAll(context.Background(), st, nil)
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("got %v, want the download refused over the limit", err)
	}
	if got := storeEntries(t, s); len(got) != 0 {
		t.Errorf("store: got %v, want nothing", got)
	}
}
