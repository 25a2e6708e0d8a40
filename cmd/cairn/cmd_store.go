package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func init() {
	storeCmd := &cobra.Command{
		Use:   "store",
		Short: "Check the store",
	}
	var (
		sf     sourceFlags
		repair bool
		asJSON bool
	)
	verifyCmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every object in the store and name each that does not match its digest",
		Long: `Verify re-hashes every object the store holds (source, recipe and seed
trees, step outputs, blobs, the seed's .debs) and reads every action and
seed record, and names each one that does not match its digest or whose
bytes changed since cairn wrote it. With --repair it removes each bad object
with every record that points at it or was made from it, and each bad
record, so that the next build rebuilds or fetches again what it needs.

See docs/store.md for the layout and the records.

Exit status: 0 the store is sound, 1 corrupt objects were found (also when
--repair removed them), 2 usage.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return withCode(exitUsage, fmt.Errorf("store verify takes no arguments, got %q", args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sf.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			rep, err := s.VerifyAll(cmd.Context(), repair)
			if err != nil {
				return err
			}
			out, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintf(out, "CORRUPT\t%s\n", p)
					for _, r := range p.Removed {
						fmt.Fprintf(out, "  removed %s\n", r)
					}
				}
			}
			var kinds []string
			for k, n := range rep.Checked {
				kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(kinds)
			msg := fmt.Sprintf("cairn: store %s: checked %s; %d corrupt", s.Dir(), strings.Join(kinds, ", "), len(rep.Problems))
			if len(rep.Unchecked) > 0 {
				msg += fmt.Sprintf("; %d outputs of an older cairn not yet checked (their next use checks them)", len(rep.Unchecked))
			}
			if repair && len(rep.Problems) > 0 {
				msg += ", removed: the next build rebuilds or fetches them"
			}
			fmt.Fprintln(stderr, msg)
			if len(rep.Problems) > 0 {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	f := verifyCmd.Flags()
	f.StringVar(&sf.store, "store", "", "store `DIR` (default: the user cache directory's cairn/)")
	f.BoolVar(&repair, "repair", false, "remove each corrupt object and every record that points at it")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	storeCmd.AddCommand(verifyCmd)
	rootCmd.AddCommand(storeCmd)
}
