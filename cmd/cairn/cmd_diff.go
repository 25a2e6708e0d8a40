package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairn-build/cairn/pkg/diff"
)

func init() {
	var asJSON bool
	c := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two rootfs tarballs, OCI layouts or trees file by file",
		Long: `Diff compares A and B file by file. Each is a rootfs tarball (.tar.xz or
.tar), an OCI image layout directory (its single layer) or a directory (a
step's output tree in the store, or any tree). It prints one line per path
that differs: added (only in B), removed (only in A), or changed, saying
what changed: the type, the mode, a symlink's target, or the content with
both sizes, both sha256 digests and the offset of the first differing byte.

Exit status: 0 the trees are the same, 1 they differ, 2 usage, 3 an input
could not be read.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return withCode(exitUsage, fmt.Errorf("diff takes two arguments, A and B; got %d", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := diff.Paths(cmd.Context(), args[0], args[1])
			if err != nil {
				return withCode(exitInternal, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return withCode(exitInternal, err)
				}
			} else {
				for _, ch := range res.Changes {
					fmt.Fprintln(out, ch)
				}
			}
			if !res.Same() {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	rootCmd.AddCommand(c)
}
