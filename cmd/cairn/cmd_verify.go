package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-build/cairn/pkg/store"
	"github.com/cairn-build/cairn/pkg/verify"
)

// verifyEnterCmd is the hidden command verify starts the varied build
// through: it applies the hostname (in the UTS namespace it was started in)
// and the umask, then execs the build.
const verifyEnterCmd = "verify-enter"

func init() {
	var (
		bf      buildFlags
		keep    bool
		asJSON  bool
		workDir string
		verbose bool
	)
	c := &cobra.Command{
		Use:   "verify [TARGET...]",
		Short: "Rebuild from an empty store under varied conditions and compare every output bit for bit",
		Long: `Verify runs the build twice, as 'cairn build' subprocesses of this binary.
The reference build uses --store as it is (cached steps stay cached). The
varied build starts from an empty store in a new directory, reusing only
what is pinned by content (the reference store's source archives, as a
mirror, and the seed's .debs), and changes what must not matter: the store
and build path, cairn's umask (077), its hostname (a new UTS namespace; as
root), its time zone, locale, HOME and PATH, an extra environment variable,
the job count (-j 1, or 2 when the reference runs -j 1), and, as root, the
order directories are read in (the varied store is on a new tmpfs).

Then every step's output (by output digest) and every file the builds wrote
to their out directories (rootfs tarballs, OCI layouts, docker-archives,
SBOMs, provenance) is compared. It prints one row per output, reproducible
or DIFFERS, and under a difference the files that differ and how (as 'cairn
diff' says it). --keep keeps both builds' trees and outputs and prints where,
for diffoscope.

Exit status: 0 everything reproducible, 1 a difference (or a build failed),
2 usage.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := bf.check(cmd); err != nil {
				return err
			}
			st, err := bf.loadStack()
			if err != nil {
				return err
			}
			if _, _, err := targets(st, args); err != nil {
				return err
			}
			storeDir, err := bf.storeDir()
			if err != nil {
				return err
			}
			if storeDir, err = filepath.Abs(storeDir); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if workDir != "" {
				if err := os.MkdirAll(workDir, 0o755); err != nil {
					return fmt.Errorf("--work: %w", err)
				}
			}
			var work string
			if workDir == "" && !keep {
				// Under the store's tmp/: if this cairn is killed, the next
				// one to open the store unmounts the varied store's tmpfs
				// and removes what is left.
				s, err := store.Open(storeDir)
				if err != nil {
					return err
				}
				defer s.Close()
				var done func()
				if work, done, err = s.TempDir("verify"); err != nil {
					return err
				}
				defer func() { store.UnmountUnder(work); done() }()
			} else {
				if work, err = os.MkdirTemp(workDir, "cairn-verify-"); err != nil {
					return err
				}
				if !keep {
					defer verify.RemoveAll(work)
				}
			}
			env := os.Environ()
			vary := verify.DefaultVariation(bf.jobs, env)
			stderr := cmd.ErrOrStderr()
			if os.Geteuid() != 0 {
				vary.Hostname, vary.Tmpfs = "", false
				fmt.Fprintln(stderr, "cairn: verify: not root: the hostname and the directory order are not varied")
			}
			cfg := verify.Config{
				Exe: exe, Enter: []string{verifyEnterCmd}, Flags: forwardFlags(&bf), BuildFlags: forwardBuildFlags(&bf),
				Targets: args, Store: storeDir, Jobs: bf.jobs, Env: env, WorkDir: work, Vary: vary, Keep: keep,
				Hook: testHook(),
			}
			if verbose {
				cfg.Log = stderr
			}
			rep, err := verify.Run(ctx, cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := printReport(out, rep, keep); err != nil {
				return err
			}
			differ := 0
			for _, o := range rep.Outputs {
				if !o.Reproducible {
					differ++
				}
			}
			fmt.Fprintf(stderr, "cairn: verify: %d outputs, %d differ; reference build %s, varied build %s, comparison %s\n",
				len(rep.Outputs), differ, rep.RefBuild.Round(time.Millisecond), rep.VariedBuild.Round(time.Millisecond), rep.Compare.Round(time.Millisecond))
			if keep {
				fmt.Fprintf(stderr, "cairn: verify: kept: reference store %s, out %s; varied store %s, out %s\n",
					rep.RefStore, rep.RefOut, rep.VariedStore, rep.VariedOut)
				if rep.Mounted != "" {
					fmt.Fprintf(stderr, "cairn: verify: the varied store is on a tmpfs: umount %s when done\n", rep.Mounted)
				}
			}
			if !rep.Reproducible() {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	addBuildFlags(c, &bf)
	addTransportFlags(c, &bf.sourceFlags)
	c.Flags().DurationVar(&bf.timeout, "timeout", time.Hour, "time limit of one step, 1s to 168h")
	c.Flags().BoolVar(&keep, "keep", false, "keep both builds' stores and out directories, and print where")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	c.Flags().StringVar(&workDir, "work", "", "`DIR` to make the varied store and the out directories in (default: the store's tmp/, or with --keep the temporary directory)")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show both builds' progress")
	rootCmd.AddCommand(c)

	var (
		hostname string
		umask    string
	)
	enter := &cobra.Command{
		Use:    verifyEnterCmd + " --hostname H --umask OCTAL -- ARGV...",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := strconv.ParseInt(umask, 8, 32)
			if err != nil && umask != "-1" {
				return withCode(exitUsage, fmt.Errorf("--umask %q: %w", umask, err))
			}
			if umask == "-1" {
				m = -1
			}
			if err := verify.Enter(hostname, int(m)); err != nil {
				return err
			}
			return syscall.Exec(args[0], args, os.Environ())
		},
	}
	enter.Flags().StringVar(&hostname, "hostname", "", "hostname to set")
	enter.Flags().StringVar(&umask, "umask", "-1", "umask to set, octal")
	rootCmd.AddCommand(enter)
}

// forwardFlags are the flags both builds of verify get from its own.
func forwardFlags(bf *buildFlags) []string {
	f := []string{"--stack", bf.stack}
	if abs, err := filepath.Abs(bf.stack); err == nil {
		f[1] = abs
	}
	for _, m := range bf.mirrors {
		f = append(f, "--mirror", m)
	}
	for _, g := range bf.gitMirrors {
		f = append(f, "--git-mirror", g)
	}
	if bf.offline {
		f = append(f, "--offline")
	}
	return append(f, "--net-timeout", bf.net.net.String(), "--stall-timeout", bf.net.stall.String())
}

// forwardBuildFlags are the flags build takes and plan does not.
func forwardBuildFlags(bf *buildFlags) []string {
	var f []string
	if bf.transports != "" {
		f = append(f, "--transports", bf.transports)
	}
	if bf.verify {
		f = append(f, "--verify")
	}
	if bf.timeout > 0 {
		f = append(f, "--timeout", bf.timeout.String())
	}
	return f
}

func printReport(w io.Writer, rep *verify.Report, keep bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tOUTPUT\tRESULT\tDIGEST")
	for _, o := range rep.Outputs {
		res := "reproducible"
		if !o.Reproducible {
			res = "DIFFERS"
		}
		d := o.A
		if !o.Reproducible {
			d = o.A + " vs " + o.B
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Kind, o.Name, res, d)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range rep.Outputs {
		if o.Reproducible {
			continue
		}
		fmt.Fprintf(w, "\n%s %s differs:\n", o.Kind, o.Name)
		switch {
		case o.PathA == "" || o.PathB == "":
			fmt.Fprintf(w, "  only one build wrote it (reference %q, varied %q)\n", o.PathA, o.PathB)
		case o.Diff != nil:
			for _, ch := range o.Diff.Changes {
				fmt.Fprintf(w, "  %s\n", ch)
			}
			if o.Diff.Same() {
				fmt.Fprintln(w, "  the same files: the container bytes differ (compression or layout metadata)")
			}
		case o.FirstDifference != nil:
			fmt.Fprintf(w, "  first difference at byte %d\n", *o.FirstDifference)
		}
		if keep {
			fmt.Fprintf(w, "  reference %s\n  varied    %s\n", o.PathA, o.PathB)
		}
	}
	return nil
}
