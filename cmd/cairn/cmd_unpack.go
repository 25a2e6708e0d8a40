package main

import (
	"fmt"
	"os"
	"time"

	"github.com/cairn-build/cairn/pkg/archive"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() {
	var strip int
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "unpack ARCHIVE DIR",
		Short: "Unpack a tar, tar.gz, tar.bz2 or tar.xz archive into DIR, refusing anything unsafe",
		Long: `Unpack ARCHIVE into DIR, which must not exist or be empty. The archive is
extracted into a temporary directory beside DIR and renamed into place only once
every member has been read, so on any error DIR is left as it was and nothing is
left behind.

Refused, with the archive and the member named:
  - names that are absolute or have a '..' component, names over 4096 bytes
  - symlinks whose target, read from the link's own directory, leaves DIR
    (absolute targets included), directly or through other symlinks
  - any member that would be written through an earlier symlink
  - hardlinks whose target is not an earlier regular file of the archive
  - a member that changes the type of an earlier path (file, directory, symlink)
  - device nodes, FIFOs, GNU and PAX sparse files
  - setuid, setgid and sticky bits: REFUSED, not cleared (a source tree has no
    use for them, and clearing would hide what the archive asked for)
  - more than --max-bytes of file content, or more than 1048576 members

Written: files 0644, or 0755 when the owner's execute bit is set; directories
0755. Owners and mtimes are not restored: they are not content.

Exit status: 0 unpacked, 1 refused or failed, 2 usage error.`,
		Args: func(c *cobra.Command, args []string) error {
			return withCode(exitUsage, cobra.ExactArgs(2)(c, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if strip < 0 {
				return withCode(exitUsage, fmt.Errorf("--strip must be 0 or more"))
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			opts := []archive.Option{archive.Name(args[0]), archive.Strip(strip), archive.MaxBytes(maxBytes)}
			tty := term.IsTerminal(int(os.Stderr.Fd()))
			if tty {
				total := int64(-1)
				if fi, err := f.Stat(); err == nil {
					total = fi.Size()
				}
				opts = append(opts, archive.Progress(func(n int64) {
					if total > 0 {
						fmt.Fprintf(os.Stderr, "\runpack: %3d%% of %s", n*100/total, args[0])
					}
				}))
			}
			start := time.Now()
			st, err := archive.Unpack(cmd.Context(), f, args[1], opts...)
			if tty {
				fmt.Fprint(os.Stderr, "\r\033[K")
			}
			if err != nil {
				return err
			}
			if tty {
				fmt.Fprintf(os.Stderr, "unpack: %d files, %d symlinks, %d bytes in %s\n",
					st.Files+st.Hardlinks, st.Symlinks, st.Bytes, time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&strip, "strip", 0, "remove `N` leading path components of every member")
	cmd.Flags().Int64Var(&maxBytes, "max-bytes", archive.DefaultMaxBytes, "refuse an archive holding more than `N` bytes of file content")
	rootCmd.AddCommand(cmd)
}
