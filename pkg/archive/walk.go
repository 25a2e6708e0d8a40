package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Limits a name must keep: PATH_MAX and NAME_MAX on Linux.
const (
	maxNameLen      = 4096
	maxComponentLen = 255
	maxTrailer      = 1 << 20
)

// Defaults for the size and count limits.
const (
	DefaultMaxBytes   = 4 << 30
	DefaultMaxEntries = 1 << 20
)

// Option configures Walk and Unpack.
type Option func(*config)

type config struct {
	name         string
	strip        int
	mapName      func(string) (string, error)
	rootfsLinks  bool
	merge        bool
	clearSpecial bool
	maxBytes     int64
	maxEntries   int
	progress     func(int64)
}

func newConfig(opts []Option) *config {
	c := &config{name: "archive", maxBytes: DefaultMaxBytes, maxEntries: DefaultMaxEntries}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Name sets the archive's name used in errors (a file name or URL).
func Name(s string) Option { return func(c *config) { c.name = s } }

// Strip removes n leading components from every member name, as tar's
// --strip-components does; members with no components left are skipped.
func Strip(n int) Option { return func(c *config) { c.strip = n } }

// MapName rewrites each cleaned, stripped member name (and hardlink target)
// before it is placed; the result is validated again. Returning "" skips
// the member.
func MapName(f func(name string) (string, error)) Option {
	return func(c *config) { c.mapName = f }
}

// RootfsLinks allows absolute symlink targets, read as relative to the root
// of the tree (as they will be inside a chroot). Relative targets that climb
// out of the tree are still refused.
func RootfsLinks() Option { return func(c *config) { c.rootfsLinks = true } }

// Merge lets Unpack write into a DIR that exists and holds files, replacing
// files but never writing through a symlink. The unpack is then not atomic:
// on error DIR may hold part of the archive. Symlink chains are resolved
// within one archive only, not through links already on disk.
func Merge() Option { return func(c *config) { c.merge = true } }

// ClearSpecialBits clears setuid, setgid and sticky bits instead of
// refusing the member.
func ClearSpecialBits() Option { return func(c *config) { c.clearSpecial = true } }

// MaxBytes limits the total size of regular files (default 4 GiB).
func MaxBytes(n int64) Option { return func(c *config) { c.maxBytes = n } }

// MaxEntries limits the number of members (default 1<<20).
func MaxEntries(n int) Option { return func(c *config) { c.maxEntries = n } }

// Progress is called with the number of (compressed) bytes read so far, at
// most about every 100 ms, and once at the end.
func Progress(f func(bytesRead int64)) Option { return func(c *config) { c.progress = f } }

// Type is the kind of a validated member.
type Type uint8

const (
	TypeDir Type = iota + 1
	TypeFile
	TypeSymlink
	TypeHardlink
)

func (t Type) String() string {
	switch t {
	case TypeDir:
		return "directory"
	case TypeFile:
		return "file"
	case TypeSymlink:
		return "symlink"
	case TypeHardlink:
		return "hardlink"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Entry is one validated member as Walk hands it out.
type Entry struct {
	Name     string // cleaned, stripped and mapped; relative, slash-separated
	Raw      string // the name as written in the archive
	Type     Type
	Exec     bool   // the owner's execute bit (as git reads it)
	Size     int64  // content length of a TypeFile
	Linkname string // a symlink's target as written; a hardlink's target as a cleaned Name
}

// Stats counts what Walk or Unpack saw.
type Stats struct {
	Compression Compression
	Entries     int // members placed (after Strip)
	Files       int // regular files
	Dirs        int // directory members
	Symlinks    int
	Hardlinks   int
	Bytes       int64 // total size of regular files
	Read        int64 // bytes read from the input

	skipped int64 // content of members Strip removed, read past all the same
}

// Walk reads the archive r (compression detected by Open), validates every
// member and calls fn for each one that survives Strip, in archive order.
// content yields a TypeFile's bytes and must not be kept after fn returns.
// The first refusal stops the walk with an *EntryError; an error from fn is
// returned as is.
func Walk(ctx context.Context, r io.Reader, fn func(e *Entry, content io.Reader) error, opts ...Option) (Stats, error) {
	return walk(ctx, r, newConfig(opts), fn)
}

// treeState remembers the type of every path placed so far, including the
// directories that names imply.
type treeState map[string]Type

func walk(ctx context.Context, r io.Reader, c *config, fn func(e *Entry, content io.Reader) error) (Stats, error) {
	var st Stats
	cr := &countReader{r: r, progress: c.progress}
	defer func() {
		st.Read = cr.n
		if c.progress != nil {
			c.progress(cr.n)
		}
	}()
	tr0, comp, err := Open(cr)
	st.Compression = comp
	if err != nil {
		return st, &EntryError{Archive: c.name, Reason: ErrCorrupt, Err: err}
	}
	tail := &tailReader{r: tr0}
	tr := tar.NewReader(tail)
	state := treeState{}
	links := map[string]link{}
	seen := 0
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			// archive/tar takes a stream that stops at a block boundary
			// for a complete archive; a real one ends with two zero blocks.
			if !tail.endsWithZeros() {
				return st, &EntryError{Archive: c.name, Entry: last, Reason: ErrCorrupt,
					Err: errors.New("no end-of-archive marker: truncated")}
			}
			// Read what follows the end marker (tar's record padding) so the
			// decompressor checks its trailer: a cut gzip or xz stream
			// ends after the tar does. Bounded: what follows is not content.
			if _, err := io.CopyN(io.Discard, tail, maxTrailer); err != nil && err != io.EOF {
				return st, &EntryError{Archive: c.name, Entry: last, Reason: ErrCorrupt, Err: err}
			}
			if err := checkLinkChains(links, c); err != nil {
				return st, err
			}
			return st, nil
		}
		if err != nil {
			return st, &EntryError{Archive: c.name, Entry: last, Reason: ErrCorrupt, Err: err}
		}
		seen++
		last = hdr.Name
		if seen > c.maxEntries {
			return st, &EntryError{Archive: c.name, Entry: hdr.Name, Reason: ErrTooManyEntries,
				Err: fmt.Errorf("limit %d", c.maxEntries)}
		}
		e, skip, reason, detail := check(hdr, c, state, &st)
		if reason != nil {
			return st, &EntryError{Archive: c.name, Entry: hdr.Name, Reason: reason, Err: detail}
		}
		if skip {
			continue
		}
		st.Entries++
		if e.Type == TypeSymlink {
			links[e.Name] = link{target: e.Linkname, raw: hdr.Name}
		}
		var content io.Reader = strings.NewReader("")
		var er *errReader
		if e.Type == TypeFile {
			er = &errReader{r: tr, ctx: ctx}
			content = er
		}
		if err := fn(e, content); err != nil {
			if er != nil && er.err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(er.err, ctxErr) {
					return st, ctxErr
				}
				return st, &EntryError{Archive: c.name, Entry: hdr.Name, Reason: ErrCorrupt, Err: er.err}
			}
			return st, err
		}
	}
}

// check validates hdr against c and the tree so far and, if it is placed,
// records it in state. It returns the entry, or skip, or a refusal.
func check(hdr *tar.Header, c *config, state treeState, st *Stats) (e *Entry, skip bool, reason, detail error) {
	if len(hdr.Name) > maxNameLen {
		return nil, false, ErrNameTooLong, fmt.Errorf("%d bytes, limit %d", len(hdr.Name), maxNameLen)
	}
	var t Type
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		t = TypeFile
	case tar.TypeDir:
		t = TypeDir
	case tar.TypeSymlink:
		t = TypeSymlink
	case tar.TypeLink:
		t = TypeHardlink
	case tar.TypeXGlobalHeader:
		return nil, true, nil, nil // git archive's commit id comment: not content
	case tar.TypeChar, tar.TypeBlock:
		return nil, false, ErrDevice, nil
	case tar.TypeFifo:
		return nil, false, ErrFIFO, nil
	case tar.TypeGNUSparse:
		return nil, false, ErrSparse, nil
	default:
		return nil, false, ErrUnsupported, fmt.Errorf("type flag %q", hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, false, ErrSparse, fmt.Errorf("PAX record %s", k)
		}
	}
	if hdr.Mode&07000 != 0 && !c.clearSpecial {
		return nil, false, ErrSpecialBits, fmt.Errorf("mode %04o", hdr.Mode&07777)
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return nil, false, err, nil
	}
	name, ok := stripName(name, c.strip)
	if !ok {
		// A skipped member's content is still decompressed and read
		// past: it counts against the limit, or a bomb could hide there.
		if t == TypeFile && hdr.Size > 0 {
			if st.Bytes+st.skipped+hdr.Size > c.maxBytes || hdr.Size < 0 {
				return nil, false, ErrTooLarge, fmt.Errorf("limit %d bytes", c.maxBytes)
			}
			st.skipped += hdr.Size
		}
		return nil, true, nil, nil
	}
	if c.mapName != nil {
		if name, err = mapName(c.mapName, name); err != nil {
			return nil, false, ErrUnsafePath, err
		}
		if name == "" {
			return nil, true, nil, nil
		}
	}
	e = &Entry{Name: name, Raw: hdr.Name, Type: t, Exec: hdr.Mode&0o100 != 0}

	switch t {
	case TypeFile:
		if hdr.Size < 0 {
			return nil, false, ErrCorrupt, fmt.Errorf("size %d", hdr.Size)
		}
		e.Size = hdr.Size
		if st.Bytes+st.skipped+hdr.Size > c.maxBytes || st.Bytes+hdr.Size < st.Bytes {
			return nil, false, ErrTooLarge, fmt.Errorf("limit %d bytes", c.maxBytes)
		}
	case TypeSymlink:
		if err := checkLinkTarget(name, hdr.Linkname, c.rootfsLinks); err != nil {
			return nil, false, ErrLinkEscape, err
		}
		e.Linkname = hdr.Linkname
	case TypeHardlink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return nil, false, ErrHardlink, fmt.Errorf("target %q: %w", hdr.Linkname, err)
		}
		target, ok := stripName(target, c.strip)
		if ok && c.mapName != nil {
			if target, err = mapName(c.mapName, target); err != nil {
				return nil, false, ErrHardlink, err
			}
			ok = target != ""
		}
		if !ok || target == name || state[target] != TypeFile {
			return nil, false, ErrHardlink, fmt.Errorf("target %q", hdr.Linkname)
		}
		e.Linkname = target
	}

	// Every parent must be a directory, or not yet exist; never a symlink.
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		switch state[name[:i]] {
		case TypeSymlink:
			return nil, false, ErrThroughSymlink, fmt.Errorf("%q is a symlink", name[:i])
		case TypeFile:
			return nil, false, ErrTypeChange, fmt.Errorf("%q is a file", name[:i])
		}
	}
	want := t
	if t == TypeHardlink {
		want = TypeFile
	}
	if old, ok := state[name]; ok && old != want {
		return nil, false, ErrTypeChange, fmt.Errorf("%q was a %s, now a %s", name, old, t)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			state[name[:i]] = TypeDir
		}
	}
	state[name] = want
	switch t {
	case TypeFile:
		st.Files++
		st.Bytes += hdr.Size
	case TypeDir:
		st.Dirs++
	case TypeSymlink:
		st.Symlinks++
	case TypeHardlink:
		st.Hardlinks++
	}
	return e, false, nil, nil
}

// cleanName turns a member name into a relative, slash-separated path
// without empty or "." components. It refuses absolute names and any ".."
// component, even one that would stay inside: tar tools disagree on those.
func cleanName(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") {
		return "", ErrUnsafePath
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return "", ErrUnsafePath
	}
	var b strings.Builder
	for _, comp := range strings.Split(raw, "/") {
		switch comp {
		case "", ".":
			continue
		case "..":
			return "", ErrUnsafePath
		}
		if len(comp) > maxComponentLen {
			return "", ErrNameTooLong
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(comp)
	}
	return b.String(), nil
}

// stripName drops n leading components; ok is false when none are left.
func stripName(name string, n int) (string, bool) {
	for ; n > 0 && name != ""; n-- {
		i := strings.IndexByte(name, '/')
		if i < 0 {
			return "", false
		}
		name = name[i+1:]
	}
	return name, name != ""
}

func mapName(f func(string) (string, error), name string) (string, error) {
	m, err := f(name)
	if err != nil {
		return "", fmt.Errorf("map %q: %w", name, err)
	}
	if m == "" {
		return "", nil
	}
	clean, err := cleanName(m)
	if err != nil || clean != m {
		return "", fmt.Errorf("map %q: result %q is not a clean relative path", name, m)
	}
	return m, nil
}

// checkLinkTarget refuses a symlink whose target, resolved lexically from
// the link's own directory, leaves the tree.
func checkLinkTarget(name, target string, rootfs bool) error {
	if target == "" {
		return errors.New("empty target")
	}
	if len(target) > maxNameLen {
		return fmt.Errorf("target of %d bytes", len(target))
	}
	if strings.IndexByte(target, 0) >= 0 {
		return errors.New("NUL in target")
	}
	if strings.HasPrefix(target, "/") {
		if rootfs {
			return nil // "/.." is "/": an absolute target cannot climb out
		}
		return fmt.Errorf("absolute target %q", target)
	}
	j := path.Join(path.Dir(name), target)
	if j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("target %q", target)
	}
	return nil
}

// countReader counts the input and reports progress at most every 100 ms.
type countReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
	last     time.Time
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil {
		if now := time.Now(); now.Sub(c.last) >= 100*time.Millisecond {
			c.last = now
			c.progress(c.n)
		}
	}
	return n, err
}

// tailReader remembers the last two blocks read, to tell an archive's end
// marker from a stream cut at a block boundary.
type tailReader struct {
	r    io.Reader
	tail [1024]byte
	n    int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= len(t.tail) {
		copy(t.tail[:], p[n-len(t.tail):n])
	} else if n > 0 {
		copy(t.tail[:], t.tail[n:])
		copy(t.tail[len(t.tail)-n:], p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *tailReader) endsWithZeros() bool {
	if t.n < int64(len(t.tail)) {
		return false
	}
	for _, b := range t.tail {
		if b != 0 {
			return false
		}
	}
	return true
}

// errReader remembers a read error of the tar stream, so that a truncated
// member is reported as a corrupt archive rather than as the consumer's
// failure, and stops on cancellation.
type errReader struct {
	r   io.Reader
	ctx context.Context
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	if err := e.ctx.Err(); err != nil {
		e.err = err
		return 0, err
	}
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// link is a symlink the archive placed.
type link struct{ target, raw string }

// maxLinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxLinkHops = 40

// checkLinkChains resolves every symlink of the finished tree through the
// others. Each target was checked lexically when it was read, but chains
// can still climb out: with a/l1 -> .. and x -> a/l1, the link y -> x/..
// is "." to the eye and the parent of the tree in fact. Checking once the
// whole tree is known makes the answer independent of member order.
func checkLinkChains(links map[string]link, c *config) error {
	if len(links) == 0 {
		return nil
	}
	names := make([]string, 0, len(links))
	for n := range links {
		names = append(names, n)
	}
	sort.Strings(names) // name the same link every time
	for _, n := range names {
		l := links[n]
		if linkEscapes(n, l.target, links, c.rootfsLinks) {
			return &EntryError{Archive: c.name, Entry: l.raw, Reason: ErrLinkEscape,
				Err: fmt.Errorf("target %q leaves the tree through other symlinks", l.target)}
		}
	}
	return nil
}

// linkEscapes resolves the symlink at name component by component,
// following the archive's symlinks, and reports whether a ".." ever climbs
// above the root. Components that do not exist are taken as directories
// (a dangling link is no escape unless its own ".." climbs out). A loop is
// not an escape: it resolves to nothing.
func linkEscapes(name, target string, links map[string]link, rootfs bool) bool {
	var stack []string
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	queue := strings.Split(target, "/")
	if strings.HasPrefix(target, "/") {
		if !rootfs {
			return true
		}
		stack = stack[:0]
	}
	for hops := 0; len(queue) > 0; {
		comp := queue[0]
		queue = queue[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return true
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, comp)
		l, ok := links[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > maxLinkHops {
			return false
		}
		stack = stack[:len(stack)-1]
		if strings.HasPrefix(l.target, "/") {
			if !rootfs {
				return true
			}
			stack = stack[:0]
		}
		queue = append(strings.Split(l.target, "/"), queue...)
	}
	return false
}
