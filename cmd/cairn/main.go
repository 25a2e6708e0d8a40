// Command cairn builds a pinned stack of sources into reproducible rootfs
// tarballs and images, every step in a network-less sandbox.
//
// This package only wires flags to pkg/: each subcommand lives in its own
// cmd_*.go file and registers itself on the root command in an init func.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses, in one place so that --help and docs/ can state them.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and the answer is "no" (or a build failed)
	exitUsage    = 2 // bad flags or arguments
	exitInternal = 3 // an error the user cannot act on
)

// exitError carries a chosen exit status up to main without printing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// silentExit asks main to exit with code and print nothing more: the
// command has already said what it had to say (audit's verdicts, say).
type silentExit int

func (s silentExit) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

var rootCmd = &cobra.Command{
	Use:           "cairn",
	Short:         "Hermetic from-source builds of a pinned base system",
	Long:          "cairn fetches pinned sources, builds them stage by stage in network-less\nsandboxes, and emits content-hashed, reproducible rootfs tarballs and images.",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	os.Exit(run())
}

func run() int {
	// A re-executed cairn that is a sandbox init is normally taken over by
	// pkg/sandbox/internal/boot before main; this is the fallback entry.
	if code, handled := sandboxInitHook(); handled {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rootCmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitUsage, fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath()))
	})
	err := rootCmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var se silentExit
	if errors.As(err, &se) {
		return int(se)
	}
	fmt.Fprintf(os.Stderr, "cairn: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if ctx.Err() != nil {
		return 130
	}
	return exitFailure
}
