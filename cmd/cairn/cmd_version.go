package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=..." by the Makefile.
var version = "dev"

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print cairn's version and the Go toolchain that built it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gov := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				gov = bi.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cairn %s (%s)\n", version, gov)
			return nil
		},
	})
}
