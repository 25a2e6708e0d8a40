package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/spf13/cobra"
)

func init() {
	var strip int
	var asJSON, skipGit, list bool
	cmd := &cobra.Command{
		Use:   "digest PATH_OR_ARCHIVE",
		Short: "Print the tree digest and git tree id of a directory or archive",
		Long: `Print the canonical tree digest ("cairn tree v1", see docs/digest.md) and the
git tree id of a directory, or of a tar, tar.gz, tar.bz2 or tar.xz archive read
straight from the stream (the compression is told by its magic bytes, not by its
name). The git tree id is what 'git add -A && git write-tree' prints for the same
files: every file counts, .gitignore does not apply.

Archive members are checked as 'cairn unpack' checks them: an archive it would
refuse to unpack is refused here too.

Output, one per line:
  sha256:HEX
  git-tree:HEX`,
		Example: "  cairn digest --strip 1 musl-1.2.5.tar.gz",
		Args: func(c *cobra.Command, args []string) error {
			return withCode(exitUsage, cobra.ExactArgs(1)(c, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if strip < 0 {
				return withCode(exitUsage, fmt.Errorf("--strip must be 0 or more"))
			}
			m, err := manifestOf(cmd, args[0], strip, skipGit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if list {
				// The tree digest's records, one a line, to explain a mismatch.
				for _, e := range m {
					p := e.Path
					if strings.ContainsFunc(p, unicode.IsControl) {
						p = strconv.Quote(p)
					}
					fmt.Fprintf(out, "%s %x %x %s\n", e.Kind.Mode(), e.SHA256, e.GitBlob, p)
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					TreeDigest string `json:"tree_digest"`
					GitTree    string `json:"git_tree"`
					Files      int    `json:"files"`
				}{m.TreeDigest(), m.GitTree(), len(m)})
			}
			fmt.Fprintf(out, "%s\ngit-tree:%s\n", m.TreeDigest(), m.GitTree())
			return nil
		},
	}
	cmd.Flags().IntVar(&strip, "strip", 0, "remove `N` leading path components of archive members")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object {tree_digest, git_tree, files}")
	cmd.Flags().BoolVar(&list, "list", false, "first list every file: MODE SHA256 GIT-BLOB PATH (paths with control characters quoted)")
	cmd.Flags().BoolVar(&skipGit, "skip-git-dirs", false, "for a directory: leave out .git directories, as git does")
	rootCmd.AddCommand(cmd)
}

// manifestOf reads p as a directory or, if it is a file, as an archive.
func manifestOf(cmd *cobra.Command, p string, strip int, skipGit bool) (digest.Manifest, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if strip != 0 {
			return nil, withCode(exitUsage, fmt.Errorf("--strip applies to archives, and %s is a directory", p))
		}
		var opts []digest.DirOption
		if skipGit {
			opts = append(opts, digest.SkipGitDirs())
		}
		return digest.FromDir(cmd.Context(), p, opts...)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return digest.FromArchive(cmd.Context(), f, archive.Name(p), digest.Strip(strip))
}
