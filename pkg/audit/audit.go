// Package audit answers an auditor's question about a release archive: is
// it exactly the tree of this git commit?
//
// Both sides are reduced to (path, mode, git blob id) per file: the archive
// through digest.FromArchive (the same validation as unpacking), the commit
// through go-git, reading tree objects only (blob ids come from the trees,
// so no file content is read on the git side). The verdict is Identical;
// IdenticalExcept when some files exist on one side only; or Differs when a
// path present on both sides has other content, mode or kind. Which side
// holds an extra file is always said: a file the archive ADDS is how the
// xz-utils backdoor reached builds (an m4 file that git never had), while a
// file only git has is usually packaging (a .gitignore left out of a
// release). Callers decide which differences a stack pins as expected.
package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Verdict is the outcome of a comparison, ordered by severity.
type Verdict uint8

const (
	Identical       Verdict = iota // same paths, modes and contents
	IdenticalExcept                // some files on one side only
	Differs                        // a path on both sides differs
)

func (v Verdict) String() string {
	switch v {
	case Identical:
		return "identical"
	case IdenticalExcept:
		return "identical except"
	case Differs:
		return "differs"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// MarshalText makes a Verdict print as its words in JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// File is one side's view of a path: its git mode and blob id (for a
// submodule, mode 160000 and the commit id).
type File struct {
	Mode string `json:"mode"`
	Blob string `json:"blob"`
}

// Change is a path present on both sides with different files.
type Change struct {
	Path    string `json:"path"`
	Archive File   `json:"archive"`
	Git     File   `json:"git"`
}

// Report is the result of Compare.
type Report struct {
	Verdict       Verdict  `json:"verdict"`
	Commit        string   `json:"commit,omitempty"` // the resolved commit id
	OnlyInArchive []string `json:"only_in_archive"`  // sorted
	OnlyInGit     []string `json:"only_in_git"`      // sorted
	Changed       []Change `json:"changed"`          // sorted by Path
}

// Tree maps each file's path to its File.
type Tree map[string]File

// FromManifest turns a manifest into a Tree.
func FromManifest(m digest.Manifest) Tree {
	t := make(Tree, len(m))
	for _, e := range m {
		t[e.Path] = File{Mode: e.Kind.Mode(), Blob: hex.EncodeToString(e.GitBlob[:])}
	}
	return t
}

// Compare compares an archive's tree with a git tree.
func Compare(archive, git Tree) Report {
	r := Report{OnlyInArchive: []string{}, OnlyInGit: []string{}, Changed: []Change{}}
	for p, a := range archive {
		g, ok := git[p]
		switch {
		case !ok:
			r.OnlyInArchive = append(r.OnlyInArchive, p)
		case a != g:
			r.Changed = append(r.Changed, Change{Path: p, Archive: a, Git: g})
		}
	}
	for p := range git {
		if _, ok := archive[p]; !ok {
			r.OnlyInGit = append(r.OnlyInGit, p)
		}
	}
	sort.Strings(r.OnlyInArchive)
	sort.Strings(r.OnlyInGit)
	sort.Slice(r.Changed, func(i, j int) bool { return r.Changed[i].Path < r.Changed[j].Path })
	switch {
	case len(r.Changed) > 0:
		r.Verdict = Differs
	case len(r.OnlyInArchive)+len(r.OnlyInGit) > 0:
		r.Verdict = IdenticalExcept
	}
	return r
}

// ErrRevision is returned when rev names no commit in the repository.
var ErrRevision = errors.New("revision not found")

// GitTree reads the tree of commit rev (a commit id, tag or branch; an
// annotated tag is peeled) from the repository at repoPath, bare or not,
// and returns it with the resolved commit id.
func GitTree(ctx context.Context, repoPath, rev string) (Tree, string, error) {
	repo, err := git.PlainOpen(repoPath)
	if err != nil {
		return nil, "", fmt.Errorf("open git repository %s: %w", repoPath, err)
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %q: %w: %v", repoPath, rev, ErrRevision, err)
	}
	commit, err := repo.CommitObject(*h)
	if err != nil {
		return nil, "", fmt.Errorf("%s: commit %s: %w", repoPath, h, err)
	}
	root, err := commit.Tree()
	if err != nil {
		return nil, "", fmt.Errorf("%s: tree of commit %s: %w", repoPath, h, err)
	}
	t := Tree{}
	if err := walkTree(ctx, repo, root, "", t, 0); err != nil {
		return nil, "", fmt.Errorf("%s: commit %s: %w", repoPath, h, err)
	}
	return t, h.String(), nil
}

// walkTree adds the files under tree to t. Unlike object.TreeWalker, a
// missing subtree is an error, not the end of the walk.
func walkTree(ctx context.Context, repo *git.Repository, tree *object.Tree, prefix string, t Tree, depth int) error {
	if depth > 256 {
		return errors.New("trees nested too deep")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range tree.Entries {
		p := path.Join(prefix, e.Name)
		var mode string
		switch e.Mode {
		case filemode.Dir:
			sub, err := repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("tree %s (%s): %w", e.Hash, p, err)
			}
			if err := walkTree(ctx, repo, sub, p, t, depth+1); err != nil {
				return err
			}
			continue
		case filemode.Regular, filemode.Deprecated:
			mode = "100644"
		case filemode.Executable:
			mode = "100755"
		case filemode.Symlink:
			mode = "120000"
		case filemode.Submodule:
			mode = "160000"
		default:
			return fmt.Errorf("%s: unknown mode %o", p, uint32(e.Mode))
		}
		t[p] = File{Mode: mode, Blob: e.Hash.String()}
	}
	return nil
}

// Archive compares the archive r with commit rev of the repository at
// repoPath. opts go to digest.FromArchive (Strip, archive.Name).
func Archive(ctx context.Context, r io.Reader, repoPath, rev string, opts ...digest.ArchiveOption) (Report, error) {
	gt, commit, err := GitTree(ctx, repoPath, rev)
	if err != nil {
		return Report{}, err
	}
	m, err := digest.FromArchive(ctx, r, opts...)
	if err != nil {
		return Report{}, err
	}
	rep := Compare(FromManifest(m), gt)
	rep.Commit = commit
	return rep, nil
}

// Describe says in a few words how a changed path differs.
func (c Change) Describe() string {
	kind := func(mode string) string {
		switch mode {
		case "120000":
			return "symlink"
		case "160000":
			return "submodule"
		case "100755":
			return "executable file"
		}
		return "file"
	}
	switch {
	case c.Archive.Mode != c.Git.Mode && c.Archive.Blob == c.Git.Blob:
		return fmt.Sprintf("mode %s in archive, %s in git", c.Archive.Mode, c.Git.Mode)
	case kind(c.Archive.Mode) != kind(c.Git.Mode) && (c.Archive.Mode == "120000" || c.Git.Mode == "120000" || c.Git.Mode == "160000"):
		return fmt.Sprintf("%s in archive, %s in git", kind(c.Archive.Mode), kind(c.Git.Mode))
	case c.Archive.Mode != c.Git.Mode:
		return fmt.Sprintf("content and mode differ (%s in archive, %s in git)", c.Archive.Mode, c.Git.Mode)
	}
	return "content differs"
}
