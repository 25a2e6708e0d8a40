// Package patch applies a series of patches (unified diffs, plain or in
// git's format) to a source tree, the way a pinned build needs: every hunk
// applies with its context intact or the series fails.
//
// Parsing is github.com/bluekeyes/go-gitdiff; the application rules are
// cairn's and deliberately narrow:
//
//   - No fuzz. Every context and removed line of a hunk must match the file
//     exactly. A hunk may land at an offset from the line its header names,
//     as dpkg-source (patch -F 0) and git apply allow, because a patch taken
//     from a longer series is often made against a file that earlier,
//     unselected patches had moved; the offset is searched nearest first and
//     never lets hunks overlap or reorder.
//   - The tree is opened as an os.Root: no patch reads or writes outside it,
//     whatever its names say (absolute paths, "..", symlinks pointing out).
//     Names must be clean relative paths, and a patch may only change
//     regular files: it may not write through a symlink, make one, or
//     change a file into anything but a regular file.
//   - Binary patches are refused: source patches are text.
//
// A patch that does not apply is an *Error naming the patch, the file and
// the hunk. The tree may then be half patched: callers apply into a scratch
// copy that they throw away on error (the store's AddTree does).
package patch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

// Patch is one patch to apply.
type Patch struct {
	Name string // how messages name it: the series name or the file name
	Data []byte
	// Strip is how many leading path components to drop from the names of
	// a plain unified diff (patch -pN; quilt's default is 1). Git diffs
	// name files without their a/ and b/ prefixes already and use Strip-1.
	Strip int
}

// Error is a patch that does not apply.
type Error struct {
	Patch string
	File  string // "" when the patch as a whole is at fault
	Err   error
}

func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("patch %s: %v", e.Patch, e.Err)
	}
	return fmt.Sprintf("patch %s: %s: %v", e.Patch, e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrConflict marks a hunk whose lines are not in the file.
var ErrConflict = errors.New("hunk does not apply")

// ErrUnsafe marks a patch that names something outside the tree or asks
// for something other than a regular file.
var ErrUnsafe = errors.New("refused")

// Apply applies patches, in order, to the tree under dir.
func Apply(ctx context.Context, dir string, patches []Patch) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range patches {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := applyPatch(root, p); err != nil {
			return err
		}
	}
	return nil
}

func applyPatch(root *os.Root, p Patch) error {
	files, _, err := gitdiff.Parse(bytes.NewReader(p.Data))
	if err != nil {
		return &Error{Patch: p.Name, Err: fmt.Errorf("not a patch: %w", err)}
	}
	if len(files) == 0 {
		return &Error{Patch: p.Name, Err: errors.New("no change in it: not a unified diff")}
	}
	git := countGitHeaders(p.Data)
	if git != 0 && git != len(files) {
		return &Error{Patch: p.Name, Err: fmt.Errorf("%d of its %d files have a git header: mixed formats are refused", git, len(files))}
	}
	strip := p.Strip
	if git > 0 {
		strip-- // go-gitdiff dropped a/ and b/ already
	}
	for _, f := range files {
		if err := applyFile(root, f, strip); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				pe.Patch = p.Name
				return pe
			}
			return &Error{Patch: p.Name, Err: err}
		}
	}
	return nil
}

// countGitHeaders counts the lines that start a file in git's format.
func countGitHeaders(data []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("diff --git ")) {
			n++
		}
	}
	return n
}

// stripName drops n leading components from a patch's file name and checks
// that what is left is a clean path inside the tree.
func stripName(name string, n int) (string, error) {
	if name == "" {
		return "", nil
	}
	orig := name
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%q: %w: an absolute path", orig, ErrUnsafe)
	}
	for ; n > 0; n-- {
		i := strings.IndexByte(name, '/')
		if i < 0 {
			return "", fmt.Errorf("%q: %w: fewer than %d leading components to strip", orig, ErrUnsafe, n)
		}
		name = strings.TrimLeft(name[i+1:], "/")
	}
	c := path.Clean(name)
	if name == "" || c != name || c == "." || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsAny(c, "\x00\\") {
		return "", fmt.Errorf("%q: %w: not a clean path inside the tree", orig, ErrUnsafe)
	}
	for _, part := range strings.Split(c, "/") {
		if strings.EqualFold(part, ".git") {
			return "", fmt.Errorf("%q: %w: a .git component", orig, ErrUnsafe)
		}
	}
	return c, nil
}

// regularMode checks a git mode: 0 (not given) or a regular file's.
func regularMode(m os.FileMode) error {
	if m == 0 || m&^0o777 == 0o100000 {
		return nil
	}
	return fmt.Errorf("mode %o: %w: a patch may only make regular files", uint32(m), ErrUnsafe)
}

func applyFile(root *os.Root, f *gitdiff.File, strip int) error {
	oldName, err := stripName(f.OldName, strip)
	if err != nil {
		return err
	}
	newName, err := stripName(f.NewName, strip)
	if err != nil {
		return err
	}
	name := newName
	if name == "" {
		name = oldName
	}
	fail := func(err error) error { return &Error{File: name, Err: err} }
	if f.IsBinary || f.BinaryFragment != nil {
		return fail(fmt.Errorf("%w: binary patches are refused", ErrUnsafe))
	}
	if err := regularMode(f.OldMode); err != nil {
		return fail(err)
	}
	if err := regularMode(f.NewMode); err != nil {
		return fail(err)
	}

	var src []byte
	var mode os.FileMode = 0o644
	if !f.IsNew {
		src, mode, err = readRegular(root, oldName)
		if err != nil {
			return fail(err)
		}
	}
	if f.NewMode != 0 {
		mode = f.NewMode & 0o777
	}
	if (f.IsNew || f.IsCopy || f.IsRename) && newName != oldName {
		if _, err := root.Lstat(newName); err == nil {
			return fail(fmt.Errorf("%w: the patch creates it, but it exists", ErrConflict))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
	}
	out, err := applyText(src, f.TextFragments)
	if err != nil {
		return fail(err)
	}
	if f.IsDelete {
		if len(out) != 0 {
			return fail(fmt.Errorf("%w: the patch deletes it, but lines are left", ErrConflict))
		}
		return root.Remove(oldName)
	}
	if err := writeRegular(root, newName, out, mode); err != nil {
		return fail(err)
	}
	if f.IsRename && oldName != newName {
		return root.Remove(oldName)
	}
	return nil
}

// readRegular reads a regular file of the tree; a symlink, even one that
// stays inside, is refused, as GNU patch refuses it.
func readRegular(root *os.Root, name string) ([]byte, os.FileMode, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%w: no such file in the tree", ErrConflict)
		}
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%w: not a regular file (%s)", ErrUnsafe, fi.Mode().Type())
	}
	in, err := root.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	return data, fi.Mode().Perm(), err
}

// writeRegular replaces name with a new file: a new inode, so that nothing
// linked to the old one changes, and never through a symlink.
func writeRegular(root *os.Root, name string, data []byte, mode os.FileMode) error {
	if fi, err := root.Lstat(name); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: not a regular file (%s)", ErrUnsafe, fi.Mode().Type())
		}
		if err := root.Remove(name); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil { // not the umask's
		out.Close()
		return err
	}
	return out.Close()
}

// applyText applies the hunks to src, each at the position nearest its
// header's where all its old lines match exactly.
func applyText(src []byte, frags []*gitdiff.TextFragment) ([]byte, error) {
	if len(frags) == 0 {
		return src, nil
	}
	lines := splitLines(src)
	seated := make([]*gitdiff.TextFragment, len(frags))
	next := 0   // the first line a hunk may start at: hunks never overlap
	offset := 0 // the last hunk's offset carries to the next, as in GNU patch
	for i, fr := range frags {
		var old []string
		for _, l := range fr.Lines {
			if l.Old() {
				old = append(old, l.Line)
			}
		}
		want := int(fr.OldPosition) - 1 + offset
		if fr.OldPosition == 0 || len(old) == 0 {
			// A hunk with no old lines (a new file, or -U0 insertions)
			// has nothing to match: it goes where it says.
			want = max(int(fr.OldPosition)-1, 0) + offset
			if fr.OldPosition == 0 {
				want = 0
			}
		} else {
			at, ok := seat(lines, old, want, next)
			if !ok {
				return nil, fmt.Errorf("hunk %d (%s): %w: its %d context and removed lines are nowhere in the file",
					i+1, strings.TrimSpace(fr.Header()), ErrConflict, len(old))
			}
			offset += at - want
			want = at
		}
		if want < next || want > len(lines) {
			return nil, fmt.Errorf("hunk %d (%s): %w: out of order or past the end", i+1, strings.TrimSpace(fr.Header()), ErrConflict)
		}
		c := *fr
		if fr.OldPosition != 0 {
			c.OldPosition = int64(want) + 1
		}
		seated[i] = &c
		next = want + len(old)
	}
	var out bytes.Buffer
	a := gitdiff.NewTextApplier(&out, bytes.NewReader(src))
	for i, fr := range seated {
		if err := a.ApplyFragment(fr); err != nil {
			return nil, fmt.Errorf("hunk %d (%s): %w: %v", i+1, strings.TrimSpace(frags[i].Header()), ErrConflict, err)
		}
	}
	if err := a.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// seat finds where old matches lines exactly, nearest to want first, at or
// after min.
func seat(lines, old []string, want, min int) (int, bool) {
	last := len(lines) - len(old)
	match := func(at int) bool {
		if at < min || at > last {
			return false
		}
		for i, l := range old {
			if lines[at+i] != l {
				return false
			}
		}
		return true
	}
	for d := 0; want-d >= min || want+d <= last; d++ {
		if match(want - d) {
			return want - d, true
		}
		if d > 0 && match(want+d) {
			return want + d, true
		}
	}
	return 0, false
}

// splitLines splits data after each newline, keeping it, as go-gitdiff's
// lines keep theirs; a last line without one is kept as it is.
func splitLines(data []byte) []string {
	var out []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, string(data))
			break
		}
		out = append(out, string(data[:i+1]))
		data = data[i+1:]
	}
	return out
}

// SeriesEntry is one line of a quilt series file.
type SeriesEntry struct {
	Name  string // path below the patches directory
	Strip int    // -pN, 1 when not given
}

// ParseSeries reads a quilt series file (debian/patches/series): one patch
// a line, optionally followed by -pN; blank lines and # comments are
// skipped. Other options (-R, fuzz) are refused: they would change what a
// patch means.
func ParseSeries(data []byte) ([]SeriesEntry, error) {
	var out []SeriesEntry
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		fields := strings.Fields(l)
		if len(fields) == 0 {
			continue
		}
		e := SeriesEntry{Name: fields[0], Strip: 1}
		if c := path.Clean(e.Name); c != e.Name || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") || strings.HasPrefix(c, "-") {
			return nil, fmt.Errorf("series line %d: %q: not a patch name inside the patches directory", n, e.Name)
		}
		for _, opt := range fields[1:] {
			s, ok := strings.CutPrefix(opt, "-p")
			v, err := strconv.Atoi(s)
			if !ok || err != nil || v < 0 || v > 16 {
				return nil, fmt.Errorf("series line %d: %s: option %q refused (only -pN)", n, e.Name, opt)
			}
			e.Strip = v
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("series line %d: %s listed twice", n, e.Name)
		}
		seen[e.Name] = true
		out = append(out, e)
	}
	return out, sc.Err()
}
