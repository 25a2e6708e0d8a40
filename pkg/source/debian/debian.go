// Package debian gets source packages from Debian's archive with
// `apt-get source --download-only NAME=VERSION` under a private apt state,
// so that cairn never writes the machine's /etc/apt or /var/lib/apt.
//
// The private state is derived from the machine's own apt sources
// (sources.list, sources.list.d/*.list and the deb822 sources.list.d/*.sources):
// every entry whose suites include the machine's codename (the main
// archive, not -updates, -security or third-party repositories) is turned
// into a deb-src entry with the same URIs, components and keyring, for the
// suites the caller asks for (by default the machine's codename and
// "trixie", where versions newer than bookworm's live). No host name is
// written anywhere but in that private state, and it comes from the
// machine.
//
// Layout of the state directory (kept between runs, so that `apt-get
// update` runs only when a package is not found):
//
//	sources.list.d/cairn.sources   the derived deb-src entries
//	preferences.d/                 empty
//	lists/, cache/, status         apt's own
package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config says where the machine's apt configuration is and which suites to
// ask for. The zero value reads /etc/apt and /etc/os-release.
type Config struct {
	AptGet    string   // the apt-get binary; default "apt-get"
	SourceDir string   // the machine's apt configuration directory; default /etc/apt
	OSRelease string   // default /etc/os-release, read for VERSION_CODENAME
	Suites    []string // deb-src suites; default: the codename, then DefaultExtraSuites
	Env       []string // environment of apt-get; default PATH and LC_ALL=C only
	// Timeout is apt's Acquire::http(s)::Timeout, which bounds both the
	// connect and every wait for data; rounded up to whole seconds; 0:
	// DefaultTimeout. apt's own default is 120 s.
	Timeout time.Duration
}

// DefaultTimeout is apt's connect and data timeout when Config gives none.
const DefaultTimeout = 60 * time.Second

// DefaultExtraSuites are added to the machine's codename when Config.Suites
// is empty: the default stack pins versions from Debian 13.
var DefaultExtraSuites = []string{"trixie"}

// Apt is a private apt state in a directory.
type Apt struct {
	cfg     Config
	dir     string
	updated bool // apt-get update ran in this process
}

// New returns the private apt state kept in dir.
func New(cfg Config, dir string) *Apt {
	if cfg.AptGet == "" {
		cfg.AptGet = "apt-get"
	}
	if cfg.SourceDir == "" {
		cfg.SourceDir = "/etc/apt"
	}
	if cfg.OSRelease == "" {
		cfg.OSRelease = "/etc/os-release"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	}
	return &Apt{cfg: cfg, dir: dir}
}

// Entry is one apt source entry.
type Entry struct {
	Types      []string
	URIs       []string
	Suites     []string
	Components []string
	SignedBy   string // a keyring path, or an inline key (lines joined by "\n")
	File       string // where it was read
}

// ReadSources reads the apt source entries of the configuration directory
// dir: sources.list, then sources.list.d/*.list and *.sources in name order.
// Entries that are disabled (Enabled: no) are left out.
func ReadSources(dir string) ([]Entry, error) {
	var out []Entry
	main := filepath.Join(dir, "sources.list")
	if data, err := os.ReadFile(main); err == nil {
		out = append(out, parseList(main, data)...)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(dir, "sources.list.d"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, "sources.list.d", n)
		switch {
		case strings.HasSuffix(n, ".list"):
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, parseList(p, data)...)
		case strings.HasSuffix(n, ".sources"):
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			es, err := parseDeb822(p, data)
			if err != nil {
				return nil, err
			}
			out = append(out, es...)
		}
	}
	return out, nil
}

// parseList reads one-line-style entries: "deb [opt=v ...] URI SUITE COMP...".
func parseList(file string, data []byte) []Entry {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		e := Entry{Types: []string{f[0]}, File: file}
		rest := f[1:]
		if strings.HasPrefix(rest[0], "[") {
			var opts []string
			for len(rest) > 0 {
				w := rest[0]
				rest = rest[1:]
				opts = append(opts, strings.Trim(w, "[]"))
				if strings.HasSuffix(w, "]") {
					break
				}
			}
			for _, o := range opts {
				if k, v, ok := strings.Cut(o, "="); ok && strings.EqualFold(k, "signed-by") {
					e.SignedBy = v
				}
			}
		}
		if len(rest) < 2 {
			continue
		}
		e.URIs = []string{rest[0]}
		e.Suites = []string{rest[1]}
		e.Components = rest[2:]
		out = append(out, e)
	}
	return out
}

// parseDeb822 reads deb822 stanzas (blank-line separated, "Key: value",
// continuation lines start with a space, " ." is an empty line).
func parseDeb822(file string, data []byte) ([]Entry, error) {
	var out []Entry
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) == 0 {
			return
		}
		if !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			out = append(out, Entry{
				Types:      strings.Fields(fields["types"]),
				URIs:       strings.Fields(fields["uris"]),
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				SignedBy:   strings.TrimSpace(fields["signed-by"]),
				File:       file,
			})
		}
		fields = map[string]string{}
		last = ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s:%d: continuation line outside a field", file, n)
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			fields[last] += "\n" + v
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s:%d: want \"Key: value\"", file, n)
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out, sc.Err()
}

// Codename reads VERSION_CODENAME from an os-release file.
func Codename(osRelease string) (string, error) {
	data, err := os.ReadFile(osRelease)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			if v = strings.Trim(v, `"'`); v != "" {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("%s: no VERSION_CODENAME", osRelease)
}

// SrcEntries derives the deb-src entries for suites from the machine's
// entries: those of the main archive, recognised by listing codename itself
// among their suites.
func SrcEntries(machine []Entry, codename string, suites []string) []Entry {
	var out []Entry
	seen := map[string]bool{}
	for _, e := range machine {
		if !contains(e.Suites, codename) || len(e.URIs) == 0 {
			continue
		}
		key := strings.Join(e.URIs, " ") + "|" + e.SignedBy
		if seen[key] {
			continue
		}
		seen[key] = true
		comps := e.Components
		if len(comps) == 0 {
			comps = []string{"main"}
		}
		out = append(out, Entry{Types: []string{"deb-src"}, URIs: e.URIs, Suites: suites, Components: comps, SignedBy: e.SignedBy, File: e.File})
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Format writes entries as a deb822 sources file.
func Format(es []Entry) []byte {
	var b bytes.Buffer
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Types: %s\nURIs: %s\nSuites: %s\nComponents: %s\n",
			strings.Join(e.Types, " "), strings.Join(e.URIs, " "), strings.Join(e.Suites, " "), strings.Join(e.Components, " "))
		if e.SignedBy != "" {
			lines := strings.Split(e.SignedBy, "\n")
			fmt.Fprintf(&b, "Signed-By: %s\n", lines[0])
			for _, l := range lines[1:] {
				if l == "" {
					l = "."
				}
				fmt.Fprintf(&b, " %s\n", l)
			}
		}
	}
	return b.Bytes()
}

// Prepare writes the private state's configuration from the machine's.
// When the derived sources changed, the old indices are dropped, so that
// the next Source runs apt-get update.
func (a *Apt) Prepare() error {
	suites := a.cfg.Suites
	machine, err := ReadSources(a.cfg.SourceDir)
	if err != nil {
		return fmt.Errorf("apt sources: %w", err)
	}
	codename, err := Codename(a.cfg.OSRelease)
	if err != nil {
		return fmt.Errorf("apt sources: %w", err)
	}
	if len(suites) == 0 {
		suites = append([]string{codename}, DefaultExtraSuites...)
	}
	src := SrcEntries(machine, codename, suites)
	if len(src) == 0 {
		return fmt.Errorf("apt sources in %s: no entry for the main archive (suite %s) to derive deb-src entries from", a.cfg.SourceDir, codename)
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	status := filepath.Join(a.dir, "status")
	if _, err := os.Stat(status); err != nil {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return err
		}
	}
	want := Format(src)
	file := filepath.Join(a.dir, "sources.list.d", "cairn.sources")
	if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, want) {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(a.dir, "lists")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(a.dir, "lists", "partial"), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, want, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func (a *Apt) args(extra ...string) []string {
	d := a.dir
	secs := strconv.FormatInt(int64((a.cfg.Timeout+time.Second-1)/time.Second), 10)
	args := []string{
		"-o", "Dir::State=" + d,
		"-o", "Dir::State::Lists=" + filepath.Join(d, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(d, "status"),
		"-o", "Dir::Cache=" + filepath.Join(d, "cache"),
		"-o", "Dir::Etc::SourceList=/dev/null",
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(d, "sources.list.d"),
		"-o", "Dir::Etc::Preferences=/dev/null",
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(d, "preferences.d"),
		"-o", "Acquire::http::Timeout=" + secs,
		"-o", "Acquire::https::Timeout=" + secs,
		"-q",
	}
	return append(args, extra...)
}

// CommandError is a failed apt-get run, with the end of what it said.
type CommandError struct {
	Args   []string
	Err    error
	Output string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("apt-get %s: %v\n%s", strings.Join(e.Args, " "), e.Err, e.Output)
}

func (e *CommandError) Unwrap() error { return e.Err }

func (a *Apt) run(ctx context.Context, dir string, extra ...string) error {
	cmd := exec.CommandContext(ctx, a.cfg.AptGet, a.args(extra...)...)
	cmd.Dir = dir
	cmd.Env = a.cfg.Env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return &CommandError{Args: extra, Err: err, Output: tail(out.String(), 20)}
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Update runs apt-get update in the private state.
func (a *Apt) Update(ctx context.Context) error {
	if err := a.run(ctx, a.dir, "update"); err != nil {
		return err
	}
	a.updated = true
	return nil
}

// hasLists reports whether an update has filled the indices.
func (a *Apt) hasLists() bool {
	ents, err := os.ReadDir(filepath.Join(a.dir, "lists"))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "_Sources") || strings.Contains(e.Name(), "_Sources.") {
			return true
		}
	}
	return false
}

// Source downloads the files of source package pkg ("NAME=VERSION") into
// dir, which should be empty, and returns their names, sorted. When the
// package is not found with the indices at hand, the indices are refreshed
// once and the download retried.
func (a *Apt) Source(ctx context.Context, pkg, dir string) ([]string, error) {
	if strings.HasPrefix(pkg, "-") || !strings.Contains(pkg, "=") {
		return nil, fmt.Errorf("debian source %q: want NAME=VERSION", pkg)
	}
	if err := a.Prepare(); err != nil {
		return nil, err
	}
	if !a.hasLists() {
		if err := a.Update(ctx); err != nil {
			return nil, err
		}
	}
	err := a.run(ctx, dir, "source", "--download-only", pkg)
	if err != nil && !a.updated && ctx.Err() == nil {
		if uerr := a.Update(ctx); uerr != nil {
			return nil, errors.Join(err, uerr)
		}
		err = a.run(ctx, dir, "source", "--download-only", pkg)
	}
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
