package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() {
	var (
		bf      buildFlags
		asJSON  bool
		explain bool
	)
	c := &cobra.Command{
		Use:   "plan",
		Short: "Show the build's steps in order, each with its action key and whether it is cached",
		Long: `Plan shows the DAG of steps of the stack in the order they would run, each with
its dependencies, its action key and whether the store holds its output. A
step's key covers its dependencies' outputs, so it is known only once they are
built: until then it shows as "unknown". --explain prints the labelled lines
each known key hashes, which is how a cache miss is explained.

Plan runs no step, but like build it first fetches the sources and makes the
seed when the store lacks them: the seed's digest is part of every key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := prepare(cmd.Context(), cmd, &bf, nil, nil)
			if err != nil {
				return err
			}
			defer p.store.Close()
			status := p.b.Status()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(status)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tDEPS\tKEY\tCACHED")
			for _, s := range status {
				key := s.Key
				if key == "" {
					key = "unknown"
				}
				fmt.Fprintf(tw, "%s\t%v\t%s\t%v\n", s.ID, s.Deps, key, s.Cached)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if explain {
				for _, s := range status {
					fmt.Fprintf(cmd.OutOrStdout(), "\n%s:\n", s.ID)
					for _, l := range s.Lines {
						fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", l)
					}
				}
			}
			return nil
		},
	}
	addBuildFlags(c, &bf)
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	c.Flags().BoolVar(&explain, "explain", false, "print each key's labelled input lines")
	rootCmd.AddCommand(c)

	var lf buildFlags
	logCmd := &cobra.Command{
		Use:   "log STEP",
		Short: "Print the log of the last run of STEP with its current inputs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := prepare(cmd.Context(), cmd, &lf, nil, nil)
			if err != nil {
				return err
			}
			defer p.store.Close()
			for _, s := range p.b.Status() {
				if s.ID != args[0] {
					continue
				}
				if s.Key == "" {
					return fmt.Errorf("step %s: its key is not known until its dependencies are built", s.ID)
				}
				data, err := os.ReadFile(p.b.LogPath(s.Key))
				if err != nil {
					return fmt.Errorf("step %s: no log: %w", s.ID, err)
				}
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return withCode(exitUsage, fmt.Errorf("no step named %q", args[0]))
		},
	}
	addBuildFlags(logCmd, &lf)
	rootCmd.AddCommand(logCmd)
}
