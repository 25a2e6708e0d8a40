package source

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/stack"
)

// TestGitOverHTTP fetches through go-git from a real smart-HTTP server (git
// http-backend under net/http/cgi). The tip commit comes at depth 1; an
// older commit, which the server will not hand out by its id, comes by the
// fallback full fetch, verified locally.
func TestGitOverHTTP(t *testing.T) {
	git := testenv.NeedTool(t, "git")
	backend := filepath.Join(filepath.Dir(git), "..", "lib", "git-core", "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		backend = "/usr/lib/git-core/git-http-backend"
	}
	if _, err := os.Stat(backend); err != nil {
		testenv.SkipOrFail(t, "git-http-backend not found (package git)")
	}
	ctx := context.Background()
	old := newFixture(t, "old")
	repo, oldCommit, _ := old.gitRepo(t)
	tip := newFixture(t, "tip")
	tip.writeFiles(t, repo)
	gitRun(t, repo, "commit", "-q", "-a", "-m", "tip")
	tipCommit := gitRun(t, repo, "rev-parse", "HEAD")

	root := t.TempDir()
	gitRun(t, root, "clone", "-q", "--bare", repo, filepath.Join(root, "fx.git"))
	var requests atomic.Int32
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	u := srv.URL + "/fx.git"

	tests := []struct {
		name   string
		fx     *fixture
		commit string
	}{
		{"tip at depth 1", tip, tipCommit},
		{"older commit by full fetch", old, oldCommit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stackOf(t, t.TempDir(), sourceTOML("fx", tt.fx, `git = "`+u+`"`+"\ngit_commit = \""+tt.commit+"\"\ntransports = [\"git\"]"))
			res, err := New(openStore(t)).FetchAll(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Transport != stack.TransportGit || res[0].Tree != tt.fx.tree {
				t.Errorf("got %s %s, want git %s", res[0].Transport, res[0].Tree, tt.fx.tree)
			}
		})
	}
	if requests.Load() == 0 {
		t.Errorf("the HTTP server saw no request")
	}
	t.Run("commit on no ref", func(t *testing.T) {
		missing := strings.Repeat("c", 40)
		st := stackOf(t, t.TempDir(), sourceTOML("fx", tip, `git = "`+u+`"`+"\ngit_commit = \""+missing+"\"\ntransports = [\"git\"]"))
		_, err := New(openStore(t)).FetchAll(ctx, st, nil)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("got %v, want an error naming commit %s", err, missing)
		}
	})
}
