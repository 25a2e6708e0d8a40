package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/cairn-build/cairn/pkg/oci"
)

func init() {
	var out string
	var insecure, quiet bool
	var nf netFlags
	cmd := &cobra.Command{
		Use:   "push LAYOUT_OR_NAME REF",
		Short: "Push an OCI image layout to a registry",
		Long: `Push the image of an OCI layout to a registry under REF
(HOST[:PORT]/REPOSITORY[:TAG]) and print its manifest digest, which is the
layout's own. LAYOUT_OR_NAME is a layout directory, or an image name whose layout
is --out/NAME.oci.

Registries on loopback addresses (127.0.0.0/8, ::1, localhost) are spoken to
over plain HTTP; any other only over TLS, unless --insecure. Credentials come
from the docker config file: $DOCKER_CONFIG/config.json, else
~/.docker/config.json, with its credential helpers.`,
		Example: `  cairn push hello 127.0.0.1:5000/cairn/hello:latest`,
		Args: func(c *cobra.Command, args []string) error {
			return withCode(exitUsage, cobra.ExactArgs(2)(c, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			base, _ := remote.DefaultTransport.(*http.Transport)
			rt, err := nf.transport(base)
			if err != nil {
				return err
			}
			layout := args[0]
			if _, err := os.Stat(filepath.Join(layout, "oci-layout")); err != nil {
				byName := filepath.Join(out, args[0]+".oci")
				if _, err2 := os.Stat(filepath.Join(byName, "oci-layout")); err2 != nil {
					return withCode(exitUsage, fmt.Errorf("%s: not an OCI layout, and no layout %s", args[0], byName))
				}
				layout = byName
			}
			// DefaultKeychain reads DOCKER_CONFIG and ~/.docker/config.json:
			// here, in cmd/, not in pkg/oci.
			// So are the proxy variables (netFlags.transport).
			opts := []oci.PushOption{oci.WithKeychain(authn.DefaultKeychain), oci.WithTransport(rt)}
			if insecure {
				opts = append(opts, oci.WithInsecure())
			}
			progress := make(chan v1.Update, 16)
			done := make(chan struct{})
			var last v1.Update
			go func() {
				for u := range progress {
					last = u
				}
				close(done)
			}()
			opts = append(opts, oci.WithProgress(progress))
			digest, err := oci.Push(cmd.Context(), layout, args[1], opts...)
			<-done
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "cairn: pushed %s to %s (%d bytes uploaded)\n", layout, args[1], last.Complete)
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "out", "`DIR` holding NAME.oci when an image name is given")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP to a registry that is not on a loopback address")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the digest")
	addNetFlags(cmd, &nf)
	rootCmd.AddCommand(cmd)
}
