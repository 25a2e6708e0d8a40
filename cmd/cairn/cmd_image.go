package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-build/cairn/pkg/oci"
)

func init() {
	imageCmd := &cobra.Command{
		Use:   "image",
		Short: "Make container images from rootfs tarballs",
	}
	var (
		out, name string
		cfg       oci.Config
		epoch     string
		noArchive bool
	)
	ociCmd := &cobra.Command{
		Use:   "oci ROOTFS.tar[.xz]",
		Short: "Write an OCI image layout and a docker-archive from a rootfs tarball",
		Long: `Write DIR/NAME.oci (an OCI image layout with one gzip layer) and
DIR/NAME.docker.tar (a docker-archive tagged cairn/NAME:latest, for 'docker load')
from a rootfs tarball, xz-compressed as 'cairn build' writes it or plain.
See docs/oci.md.

The config's 'created' time is --epoch, else SOURCE_DATE_EPOCH, else 0. The same
tarball, flags and epoch give the same bytes and the same manifest digest.

Output, one per line: manifest, config, layer and diff_id digests, then the paths.`,
		Example: `  cairn image oci out/hello.rootfs.sha256-….tar.xz --name hello --entrypoint /bin/sh --port 8080`,
		Args: func(c *cobra.Command, args []string) error {
			return withCode(exitUsage, cobra.ExactArgs(1)(c, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				name = strings.SplitN(filepath.Base(args[0]), ".", 2)[0]
			}
			if epoch == "" {
				epoch = os.Getenv("SOURCE_DATE_EPOCH")
			}
			if epoch != "" {
				n, err := strconv.ParseInt(epoch, 10, 64)
				if err != nil || n < 0 {
					return withCode(exitUsage, fmt.Errorf("epoch %q: want seconds since 1970", epoch))
				}
				cfg.Epoch = n
			}
			r, err := oci.OpenTar(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			var opts []oci.Option
			if noArchive {
				opts = append(opts, oci.WithoutArchive())
			}
			res, err := oci.Write(cmd.Context(), r, out, name, cfg, opts...)
			var pe *oci.PortError
			var se *oci.SignalError
			if errors.As(err, &pe) || errors.As(err, &se) {
				return withCode(exitUsage, err) // a bad --port or --stop-signal
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "manifest %s\nconfig %s\nlayer %s\ndiff_id %s\nlayout %s\n",
				res.Manifest, res.Config, res.Layer, res.DiffID, res.Layout)
			if res.Archive != "" {
				fmt.Fprintf(w, "docker-archive %s %s\n", res.Archive, res.Tag)
			}
			return nil
		},
	}
	f := ociCmd.Flags()
	f.StringVar(&out, "out", "out", "`DIR` to write NAME.oci and NAME.docker.tar into")
	f.StringVar(&name, "name", "", "image `NAME` (default: the tarball's name up to its first dot)")
	f.StringArrayVar(&cfg.Entrypoint, "entrypoint", nil, "one `WORD` of the entrypoint (repeatable, in order)")
	f.StringArrayVar(&cfg.Cmd, "cmd", nil, "one `WORD` of the default arguments (repeatable, in order)")
	f.StringVar(&cfg.User, "user", "", "`USER[:GROUP]` to run as")
	f.StringArrayVar(&cfg.Env, "env", nil, "`KEY=VALUE` of the environment (repeatable, in order)")
	f.StringVar(&cfg.WorkingDir, "workdir", "", "working `DIR`")
	f.StringArrayVar(&cfg.Ports, "port", nil, "exposed `PORT[/PROTO]` (repeatable; tcp when no protocol)")
	f.StringVar(&cfg.StopSignal, "stop-signal", "", "`SIGNAL` a runtime sends to stop the container (SIGTERM when unset)")
	f.StringVar(&epoch, "epoch", "", "`SECONDS` since 1970 for the config's created time")
	f.BoolVar(&noArchive, "no-archive", false, "write only the OCI layout")
	imageCmd.AddCommand(ociCmd)
	rootCmd.AddCommand(imageCmd)
}
