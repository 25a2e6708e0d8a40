package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/cairn-build/cairn/pkg/audit"
	"github.com/cairn-build/cairn/pkg/digest"
	"github.com/spf13/cobra"
)

// audit's own exit statuses: its verdicts take 0, 1 and 2, so its errors
// cannot use the shared exitUsage (2).
const (
	auditExitIdentical = 0
	auditExitExcept    = 1
	auditExitDiffers   = 2
	auditExitError     = 3 // the archive or repository could not be read, or was refused
	auditExitUsage     = 4
)

func init() {
	var repo, rev string
	var strip int
	var asJSON bool
	usage := func(err error) error { return withCode(auditExitUsage, err) }
	cmd := &cobra.Command{
		Use:   "audit ARCHIVE --git REPO --commit REV",
		Short: "Compare a release archive with a git commit's tree",
		Long: `Compare the files of ARCHIVE (tar, tar.gz, tar.bz2 or tar.xz) with the tree of
commit REV (a commit id, tag or branch) in the git repository REPO (a local path,
bare or not). Files are compared by path, mode and git blob id; every file
counts, .gitignore does not apply. Archive members are checked as 'cairn unpack'
checks them.

Prints one of:
  identical
  identical except      then each file present on one side only:
                          only in archive: PATH   (the archive ADDS it: review it,
                                                  this is how the xz-utils backdoor
                                                  shipped)
                          only in git: PATH       (left out of the archive)
  differs               then every changed file, and those on one side only:
                          changed: PATH: HOW

Exit status:
  0  identical
  1  identical except files on one side only
  2  differs: a path on both sides has other content or mode
  3  error: the archive or repository could not be read, REV was not found,
     or the archive holds a member 'cairn unpack' refuses
  4  usage error`,
		Example: "  cairn audit --strip 1 --git submodules/musl --commit v1.2.5 musl-1.2.5.tar.gz",
		Args: func(c *cobra.Command, args []string) error {
			return usage(cobra.ExactArgs(1)(c, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if repo == "" || rev == "" {
				return usage(errors.New("--git REPO and --commit REV are required"))
			}
			if strip < 0 {
				return usage(errors.New("--strip must be 0 or more"))
			}
			f, err := os.Open(args[0])
			if err != nil {
				return withCode(auditExitError, err)
			}
			defer f.Close()
			rep, err := audit.Archive(cmd.Context(), f, repo, rev, digest.Strip(strip), archive.Name(args[0]))
			if err != nil {
				return withCode(auditExitError, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return withCode(auditExitError, err)
				}
			} else {
				printAudit(out, rep)
			}
			switch rep.Verdict {
			case audit.Identical:
				return nil
			case audit.IdenticalExcept:
				return silentExit(auditExitExcept)
			}
			return silentExit(auditExitDiffers)
		},
	}
	cmd.Flags().StringVar(&repo, "git", "", "the git repository `REPO` (a local path, bare or not)")
	cmd.Flags().StringVar(&rev, "commit", "", "the commit `REV` to compare with: a commit id, tag or branch")
	cmd.Flags().IntVar(&strip, "strip", 0, "remove `N` leading path components of archive members")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usage(fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath()))
	})
	rootCmd.AddCommand(cmd)
}

func printAudit(w io.Writer, rep audit.Report) {
	fmt.Fprintln(w, rep.Verdict)
	for _, c := range rep.Changed {
		fmt.Fprintf(w, "changed: %s: %s\n", c.Path, c.Describe())
	}
	for _, p := range rep.OnlyInArchive {
		fmt.Fprintf(w, "only in archive: %s\n", p)
	}
	for _, p := range rep.OnlyInGit {
		fmt.Fprintf(w, "only in git: %s\n", p)
	}
}
