package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/cairn-build/cairn/internal/nettimeout"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// Rewrite maps a URL prefix to another, like git's url.TO.insteadOf=FROM.
type Rewrite struct {
	From, To string
}

// ParseRewrite reads "FROM=TO".
func ParseRewrite(s string) (Rewrite, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Rewrite{}, fmt.Errorf("git mirror %q: want FROM=TO", s)
	}
	return Rewrite{From: from, To: to}, nil
}

// rewriteURL applies the longest matching rewrite, as git does.
func rewriteURL(u string, rws []Rewrite) string {
	best := -1
	for i, rw := range rws {
		if strings.HasPrefix(u, rw.From) && (best < 0 || len(rw.From) > len(rws[best].From)) {
			best = i
		}
	}
	if best < 0 {
		return u
	}
	return rws[best].To + strings.TrimPrefix(u, rws[best].From)
}

// mirrorGitPath is where a mirror directory keeps the bare repository of
// URL u: DIR/git/HOST/PATH, with or without a ".git" suffix.
func mirrorGitPaths(dir, u string) []string {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return nil
	}
	p := path.Clean("/" + pu.Path)
	if p == "/" || strings.Contains(pu.Host, "/") || strings.HasPrefix(pu.Host, ".") {
		return nil
	}
	base := filepath.Join(dir, "git", pu.Host, filepath.FromSlash(strings.TrimPrefix(p, "/")))
	trimmed := strings.TrimSuffix(base, ".git")
	return []string{trimmed, trimmed + ".git"}
}

// localRepoPath returns the directory a file:// URL or a plain path names,
// or "" for a network URL.
func localRepoPath(u string) string {
	if strings.HasPrefix(u, "/") {
		return u
	}
	if pu, err := url.Parse(u); err == nil && pu.Scheme == "file" {
		return pu.Path
	}
	return ""
}

// openLocalRepo opens a repository directory with go-git's own filesystem
// storage, read only: never through go-git's file transport, which would run
// git-upload-pack with arguments taken from the URL (CVE-2025-21613).
func openLocalRepo(dir string) (*git.Repository, error) {
	if _, err := os.Stat(dir); err != nil && !strings.HasSuffix(dir, ".git") {
		if _, err := os.Stat(dir + ".git"); err == nil {
			dir += ".git"
		}
	}
	gitDir := dir
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err == nil && fi.IsDir() {
		gitDir = filepath.Join(dir, ".git")
	}
	if _, err := os.Stat(filepath.Join(gitDir, "objects")); err != nil {
		return nil, fmt.Errorf("%s: not a git repository: %w", dir, errNotHere)
	}
	st := filesystem.NewStorage(osfs.New(gitDir, osfs.WithBoundOS()), cache.NewObjectLRUDefault())
	r, err := git.Open(st, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return r, nil
}

// installGitHTTP replaces go-git's HTTP and HTTPS clients, which are
// process-wide and have no timeouts, with one that sends each request
// through the transport its context carries: the Fetcher's, with its
// timeouts and proxy (fetchRemote puts it there). Done once, before the
// first remote fetch.
var installGitHTTP = sync.OnceFunc(func() {
	c := githttp.NewClient(&http.Client{Transport: nettimeout.ContextTransport{}})
	client.InstallProtocol("http", c)
	client.InstallProtocol("https", c)
})

// fetchRemote fetches commit from a network remote into memory: the pinned
// commit alone at depth 1 first, and, when the server refuses that, every
// ref, after which the commit is looked up (and so verified) locally.
func (f *Fetcher) fetchRemote(ctx context.Context, u, commit string) (*git.Repository, error) {
	installGitHTTP()
	ctx = nettimeout.WithTransport(ctx, f.client.Transport)
	r, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, err
	}
	rem, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{u}})
	if err != nil {
		return nil, err
	}
	err = rem.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec(commit + ":refs/cairn/pin")},
		Depth:    1, Tags: git.NoTags,
	})
	if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
		return r, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, nettimeout.ErrTimeout) {
		// A server that stalled once is not asked again for everything.
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	first := err
	err = rem.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"},
		Tags:     git.AllTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetch %s: %w (and by commit at depth 1: %w)", u, err, first)
	}
	return r, nil
}

// commitTree returns the tree of commit in r, checked against the pinned
// git tree when there is one.
func commitTree(r *git.Repository, commit, wantTree string) (*object.Tree, error) {
	c, err := r.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, fmt.Errorf("commit %s: %w", commit, errNotHere)
		}
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	if wantTree != "" && c.TreeHash.String() != wantTree {
		return nil, &store.DigestMismatchError{What: "git tree of commit " + commit, Want: wantTree, Got: c.TreeHash.String()}
	}
	return c.Tree()
}

// exportTree writes t into dir (which exists and is empty), the way `git
// archive` would: files with their executable bit, symlinks with their
// targets, a submodule as an empty directory. Every name is checked before
// it is written and every write goes through os.Root, so a crafted tree
// cannot write outside dir.
func exportTree(ctx context.Context, t *object.Tree, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return exportInto(ctx, root, t, "")
}

func exportInto(ctx context.Context, root *os.Root, t *object.Tree, prefix string) error {
	for _, e := range t.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkTreeName(e.Name); err != nil {
			return fmt.Errorf("git tree entry %q: %w", prefix+e.Name, err)
		}
		name := prefix + e.Name
		switch e.Mode {
		case filemode.Dir:
			if err := root.Mkdir(name, 0o755); err != nil {
				return err
			}
			sub, err := t.Tree(e.Name)
			if err != nil {
				return fmt.Errorf("git tree entry %q: %w", name, err)
			}
			if err := exportInto(ctx, root, sub, name+"/"); err != nil {
				return err
			}
		case filemode.Submodule:
			if err := root.Mkdir(name, 0o755); err != nil {
				return err
			}
		case filemode.Symlink, filemode.Regular, filemode.Deprecated, filemode.Executable:
			f, err := t.TreeEntryFile(&e)
			if err != nil {
				return fmt.Errorf("git tree entry %q: %w", name, err)
			}
			rc, err := f.Reader()
			if err != nil {
				return fmt.Errorf("git tree entry %q: %w", name, err)
			}
			if e.Mode == filemode.Symlink {
				target, err := io.ReadAll(io.LimitReader(rc, 4096))
				rc.Close()
				if err != nil {
					return err
				}
				if err := root.Symlink(string(target), name); err != nil {
					return err
				}
				continue
			}
			perm := os.FileMode(0o644)
			if e.Mode == filemode.Executable {
				perm = 0o755
			}
			w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
			if err != nil {
				rc.Close()
				return err
			}
			_, err = io.Copy(w, rc)
			rc.Close()
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("git tree entry %q: %w", name, err)
			}
			// Make the bits exact whatever the umask.
			if err := root.Chmod(name, perm); err != nil {
				return err
			}
		default:
			return fmt.Errorf("git tree entry %q: unknown mode %o", name, e.Mode)
		}
	}
	return nil
}

// checkTreeName refuses a tree entry name that is not one plain path
// component, or that names git's own directory.
func checkTreeName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
		return errors.New("not a plain file name")
	}
	if strings.EqualFold(strings.TrimRight(n, ". "), ".git") || strings.EqualFold(n, "git~1") {
		return errors.New("names git's own directory")
	}
	return nil
}

// mirrorGitCandidates lists where the mirror directories would hold the
// repository of URL u.
func (f *Fetcher) mirrorGitCandidates(u string) []string {
	var out []string
	for _, m := range f.mirrors {
		out = append(out, mirrorGitPaths(m, u)...)
	}
	return out
}

// gitCandidates lists where the git transport looks for a repository, in
// order: each mirror directory by URL path, then the URL after rewriting.
func (f *Fetcher) gitCandidates(u string) []string {
	return append(f.mirrorGitCandidates(u), rewriteURL(u, f.gitRewrites))
}

// fromGit delivers src's pinned commit from the repository at URL u (through
// mirrors and rewrites), trying cands in order. With localOnly, network
// URLs are not tried.
func (f *Fetcher) fromGit(ctx context.Context, src stack.Source, u string, cands []string, localOnly bool) (string, error) {
	if err := stack.CheckGitURL(u); err != nil {
		return "", err
	}
	var errs []error
	for _, cand := range cands {
		var r *git.Repository
		var err error
		if p := localRepoPath(cand); p != "" {
			r, err = openLocalRepo(p)
		} else if strings.Contains(cand, "://") {
			if localOnly {
				errs = append(errs, fmt.Errorf("%s: %w", cand, ErrOffline))
				continue
			}
			if err := stack.CheckGitURL(cand); err != nil {
				errs = append(errs, err)
				continue
			}
			f.event(Event{Source: src.Name, Transport: stack.TransportGit, Phase: "fetch " + cand})
			r, err = f.fetchRemote(ctx, cand, src.Pin.GitCommit)
		} else {
			if _, serr := os.Stat(cand); serr != nil {
				continue // a mirror directory without this repository
			}
			r, err = openLocalRepo(cand)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t, err := commitTree(r, src.Pin.GitCommit, src.Pin.GitTree)
		if err != nil {
			var dm *store.DigestMismatchError
			if errors.As(err, &dm) {
				return "", err
			}
			// %v: a repository without the commit is a failure to
			// report, not a mirror that simply lacks the repository.
			errs = append(errs, fmt.Errorf("%s: %v", cand, err))
			continue
		}
		return f.store.AddTree(ctx, src.Pin.Tree, func(dir string) error { return exportTree(ctx, t, dir) })
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("no mirror holds %s: %w", u, errNotHere)
	}
	return "", errors.Join(errs...)
}
