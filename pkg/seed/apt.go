package seed

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// privateApt is an apt configuration of cairn's own: an empty dpkg status,
// its own state, cache and source list under dir, with the sources copied
// from the machine's apt configuration (so no archive host is ever written
// in the project). The machine's /etc/apt is read, never written.
type privateApt struct {
	dir    string
	arch   string
	opts   []string
	once   sync.Once
	errUpd error
}

func newPrivateApt(etc, dir, arch string, timeout time.Duration) (*privateApt, error) {
	a := &privateApt{dir: dir, arch: arch}
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "state/status"), nil, 0o644); err != nil {
		return nil, err
	}
	n, err := copySources(etc, filepath.Join(dir, "etc/sources.list.d"))
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("apt: no deb sources in %s (sources.list, sources.list.d/*.list, *.sources)", etc)
	}
	secs := strconv.FormatInt(int64((timeout+time.Second-1)/time.Second), 10)
	a.opts = []string{
		"-o", "Dir::State=" + filepath.Join(dir, "state"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "state/status"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Dir::Etc::SourceList=/dev/null",
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "etc/sources.list.d"),
		"-o", "Dir::Etc::Preferences=/dev/null",
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "etc/preferences.d"),
		"-o", "APT::Architecture=" + arch,
		"-o", "APT::Architectures=" + arch,
		"-o", "Debug::NoLocking=true",
		"-o", "Acquire::http::Timeout=" + secs,
		"-o", "Acquire::https::Timeout=" + secs,
		"-qq",
	}
	if os.Geteuid() == 0 {
		// apt's _apt user cannot read a private directory of root's.
		a.opts = append(a.opts, "-o", "APT::Sandbox::User=root")
	}
	return a, nil
}

// copySources copies the deb sources of the apt configuration at etc into
// dst: one-line .list files keep their deb lines only, deb822 .sources
// files are copied whole. Files are taken in sorted order and renamed by
// number, so nothing of their names matters.
func copySources(etc, dst string) (int, error) {
	var lists []string
	if _, err := os.Stat(filepath.Join(etc, "sources.list")); err == nil {
		lists = append(lists, filepath.Join(etc, "sources.list"))
	}
	more, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.list"))
	sort.Strings(more)
	lists = append(lists, more...)
	n := 0
	for _, f := range lists {
		b, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		var out bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == "deb" {
				out.WriteString(sc.Text() + "\n")
			}
		}
		if out.Len() == 0 {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, fmt.Sprintf("%02d.list", n)), out.Bytes(), 0o644); err != nil {
			return n, err
		}
		n++
	}
	srcs, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.sources"))
	sort.Strings(srcs)
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		if err := os.WriteFile(filepath.Join(dst, fmt.Sprintf("%02d.sources", n)), b, 0o644); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (a *privateApt) run(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", append(append([]string{}, a.opts...), args...)...)
	cmd.Dir = dir
	// apt's messages are part of the error, in the C locale so that they
	// read the same everywhere.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("apt-get %s: %s", args[0], msg)
	}
	return nil
}

func (a *privateApt) update(ctx context.Context) error {
	a.once.Do(func() { a.errUpd = a.run(ctx, a.dir, "update") })
	return a.errUpd
}

// download fetches pkgs into dir with apt-get download, in one call; if
// that fails, one call per package, so that the failure names the
// packages that are no longer served. It returns those failures by name.
func (a *privateApt) download(ctx context.Context, dir string, pkgs []Package) (map[string]error, error) {
	if err := a.update(ctx); err != nil {
		return nil, err
	}
	args := []string{"download"}
	for _, p := range pkgs {
		args = append(args, p.Name+":"+p.Arch+"="+p.Version)
	}
	if err := a.run(ctx, dir, args...); err == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	failed := map[string]error{}
	for _, p := range pkgs {
		if err := a.run(ctx, dir, "download", p.Name+":"+p.Arch+"="+p.Version); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failed[p.Name] = err
		}
	}
	return failed, nil
}
