package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairn-build/cairn/pkg/attest"
)

func init() {
	prov := &cobra.Command{
		Use:   "provenance",
		Short: "Check provenance statements against the stack definition",
	}
	var stackFile string
	var asJSON bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Re-derive a statement's inputs from the stack definition and compare",
		Long: `Check reads FILE, an in-toto provenance statement written by 'cairn build'
(SLSA provenance v1, build type ` + attest.BuildType + `),
re-derives every input it names from the stack definition: the definition's
own sha256, each source's pins, the seed lock and each locked package, each
file of the image's recipes, and cairn's sandbox and compressor versions. It
prints every input that differs, is missing or is extra.

The stack definition is the one the statement names (its path as recorded,
relative to the current directory) unless --stack is given. The outputs the
statement names (the tarball, the action keys) are not rebuilt here: 'cairn
verify' does that.

Exit status: 0 when every input matches, 1 when one differs or FILE or the
stack cannot be read, 2 on a usage error.`,
		Args: func(c *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(c, args); err != nil {
				return withCode(exitUsage, fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readStatement(args[0])
			if err != nil {
				return err
			}
			st, err := attest.ParseStatement(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			file := stackFile
			if file == "" {
				file = st.Predicate.BuildDefinition.ExternalParameters.Stack.URI
				if file == "" {
					return withCode(exitUsage, fmt.Errorf("%s names no stack definition: give --stack", args[0]))
				}
			}
			in, err := attest.Load(cmd.Context(), file)
			if err != nil {
				return err
			}
			ms, err := attest.Check(data, in)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if ms == nil {
					ms = []attest.Mismatch{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Statement  string            `json:"statement"`
					Stack      string            `json:"stack"`
					Match      bool              `json:"match"`
					Mismatches []attest.Mismatch `json:"mismatches"`
				}{args[0], file, len(ms) == 0, ms}); err != nil {
					return err
				}
			} else {
				for _, m := range ms {
					fmt.Fprintln(out, m.String())
				}
				if len(ms) == 0 {
					fmt.Fprintf(out, "%s: every input matches %s\n", args[0], file)
				} else {
					fmt.Fprintf(out, "%s: %d differences from %s\n", args[0], len(ms), file)
				}
			}
			if len(ms) > 0 {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	check.Flags().StringVar(&stackFile, "stack", "", "the stack definition to check against (default: the one the statement names)")
	check.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	prov.AddCommand(check)
	rootCmd.AddCommand(prov)
}

// maxStatement bounds what check reads: a statement of the default stack is
// tens of KiB; a file of gigabytes is not one.
const maxStatement = 64 << 20

func readStatement(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStatement+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxStatement {
		return nil, fmt.Errorf("%s: larger than %d MiB: not a provenance statement", name, maxStatement>>20)
	}
	return data, nil
}
