package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-build/cairn/pkg/sandbox/internal/boot"
	"golang.org/x/sys/unix"
)

// SpecVersion names the sandbox's behaviour. The build puts it into every
// action key; bump it whenever what a command sees inside changes.
//
// v3: the seccomp filter boot.SeccompVersion (no setuid/setgid, no xattrs,
// no keyrings, BPF, perf, userfaultfd, io_uring...), a cgroup per step and
// RLIMIT_FSIZE. The limits themselves are not in it: a limit can only fail
// a step, never change what a step that succeeds writes.
const SpecVersion = "cairn-sandbox-v3+" + boot.SeccompVersion

// The identity the command runs as inside, and the fixed environment.
const (
	BuildUID    = 1000
	BuildGID    = 100
	DefaultPath = "/usr/bin:/bin:/usr/sbin:/sbin"
	Home        = "/homeless-shelter"
	DefaultDir  = "/build"
)

// DefaultHostID is the host uid and gid the command runs as when cairn is
// root: far above the ids distributions hand out and above the usual
// subordinate-id ranges, so that it is nobody else's.
const DefaultHostID = 0x70000000

// Mount is one bind mount: Source on the host appears at Target inside.
type Mount struct {
	Target   string // absolute path inside, e.g. /src/musl
	Source   string // host path, a directory or a file
	Writable bool
}

// Limits bound what the command may use. Zero fields take the defaults.
type Limits struct {
	// Memory in bytes, swap off: a cgroup's memory.max (v2) or
	// memory.limit_in_bytes and memsw (v1), which also charges the command's
	// tmpfs pages; where no cgroup can be used, RLIMIT_AS of each process
	// (see Notice). Default DefaultMemory.
	Memory int64
	// Pids bounds processes and threads: the cgroup's pids.max and, in any
	// case, RLIMIT_NPROC of the build uid. Default DefaultPids.
	Pids uint64
	// OutputSize bounds the apparent size (holes count) of each file the
	// command writes (RLIMIT_FSIZE) and of each writable mount after the
	// run. Default DefaultOutputSize.
	OutputSize int64
	// LogSize bounds what reaches Output: the first and last halves are
	// kept, with a line saying what was cut. Default DefaultLogSize.
	LogSize int64
	NoFile  uint64 // RLIMIT_NOFILE, default 4096
	TmpSize int64  // bytes of the /tmp tmpfs (and of /build when no mount provides it), default 2 GiB
	ShmSize int64  // bytes of /dev/shm, default 64 MiB
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	if l.Memory == 0 {
		l.Memory = DefaultMemory
	}
	if l.Pids == 0 {
		l.Pids = DefaultPids
	}
	if l.OutputSize == 0 {
		l.OutputSize = DefaultOutputSize
	}
	if l.LogSize == 0 {
		l.LogSize = DefaultLogSize
	}
	if l.NoFile == 0 {
		l.NoFile = 4096
	}
	if l.TmpSize == 0 {
		l.TmpSize = 2 << 30
	}
	if l.ShmSize == 0 {
		l.ShmSize = 64 << 20
	}
	return l
}

func (l Limits) check() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"Memory", l.Memory}, {"OutputSize", l.OutputSize}, {"LogSize", l.LogSize}, {"TmpSize", l.TmpSize}, {"ShmSize", l.ShmSize}} {
		if f.v < 0 {
			return &SpecError{Field: "Limits." + f.name, Err: fmt.Errorf("%d: want a positive size", f.v)}
		}
	}
	if l.Memory != 0 && l.Memory < 16<<20 {
		return &SpecError{Field: "Limits.Memory", Err: fmt.Errorf("%d bytes: want at least 16 MiB", l.Memory)}
	}
	return nil
}

// Spec says what to run and what it sees.
type Spec struct {
	Root   string   // host directory that appears read-only at /
	Mounts []Mount  // binds, sorted by Target before use
	Args   []string // the command; Args[0] is looked up in PATH inside when not absolute
	Env    []string // KEY=VALUE declared by the caller; PATH may be among them

	Dir        string // working directory inside, default /build
	Hostname   string // default "localhost"
	Domainname string // default "(none)", the kernel's own

	SourceDateEpoch int64
	Timeout         time.Duration // 0: none

	// Output receives the command's combined stdout and stderr. With TTY it
	// must be the terminal's *os.File.
	Output io.Writer
	Stdin  io.Reader // nil: /dev/null
	// TTY gives the command the caller's terminal (Stdin and Output must be
	// it) and keeps it in the caller's session, for an interactive shell.
	TTY bool

	Limits Limits

	// HostID is the host uid and gid of the command when cairn is root
	// (0: DefaultHostID). Ignored without root: the caller is used.
	HostID int

	// AsRoot runs the command as uid 0 and gid 0 of its own nested user
	// namespace instead of 1000/100: it may then chroot and drop to the
	// ids mapped there (a daemon such as tinydns does both at start), but
	// that namespace owns no mount namespace, so the sandbox's read-only
	// mounts stay locked, and on the host it is the same unprivileged id.
	// For running images, not for build steps.
	AsRoot bool
}

// Result is how the command ended.
type Result struct {
	ExitCode int            // -1 when killed by a signal or the time limit
	Signal   syscall.Signal // the signal that killed the command, or 0
	TimedOut bool
	Timeout  time.Duration // the limit that passed, when TimedOut
	Elapsed  time.Duration

	// Limit names the limit that ended or failed the run ("memory",
	// "pids", "output-size"), and LimitMsg says how; "" when none did.
	Limit    string
	LimitMsg string
	// LogCut is the number of output bytes cut by Limits.LogSize.
	LogCut int64
}

// Success reports whether the command exited with status 0 within its limits.
func (r Result) Success() bool {
	return r.ExitCode == 0 && !r.TimedOut && r.Signal == 0 && r.Limit == ""
}

func (r Result) String() string {
	if r.Limit != "" {
		return r.LimitMsg
	}
	return r.plain()
}

// plain says how the command ended, limits aside.
func (r Result) plain() string {
	switch {
	case r.TimedOut:
		return fmt.Sprintf("timed out after %s s", strconv.FormatFloat(r.Timeout.Seconds(), 'f', -1, 64))
	case r.Signal != 0:
		if name := unix.SignalName(r.Signal); name != "" {
			return "killed by " + name
		}
		return "killed by signal " + r.Signal.String()
	default:
		return "exit status " + strconv.Itoa(r.ExitCode)
	}
}

// fixedEnv are the variables the sandbox sets itself (PATH only by default).
var fixedEnv = []string{"HOME", "TMPDIR", "TZ", "LC_ALL", "SOURCE_DATE_EPOCH"}

// environ returns the command's whole environment, sorted.
func (s *Spec) environ() ([]string, error) {
	env := map[string]string{
		"PATH":              DefaultPath,
		"HOME":              Home,
		"TMPDIR":            "/tmp",
		"TZ":                "UTC",
		"LC_ALL":            "C",
		"SOURCE_DATE_EPOCH": strconv.FormatInt(s.SourceDateEpoch, 10),
	}
	seen := map[string]bool{}
	for i, kv := range s.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return nil, &SpecError{Field: fmt.Sprintf("Env[%d]", i), Err: fmt.Errorf("%q is not KEY=VALUE", kv)}
		}
		for _, f := range fixedEnv {
			if k == f {
				return nil, &SpecError{Field: fmt.Sprintf("Env[%d]", i), Err: fmt.Errorf("%s: %w", k, ErrReservedEnv)}
			}
		}
		if seen[k] {
			return nil, &SpecError{Field: fmt.Sprintf("Env[%d]", i), Err: fmt.Errorf("%s declared twice", k)}
		}
		seen[k] = true
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// reservedTop are top-level names the sandbox makes itself.
var reservedTop = map[string]bool{"dev": true, "proc": true, "tmp": true, "sys": true, "etc": true}

// checkTarget validates an inside path.
func checkTarget(field, t string) error {
	if !path.IsAbs(t) || path.Clean(t) != t || t == "/" {
		return &SpecError{Field: field, Err: fmt.Errorf("%q: want a clean absolute path other than /", t)}
	}
	top := strings.SplitN(t[1:], "/", 2)[0]
	if top == "dev" || top == "proc" || top == "sys" || t == "/etc" || t == "/tmp" {
		return &SpecError{Field: field, Err: fmt.Errorf("%q: the sandbox makes /%s itself", t, top)}
	}
	return nil
}

// prepare validates s and resolves it into the init's configuration.
func (s *Spec) prepare(root bool) (*boot.Config, error) {
	if len(s.Args) == 0 || s.Args[0] == "" {
		return nil, &SpecError{Field: "Args", Err: errors.New("no command")}
	}
	if s.TTY {
		if _, ok := s.Stdin.(*os.File); !ok {
			return nil, &SpecError{Field: "Stdin", Err: errors.New("TTY needs the terminal as an *os.File")}
		}
		if _, ok := s.Output.(*os.File); !ok {
			return nil, &SpecError{Field: "Output", Err: errors.New("TTY needs the terminal as an *os.File")}
		}
	}
	env, err := s.environ()
	if err != nil {
		return nil, err
	}
	if err := s.Limits.check(); err != nil {
		return nil, err
	}
	s.Limits = s.Limits.withDefaults()
	c := &boot.Config{
		Args: s.Args, Env: env, Dir: s.Dir, Hostname: s.Hostname, Domainname: s.Domainname,
		NoFile: s.Limits.NoFile, NProc: s.Limits.Pids, TmpSize: s.Limits.TmpSize, ShmSize: s.Limits.ShmSize,
		FileSize: uint64(s.Limits.OutputSize),
		TTY:      s.TTY, UserNS: !root, BuildUID: BuildUID, BuildGID: BuildGID,
	}
	if s.AsRoot {
		c.BuildUID, c.BuildGID = 0, 0
	}
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if !path.IsAbs(c.Dir) || path.Clean(c.Dir) != c.Dir {
		return nil, &SpecError{Field: "Dir", Err: fmt.Errorf("%q: want a clean absolute path", c.Dir)}
	}
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.Domainname == "" {
		c.Domainname = "(none)"
	}
	if root {
		id := s.HostID
		if id == 0 {
			id = DefaultHostID
		}
		c.OuterUID, c.OuterGID = id, id
	}

	if s.Root == "" {
		return nil, &InputError{What: "root tree", Path: s.Root, Err: errors.New("not given")}
	}
	rt, err := resolveDir(s.Root)
	if err != nil {
		return nil, &InputError{What: "root tree", Path: s.Root, Err: err}
	}
	c.Root = rt
	entries, err := os.ReadDir(rt)
	if err != nil {
		return nil, &InputError{What: "root tree", Path: s.Root, Err: err}
	}
	rootTop := map[string]bool{}
	for _, e := range entries {
		rootTop[e.Name()] = true
	}

	ms := append([]Mount(nil), s.Mounts...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Target < ms[j].Target })
	for i, m := range ms {
		field := "Mounts[" + m.Target + "]"
		if err := checkTarget(field, m.Target); err != nil {
			return nil, err
		}
		if i > 0 && (ms[i-1].Target == m.Target || strings.HasPrefix(m.Target, ms[i-1].Target+"/")) {
			return nil, &SpecError{Field: field, Err: fmt.Errorf("%q lies on %q: mounts may not nest", m.Target, ms[i-1].Target)}
		}
		top := strings.SplitN(m.Target[1:], "/", 2)[0]
		if rootTop[top] && m.Target != "/"+top {
			return nil, &SpecError{Field: field, Err: fmt.Errorf("%q lies inside the root tree's /%s", m.Target, top)}
		}
		src, err := filepath.Abs(m.Source)
		if err == nil {
			src, err = filepath.EvalSymlinks(src)
		}
		if err != nil {
			return nil, &InputError{What: "mount " + m.Target, Path: m.Source, Err: err}
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, &InputError{What: "mount " + m.Target, Path: m.Source, Err: err}
		}
		c.Mounts = append(c.Mounts, boot.Mount{Target: m.Target, Source: src, Writable: m.Writable, Dir: fi.IsDir()})
	}
	return c, nil
}

func resolveDir(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	a, err = filepath.EvalSymlinks(a)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(a)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", errors.New("not a directory")
	}
	return a, nil
}
