package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	var sf sourceFlags
	cmd := &cobra.Command{
		Use:   "fetch [SOURCE...]",
		Short: "Fetch the stack's sources into the store and check them against their pins",
		Long: `fetch delivers each source (all of the stack's when none is named) into the
store through the first transport that can: store, mirror, submodule, git,
archive, debian (the stack's order, or --transports). Whatever delivers it,
the tree must hash to the source's pin, or the fetch fails naming both
digests and keeps nothing. Prints, per source, the transport that delivered
it and its tree digest; for a source with [source.patches], the pristine tree
then "patched" and the patched tree, which is what recipes see. A patch that
does not apply fails the fetch naming the source and the patch; a patched tree
that is not its pin fails naming both digests. With --offline only the store, --mirror directories
and checked-out submodules are used, and every source not found is listed.
See docs/sources.md.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := sf.net.timeouts(); err != nil {
				return err
			}
			st, err := sf.loadStack()
			if err != nil {
				return err
			}
			s, err := sf.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := sf.fetchSources(cmd.Context(), cmd, st, s, args)
			out := cmd.OutOrStdout()
			for _, r := range res {
				if r.Pristine != "" {
					fmt.Fprintf(out, "%-12s %-9s %s patched %s\n", r.Source, r.Transport, r.Pristine, r.Tree)
					continue
				}
				fmt.Fprintf(out, "%-12s %-9s %s\n", r.Source, r.Transport, r.Tree)
			}
			return err
		},
	}
	addSourceFlags(cmd, &sf)
	addTransportFlags(cmd, &sf)
	rootCmd.AddCommand(cmd)
}
