package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-build/cairn/pkg/sandbox"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type sandboxFlags struct {
	root     string
	ro, rw   []string
	env      []string
	dir      string
	hostname string
	asRoot   bool
	timeout  time.Duration
	log      string
	quiet    bool
	pids     uint64
	nofile   uint64
	memory   string
	outSize  string
	logSize  string
}

const sandboxLong = `Runs a command in the sandbox a build step gets: new mount, pid, network
(loopback only), uts, ipc and cgroup namespaces (and a user namespace when not
root), the root tree read-only at /, a tmpfs /tmp, a minimal /dev, a new /proc,
a synthetic /etc/passwd, /etc/group and /etc/hosts, and nothing else of the
host. The command runs as uid 1000, gid 100, with no capabilities and
no_new_privs, in /build, with an environment of exactly PATH, HOME, TMPDIR,
TZ=UTC, LC_ALL=C, SOURCE_DATE_EPOCH and the --env variables.

Mounts:
  --ro NAME=PATH     PATH read-only at /src/NAME
  --ro /TARGET=PATH  PATH read-only at /TARGET (e.g. /deps/musl=...)
  --rw /TARGET=PATH  PATH writable at /TARGET (e.g. /out=..., /build=...)
Without a --rw for /build, /build is an empty tmpfs.

As root, the command is uid ` + "0x70000000" + ` on the host and sees the --rw
directories through idmapped mounts: nothing in them changes owner, and what
it writes belongs to you. It cannot make setuid or setgid files or set file
capabilities or other extended attributes (a seccomp filter refuses them).

Limits (a run over one exits non-zero and names it): --memory (a cgroup per
run, swap off; OOM is reported as such), --pids, --output-size (each file
written, and each --rw directory's apparent size after the run), --log-size
(the output keeps its first and last halves and says what was cut), --timeout.
Where cgroups cannot be used, cairn says so and bounds each process instead.

SOURCE_DATE_EPOCH is taken from cairn's environment (0 if unset).`

func init() {
	var f sandboxFlags
	sb := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a command, or a shell, in a build step's sandbox",
		Long:  sandboxLong,
	}
	run := &cobra.Command{
		Use:   "run --root DIR [flags] -- CMD [ARGS...]",
		Short: "Run CMD in a fresh sandbox and exit with its status",
		Long: sandboxLong + `

Exit status: the command's own; 128+N when it was killed by signal N; 124 when
it ran past --timeout; 1 when it exited 0 but went over --output-size; 2 for bad flags; 1 when the sandbox could not be made
(the message says which input or namespace); 130 when cairn was interrupted.
Output (stdout and stderr combined) goes to the terminal and, with --log, to a
file as well.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return sandboxRun(cmd, &f, args, false) },
	}
	shell := &cobra.Command{
		Use:   "shell --root DIR [flags] [-- CMD [ARGS...]]",
		Short: "Start an interactive shell (default /bin/sh) in a fresh sandbox, on this terminal",
		Long: sandboxLong + `

The shell gets the terminal (TERM is passed in); everything it started is
killed when it exits.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"/bin/sh"}
			}
			return sandboxRun(cmd, &f, args, true)
		},
	}
	for _, c := range []*cobra.Command{run, shell} {
		fl := c.Flags()
		fl.StringVar(&f.root, "root", "", "host directory that appears read-only at / (required)")
		fl.StringArrayVar(&f.ro, "ro", nil, "read-only mount NAME=PATH (at /src/NAME) or /TARGET=PATH (repeatable)")
		fl.StringArrayVar(&f.rw, "rw", nil, "writable mount /TARGET=PATH (repeatable)")
		fl.StringArrayVar(&f.env, "env", nil, "declare KEY=VALUE in the command's environment (repeatable; PATH may be set)")
		fl.StringVar(&f.dir, "dir", sandbox.DefaultDir, "working directory inside")
		fl.StringVar(&f.hostname, "hostname", "localhost", "hostname inside")
		fl.BoolVar(&f.asRoot, "as-root", false, "run the command as uid 0 of its own user namespace (it may chroot and drop ids, as daemons do; it still cannot remount or reach the host)")
		fl.DurationVar(&f.timeout, "timeout", 0, "kill the sandbox after this long (e.g. 30s, 10m; 0: no limit)")
		fl.Uint64Var(&f.pids, "pids", 0, "processes and threads inside (default 1024)")
		fl.StringVar(&f.memory, "memory", "", "memory of the whole run, e.g. 512M, 4G (default 8G)")
		fl.StringVar(&f.outSize, "output-size", "", "size of each file written and of each --rw directory after the run (default 1G)")
		fl.StringVar(&f.logSize, "log-size", "", "output kept, head and tail (default 32M)")
		fl.Uint64Var(&f.nofile, "nofile", 0, "open-file limit inside (default 4096)")
		_ = c.MarkFlagRequired("root")
	}
	run.Flags().StringVar(&f.log, "log", "", "also write the combined output to this file")
	run.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "with --log, do not copy the output to the terminal")
	sb.AddCommand(run, shell)
	rootCmd.AddCommand(sb)
}

func parseMount(spec string, writable bool) (sandbox.Mount, error) {
	k, v, ok := strings.Cut(spec, "=")
	if !ok || k == "" || v == "" {
		return sandbox.Mount{}, fmt.Errorf("mount %q: want NAME=PATH or /TARGET=PATH", spec)
	}
	if !strings.HasPrefix(k, "/") {
		if writable || strings.Contains(k, "/") {
			return sandbox.Mount{}, fmt.Errorf("mount %q: want /TARGET=PATH", spec)
		}
		k = path.Join("/src", k)
	}
	return sandbox.Mount{Target: k, Source: v, Writable: writable}, nil
}

func sandboxRun(cmd *cobra.Command, f *sandboxFlags, args []string, tty bool) error {
	s := sandbox.Spec{
		Root: f.root, Args: args, Env: f.env, Dir: f.dir, Hostname: f.hostname, Timeout: f.timeout, AsRoot: f.asRoot,
		Limits: sandbox.Limits{Pids: f.pids, NoFile: f.nofile},
	}
	if f.timeout < 0 {
		return withCode(exitUsage, fmt.Errorf("--timeout %s: want a positive duration, or 0 for none", f.timeout))
	}
	for _, l := range []struct {
		flag, v string
		dst     *int64
	}{{"--memory", f.memory, &s.Limits.Memory}, {"--output-size", f.outSize, &s.Limits.OutputSize}, {"--log-size", f.logSize, &s.Limits.LogSize}} {
		if l.v == "" {
			continue
		}
		n, err := sandbox.ParseSize(l.v)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("%s: %w", l.flag, err))
		}
		*l.dst = n
	}
	if n := sandbox.Notice(); n != "" {
		fmt.Fprintln(os.Stderr, "cairn: "+n)
	}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not an integer", v))
		}
		s.SourceDateEpoch = n
	}
	for _, m := range f.ro {
		mt, err := parseMount(m, false)
		if err != nil {
			return withCode(exitUsage, err)
		}
		s.Mounts = append(s.Mounts, mt)
	}
	for _, m := range f.rw {
		mt, err := parseMount(m, true)
		if err != nil {
			return withCode(exitUsage, err)
		}
		s.Mounts = append(s.Mounts, mt)
	}
	if tty {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return withCode(exitUsage, errors.New("sandbox shell needs a terminal on stdin"))
		}
		s.TTY, s.Stdin, s.Output = true, os.Stdin, os.Stdout
		if t := os.Getenv("TERM"); t != "" {
			s.Env = append(s.Env, "TERM="+t)
		}
	} else {
		var outs []io.Writer
		if !f.quiet || f.log == "" {
			outs = append(outs, os.Stdout)
		}
		if f.log != "" {
			lf, err := os.Create(f.log)
			if err != nil {
				return err
			}
			defer lf.Close()
			outs = append(outs, lf)
		}
		if len(outs) == 1 {
			s.Output = outs[0]
		} else {
			s.Output = io.MultiWriter(outs...)
		}
		s.Stdin = os.Stdin
	}
	res, err := sandbox.Run(cmd.Context(), s)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("sandbox interrupted; every process in it was killed")
		}
		var se *sandbox.SpecError
		if errors.As(err, &se) {
			return withCode(exitUsage, err)
		}
		return err
	}
	switch {
	case res.Limit != "":
		fmt.Fprintf(os.Stderr, "cairn: sandbox: over the %s limit: %s\n", res.Limit, res)
		if res.ExitCode > 0 {
			return silentExit(res.ExitCode)
		}
		if res.Signal != 0 {
			return silentExit(128 + int(res.Signal))
		}
		return silentExit(1)
	case res.TimedOut:
		fmt.Fprintf(os.Stderr, "cairn: sandbox: %s\n", res)
		return silentExit(124)
	case res.Signal != 0:
		fmt.Fprintf(os.Stderr, "cairn: sandbox: %s\n", res)
		return silentExit(128 + int(res.Signal))
	case res.ExitCode != 0:
		return silentExit(res.ExitCode)
	}
	return nil
}
