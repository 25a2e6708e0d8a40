package seed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// Package is one locked .deb.
type Package struct {
	Name     string
	Version  string // Debian version, with its epoch if any ("1:3.8-4")
	Arch     string
	Size     int64
	SHA256   string // lowercase hex of the .deb's bytes
	Filename string // the archive's pool file name ("pool/main/d/dash/dash_0.5.12-2_amd64.deb")
	Line     int    // where it was declared
}

// Link is a symbolic link made after every package is unpacked: what a
// maintainer script would have made (update-alternatives) and a build needs.
type Link struct {
	Path   string // inside the root, relative ("usr/bin/awk")
	Target string // as written into the link ("gawk")
	Line   int
}

// Lock is a parsed seed lock: packages sorted by name, links in file order.
type Lock struct {
	File     string
	Packages []Package
	Links    []Link
}

// Bytes is the total size of the locked .debs.
func (l *Lock) Bytes() int64 {
	var n int64
	for _, p := range l.Packages {
		n += p.Size
	}
	return n
}

// LockError locates a problem in a lock file.
type LockError struct {
	File string
	Line int
	Msg  string
}

func (e *LockError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseLockFile reads and parses the lock at file.
func ParseLockFile(file string) (*Lock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLock(f, file)
}

// ParseLock parses a lock read from r; name is used in errors. Every
// problem is reported, each with its line, joined in one error.
func ParseLock(r io.Reader, name string) (*Lock, error) {
	l := &Lock{File: name}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, &LockError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	seenPkg := map[string]int{}
	seenLink := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	n := 0
	for sc.Scan() {
		if len(errs) >= maxLockErrors {
			bad(n, "too many errors; stopped")
			break
		}
		n++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "deb":
			if len(f) != 7 {
				bad(n, "deb line has %d fields, want 7: deb NAME VERSION ARCH SIZE SHA256 POOL-FILENAME", len(f))
				continue
			}
			p := Package{Name: f[1], Version: f[2], Arch: f[3], SHA256: f[5], Filename: f[6], Line: n}
			if !validName(p.Name) {
				bad(n, "invalid package name %q", p.Name)
			}
			if !validVersion(p.Version) {
				bad(n, "package %s: invalid version %q", p.Name, p.Version)
			}
			if !validName(p.Arch) {
				bad(n, "package %s: invalid architecture %q", p.Name, p.Arch)
			}
			size, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil || size <= 0 || f[4][0] == '+' {
				bad(n, "package %s: invalid size %q", p.Name, f[4])
			}
			p.Size = size
			if !validSHA256(p.SHA256) {
				bad(n, "package %s: sha256 %q is not 64 lowercase hex digits", p.Name, p.SHA256)
			}
			if !validPool(p.Filename) {
				bad(n, "package %s: pool file name %q must be a clean relative path under pool/ ending in .deb", p.Name, p.Filename)
			}
			if prev, ok := seenPkg[p.Name]; ok {
				bad(n, "package %s already locked on line %d", p.Name, prev)
				continue
			}
			seenPkg[p.Name] = n
			if len(l.Packages) > 0 && l.Packages[len(l.Packages)-1].Name > p.Name {
				bad(n, "package %s out of order: packages are sorted by name (scripts/lock-seed.sh writes them so)", p.Name)
			}
			l.Packages = append(l.Packages, p)
		case "symlink":
			if len(f) != 3 {
				bad(n, "symlink line has %d fields, want 3: symlink PATH TARGET", len(f))
				continue
			}
			k := Link{Path: f[1], Target: f[2], Line: n}
			if !validRel(k.Path) {
				bad(n, "symlink path %q must be a clean relative path", k.Path)
			}
			if k.Target == "" || strings.ContainsRune(k.Target, 0) {
				bad(n, "symlink %s: empty target", k.Path)
			}
			if prev, ok := seenLink[k.Path]; ok {
				bad(n, "symlink %s already declared on line %d", k.Path, prev)
				continue
			}
			seenLink[k.Path] = n
			l.Links = append(l.Links, k)
		default:
			bad(n, "unknown directive %q (want deb or symlink)", short(f[0]))
		}
	}
	if err := sc.Err(); err != nil {
		bad(n+1, "%v", err)
	}
	if len(errs) == 0 && len(l.Packages) == 0 {
		bad(n, "no packages locked")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return l, nil
}

// maxLockErrors stops a parse of something that is not a lock at all
// before it buries the first, telling errors.
const maxLockErrors = 20

func short(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// validName follows Debian policy 5.6.1: lowercase letters, digits, + - .,
// at least two characters, starting with an alphanumeric.
func validName(s string) bool {
	if len(s) < 2 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validVersion follows policy 5.6.12 loosely: [epoch:]upstream[-revision]
// of alphanumerics and . + ~ - :, starting with a digit after the epoch.
func validVersion(s string) bool {
	up := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if _, err := strconv.ParseUint(s[:i], 10, 32); err != nil {
			return false
		}
		up = s[i+1:]
	}
	if up == "" || up[0] < '0' || up[0] > '9' {
		return false
	}
	for i := 0; i < len(up); i++ {
		c := up[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".+~-:", c) >= 0) {
			return false
		}
	}
	return true
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validRel(s string) bool {
	return s != "" && s != "." && !strings.HasPrefix(s, "/") && path.Clean(s) == s &&
		s != ".." && !strings.HasPrefix(s, "../") && !strings.ContainsRune(s, 0)
}

func validPool(s string) bool {
	return validRel(s) && strings.HasPrefix(s, "pool/") && strings.HasSuffix(s, ".deb") &&
		!strings.Contains(s, "/../")
}
