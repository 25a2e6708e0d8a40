package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// ErrSpecialFile is the reason for refusing a device node, FIFO or socket.
var ErrSpecialFile = errors.New("special file not allowed in a rootfs")

// ErrSetID is the reason for refusing a setuid or setgid file in the tree;
// such a mode can only be given explicitly with WithMode.
var ErrSetID = errors.New("setuid/setgid file not allowed in a rootfs")

// ErrNotInTree is returned when WithMode names a path the tree does not have.
var ErrNotInTree = errors.New("not in the tree")

// EntryError names the entry of the tree that could not be packed.
type EntryError struct {
	Path string // slash-separated, relative to the tree
	Err  error
}

func (e *EntryError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// maxEpoch is the largest mtime a USTAR header holds (11 octal digits).
const maxEpoch = 1<<33 - 1

type node struct {
	path  string // relative, slash-separated, no trailing slash
	typ   byte   // tar.TypeDir, TypeReg, TypeSymlink, TypeLink
	mode  int64
	size  int64
	link  string
	dev   uint64
	ino   uint64
	nlink uint64
}

// WriteTar writes the deterministic, uncompressed tar of the tree at src to w.
func WriteTar(ctx context.Context, src string, w io.Writer, opts ...Option) error {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.epoch < 0 || c.epoch > maxEpoch {
		return fmt.Errorf("epoch %d out of range [0, %d]", c.epoch, int64(maxEpoch))
	}
	rootfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	defer unix.Close(rootfd)

	var nodes []node
	if err := collect(ctx, rootfd, "", &nodes); err != nil {
		return err
	}
	sort.Slice(nodes, func(i, j int) bool { return pathLess(nodes[i].path, nodes[j].path) })
	if err := applyModes(nodes, c.modes); err != nil {
		return err
	}

	mtime := time.Unix(c.epoch, 0)
	tw := tar.NewWriter(w)
	buf := make([]byte, 256<<10)
	for i := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &nodes[i]
		hdr := &tar.Header{
			Typeflag: n.typ,
			Name:     n.path,
			Linkname: n.link,
			Mode:     n.mode,
			ModTime:  mtime,
			Format:   tar.FormatUSTAR,
		}
		switch n.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = n.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			// USTAR cannot hold this name (too long or not ASCII): PAX,
			// which adds only path/linkpath records for an integral mtime,
			// uid 0 and no atime/ctime. WriteHeader wrote nothing.
			hdr.Format = tar.FormatPAX
			if err := tw.WriteHeader(hdr); err != nil {
				return &EntryError{Path: n.path, Err: err}
			}
		}
		if n.typ == tar.TypeReg {
			if err := copyFile(rootfd, n, tw, buf); err != nil {
				return &EntryError{Path: n.path, Err: err}
			}
		}
	}
	return tw.Close()
}

// pathLess orders paths bytewise component by component, which is bytewise
// order with "/" sorting before every other byte: a, a/b, a-b. A directory's
// subtree is then contiguous and follows it, as GNU tar --sort=name writes it
// and as extractors expect (GNU tar sets a directory's mtime once it has left
// it; a plain bytewise sort, a, a-b, a/b, would re-enter a and change it).
func pathLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra, _ := strings.Cut(a, "/")
		cb, rb, _ := strings.Cut(b, "/")
		if ca != cb {
			return ca < cb
		}
		a, b = ra, rb
	}
	return a == "" && b != ""
}

// collect appends the entries below the directory dirfd (whose path is dir)
// to out. Every name is looked at with fstatat(AT_SYMLINK_NOFOLLOW) relative
// to its parent, so nothing in the tree is followed.
func collect(ctx context.Context, dirfd int, dir string, out *[]node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := readNames(dirfd)
	if err != nil {
		return &EntryError{Path: orDot(dir), Err: err}
	}
	for _, name := range names {
		p := name
		if dir != "" {
			p = dir + "/" + name
		}
		if !utf8.ValidString(name) {
			return &EntryError{Path: p, Err: errors.New("name is not valid UTF-8")}
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &EntryError{Path: p, Err: err}
		}
		n := node{path: p, dev: st.Dev, ino: st.Ino, nlink: uint64(st.Nlink)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n.typ, n.mode = tar.TypeDir, 0o755
			*out = append(*out, n)
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &EntryError{Path: p, Err: err}
			}
			err = collect(ctx, fd, p, out)
			unix.Close(fd)
			if err != nil {
				return err
			}
			continue
		case unix.S_IFREG:
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
				return &EntryError{Path: p, Err: ErrSetID}
			}
			n.typ, n.size, n.mode = tar.TypeReg, st.Size, 0o644
			if st.Mode&0o111 != 0 {
				n.mode = 0o755
			}
		case unix.S_IFLNK:
			target, err := readlinkat(dirfd, name)
			if err != nil {
				return &EntryError{Path: p, Err: err}
			}
			n.typ, n.mode, n.link = tar.TypeSymlink, 0o777, target
			if !utf8.ValidString(target) {
				return &EntryError{Path: p, Err: errors.New("link target is not valid UTF-8")}
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			return &EntryError{Path: p, Err: fmt.Errorf("device node: %w", ErrSpecialFile)}
		case unix.S_IFIFO:
			return &EntryError{Path: p, Err: fmt.Errorf("FIFO: %w", ErrSpecialFile)}
		case unix.S_IFSOCK:
			return &EntryError{Path: p, Err: fmt.Errorf("socket: %w", ErrSpecialFile)}
		default:
			return &EntryError{Path: p, Err: fmt.Errorf("file type %#o: %w", st.Mode&unix.S_IFMT, ErrSpecialFile)}
		}
		*out = append(*out, n)
	}
	return nil
}

func orDot(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func readNames(dirfd int) ([]string, error) {
	// Dup so that closing the *os.File does not close the caller's fd.
	fd, err := unix.Dup(dirfd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return f.Readdirnames(-1)
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// applyModes turns later paths of a hard-linked file into link entries and
// applies the caller's explicit modes. nodes are sorted.
func applyModes(nodes []node, modes map[string]fs.FileMode) error {
	index := make(map[string]int, len(modes))
	first := map[[2]uint64]int{}
	for i := range nodes {
		n := &nodes[i]
		if _, ok := modes[n.path]; ok {
			index[n.path] = i
		}
		if n.typ != tar.TypeReg || n.nlink < 2 {
			continue
		}
		id := [2]uint64{n.dev, n.ino}
		if j, ok := first[id]; ok {
			n.typ, n.link, n.size, n.mode = tar.TypeLink, nodes[j].path, 0, nodes[j].mode
			continue
		}
		first[id] = i
	}
	var missing []string
	for p := range modes {
		if _, ok := index[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("mode set for %s: %w", strings.Join(missing, ", "), ErrNotInTree)
	}
	for i := range nodes {
		n := &nodes[i]
		m, ok := modes[n.path]
		if !ok {
			continue
		}
		switch n.typ {
		case tar.TypeSymlink:
			return &EntryError{Path: n.path, Err: errors.New("mode set for a symbolic link")}
		case tar.TypeLink:
			return &EntryError{Path: n.path, Err: fmt.Errorf("mode set for a hard link of %s: set it there", n.link)}
		}
		n.mode = tarMode(m)
		// Later links of this file carry its mode.
		for j := i + 1; j < len(nodes); j++ {
			if nodes[j].typ == tar.TypeLink && nodes[j].link == n.path {
				nodes[j].mode = n.mode
			}
		}
	}
	return nil
}

func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// copyFile reopens n below rootfd one component at a time with O_NOFOLLOW,
// checks it is the file that was listed, and copies exactly n.size bytes.
func copyFile(rootfd int, n *node, w io.Writer, buf []byte) error {
	fd, err := openBeneath(rootfd, n.path)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), n.path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Dev != n.dev || st.Ino != n.ino || st.Size != n.size {
		return errors.New("changed while being packed")
	}
	got, err := io.CopyBuffer(w, io.LimitReader(f, n.size), buf)
	if err != nil {
		return err
	}
	if got != n.size {
		return fmt.Errorf("read %d bytes, want %d: changed while being packed", got, n.size)
	}
	return nil
}

func openBeneath(rootfd int, p string) (int, error) {
	parts := strings.Split(p, "/")
	dirfd := rootfd
	for i, part := range parts {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i < len(parts)-1 {
			flags |= unix.O_DIRECTORY
		} else {
			// A FIFO swapped in after listing must not block the open.
			flags |= unix.O_NONBLOCK
		}
		fd, err := unix.Openat(dirfd, part, flags, 0)
		if dirfd != rootfd {
			unix.Close(dirfd)
		}
		if err != nil {
			return -1, err
		}
		dirfd = fd
	}
	return dirfd, nil
}
