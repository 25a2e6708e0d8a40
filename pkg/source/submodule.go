package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	formatcfg "github.com/go-git/go-git/v5/plumbing/format/config"

	"github.com/cairn-build/cairn/pkg/stack"
)

// UnsafeSubmoduleError is a .gitmodules entry refused because git (or a
// careless reader) could be made to write outside the tree or run a
// command with it: CVE-2018-11235 (names and paths with ".."),
// CVE-2018-17456 (a leading '-'), the ext:: transport.
type UnsafeSubmoduleError struct {
	File   string // the .gitmodules read
	Name   string // the submodule's name
	Field  string // "name", "path" or "url"
	Value  string
	Reason string
}

func (e *UnsafeSubmoduleError) Error() string {
	return fmt.Sprintf("%s: submodule %q: %s %q refused: %s", e.File, e.Name, e.Field, e.Value, e.Reason)
}

// GitlinkMismatchError is a superproject whose gitlink does not name the
// pinned commit.
type GitlinkMismatchError struct {
	Path string
	Want string // the pin
	Got  string // the gitlink
}

func (e *GitlinkMismatchError) Error() string {
	return fmt.Sprintf("gitlink %s names commit %s, the pin is %s", e.Path, e.Got, e.Want)
}

type submodule struct {
	name, path, url string
}

// findWorktree returns the nearest directory at or above dir holding .git.
func findWorktree(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("%s: not inside a git working tree: %w", dir, errNotHere)
		}
		d = up
	}
}

// readGitmodules reads .gitmodules from the working tree (refusing a
// symlink, as git does since CVE-2018-11235) or, without one, from HEAD.
func readGitmodules(root string, r *git.Repository) ([]byte, string, error) {
	file := filepath.Join(root, ".gitmodules")
	fi, err := os.Lstat(file)
	switch {
	case err == nil && fi.Mode().IsRegular():
		data, err := os.ReadFile(file)
		return data, file, err
	case err == nil:
		return nil, file, fmt.Errorf("%s: not a regular file (a symlinked .gitmodules is refused)", file)
	case !errors.Is(err, os.ErrNotExist):
		return nil, file, err
	}
	head, err := r.Head()
	if err != nil {
		return nil, file, fmt.Errorf("%s: none in the working tree and no HEAD: %w", file, errNotHere)
	}
	c, err := r.CommitObject(head.Hash())
	if err != nil {
		return nil, file, err
	}
	gf, err := c.File(".gitmodules")
	if err != nil {
		return nil, file, fmt.Errorf("%s: %w", file, errNotHere)
	}
	if gf.Mode != filemode.Regular && gf.Mode != filemode.Deprecated {
		return nil, file, fmt.Errorf("%s in HEAD: not a regular file", file)
	}
	s, err := gf.Contents()
	return []byte(s), file + " (HEAD)", err
}

// parseGitmodules reads every submodule entry and checks each name, path and
// URL. It uses go-git's config decoder, not config.Modules, because that one
// drops entries with ".." silently and a refusal must be seen.
func parseGitmodules(file string, data []byte, root string) ([]submodule, error) {
	cfg := formatcfg.New()
	if err := formatcfg.NewDecoder(bytes.NewReader(data)).Decode(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []submodule
	for _, ss := range cfg.Section("submodule").Subsections {
		m := submodule{name: ss.Name, path: ss.Options.Get("path"), url: ss.Options.Get("url")}
		refuse := func(field, value, why string) error {
			return &UnsafeSubmoduleError{File: file, Name: m.name, Field: field, Value: value, Reason: why}
		}
		if why := unsafeRelPath(m.name); why != "" {
			return nil, refuse("name", m.name, why)
		}
		if why := unsafeRelPath(m.path); why != "" {
			return nil, refuse("path", m.path, why)
		}
		if why := throughSymlink(root, m.path); why != "" {
			return nil, refuse("path", m.path, why)
		}
		switch {
		case m.url == "":
			return nil, refuse("url", m.url, "missing")
		case strings.HasPrefix(m.url, "-"):
			return nil, refuse("url", m.url, "starts with '-', which git would read as an option")
		case strings.Contains(m.url, "::"):
			return nil, refuse("url", m.url, "a transport helper (ext::, fd::, ...) could run a command")
		}
		if err := stack.CheckGitURL(m.url); err != nil {
			return nil, refuse("url", m.url, err.Error())
		}
		out = append(out, m)
	}
	return out, nil
}

// unsafeRelPath says why p may not name a place inside the superproject,
// or "" if it may.
func unsafeRelPath(p string) string {
	switch {
	case p == "":
		return "empty"
	case strings.HasPrefix(p, "-"):
		return "starts with '-', which git would read as an option"
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p):
		return "absolute"
	case strings.ContainsAny(p, "\\\x00\n"):
		return "holds a backslash, NUL or newline"
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "has a '..' component"
		}
		if strings.EqualFold(c, ".git") {
			return "names a .git directory"
		}
	}
	if c := path.Clean(p); c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "leaves the superproject's tree"
	}
	return ""
}

// throughSymlink says why p, inside root, would lead out through a symlink
// in the working tree, or "" if no component of it is one.
func throughSymlink(root, p string) string {
	cur := root
	for _, c := range strings.Split(path.Clean(p), "/") {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if err != nil {
			return ""
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return "leaves the superproject's tree through the symlink " + cur
		}
	}
	return ""
}

// gitlink returns the commit the superproject records at p: from the index
// (what the next commit would say) or else from HEAD.
func gitlink(r *git.Repository, p string) (string, error) {
	if idx, err := r.Storer.Index(); err == nil {
		if e, err := idx.Entry(p); err == nil {
			if e.Mode != filemode.Submodule {
				return "", fmt.Errorf("%s in the index is not a gitlink (mode %o)", p, e.Mode)
			}
			return e.Hash.String(), nil
		}
	}
	head, err := r.Head()
	if err != nil {
		return "", fmt.Errorf("no gitlink at %s: %w", p, errNotHere)
	}
	c, err := r.CommitObject(head.Hash())
	if err != nil {
		return "", err
	}
	t, err := c.Tree()
	if err != nil {
		return "", err
	}
	e, err := t.FindEntry(p)
	if err != nil {
		return "", fmt.Errorf("no gitlink at %s: %w", p, errNotHere)
	}
	if e.Mode != filemode.Submodule {
		return "", fmt.Errorf("%s in HEAD is not a gitlink (mode %o)", p, e.Mode)
	}
	return e.Hash.String(), nil
}

// checkedOutRepos lists where a checked-out submodule keeps its objects.
func checkedOutRepos(root string, m submodule) []string {
	out := []string{filepath.Join(root, ".git", "modules", filepath.FromSlash(m.name))}
	wt := filepath.Join(root, filepath.FromSlash(m.path), ".git")
	if fi, err := os.Lstat(wt); err == nil {
		switch {
		case fi.IsDir():
			out = append(out, wt)
		case fi.Mode().IsRegular():
			if data, err := os.ReadFile(wt); err == nil {
				if d, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir: "); ok {
					if !filepath.IsAbs(d) {
						d = filepath.Join(filepath.Dir(wt), d)
					}
					out = append(out, filepath.Clean(d))
				}
			}
		}
	}
	return out
}

func (f *Fetcher) fromSubmodule(ctx context.Context, st *stack.Stack, src stack.Source) (string, error) {
	if src.Submodule == "" {
		return "", ErrNotConfigured
	}
	super := f.superproject
	if super == "" && st != nil {
		super = st.Dir
	}
	if super == "" {
		super = "."
	}
	root, err := findWorktree(super)
	if err != nil {
		return "", err
	}
	r, err := git.PlainOpen(root)
	if err != nil {
		return "", fmt.Errorf("superproject %s: %w", root, err)
	}
	data, file, err := readGitmodules(root, r)
	if err != nil {
		return "", err
	}
	mods, err := parseGitmodules(file, data, root)
	if err != nil {
		return "", err
	}
	var m *submodule
	for i := range mods {
		if mods[i].path == src.Submodule {
			m = &mods[i]
		}
	}
	if m == nil {
		return "", fmt.Errorf("%s: no submodule with path %s: %w", file, src.Submodule, errNotHere)
	}
	link, err := gitlink(r, m.path)
	if err != nil {
		return "", err
	}
	if link != src.Pin.GitCommit {
		return "", &GitlinkMismatchError{Path: m.path, Want: src.Pin.GitCommit, Got: link}
	}
	// Checked out: the commit's tree from the submodule's own objects, not
	// its working files, which may be dirty.
	var tried []string
	for _, dir := range checkedOutRepos(root, *m) {
		sr, err := openLocalRepo(dir)
		if err != nil {
			continue
		}
		t, err := commitTree(sr, link, src.Pin.GitTree)
		if err != nil {
			if errors.Is(err, errNotHere) {
				tried = append(tried, dir)
				continue
			}
			return "", err
		}
		return f.store.AddTree(ctx, src.Pin.Tree, func(d string) error { return exportTree(ctx, t, d) })
	}
	// Not checked out: populate from the .gitmodules URL through the
	// mirrors (and, online, the rewritten URL).
	cands := f.mirrorGitCandidates(m.url)
	if !f.offline {
		cands = append(cands, rewriteURL(m.url, f.gitRewrites))
	}
	p, err := f.fromGit(ctx, src, m.url, cands, f.offline)
	if err != nil {
		return "", fmt.Errorf("submodule %s not checked out (commit %s not in %s); from %s: %w",
			m.path, link, orNone(tried), m.url, err)
	}
	return p, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "any local repository"
	}
	return strings.Join(s, ", ")
}
