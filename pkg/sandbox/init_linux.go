package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// argv[0] markers of a re-executed cairn.
const (
	initArg0  = "cairn-sandbox-init"
	probeArg0 = "cairn-sandbox-probe"
)

// The init's inherited descriptors.
const (
	configFD = 3
	reportFD = 4
)

// report is what the init sends back on fd 4, one JSON object per line.
type report struct {
	Err    *wireError `json:"err,omitempty"`
	Exit   *int       `json:"exit,omitempty"`
	Signal int        `json:"signal,omitempty"`
}

// Init must be the first thing main does. In a process that Run started it
// becomes the sandbox's init and returns the status main must exit with and
// handled=true; anywhere else it returns handled=false at once.
func Init() (exitCode int, handled bool) {
	if len(os.Args) == 0 {
		return 0, false
	}
	switch os.Args[0] {
	case initArg0:
		return runInit(), true
	case probeArg0:
		return 0, true
	}
	return 0, false
}

func runInit() int {
	// Everything below runs on one thread: no_new_privs is per thread and
	// the command's Pdeathsig is tied to the thread that forks it.
	runtime.LockOSThread()
	rep := os.NewFile(reportFD, "report")
	send := func(r report) {
		b, _ := json.Marshal(r)
		rep.Write(append(b, '\n'))
	}
	fail := func(err error) int {
		send(report{Err: toWire(err)})
		return 125
	}
	cf := os.NewFile(configFD, "config")
	var c initConfig
	err := json.NewDecoder(cf).Decode(&c)
	cf.Close()
	if err != nil {
		return fail(&SetupError{Step: "read config", Err: err})
	}
	// Nothing the caller's caller left open without O_CLOEXEC reaches the
	// command: only 0, 1 and 2 are passed on.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail(&SetupError{Step: "close_range", Err: err})
	}
	// The command must not reach this binary through /proc/1/exe.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fail(&SetupError{Step: "prctl dumpable", Err: err})
	}
	// Terminal and termination signals are the command's business; a
	// handled signal is reset to default by execve, an ignored one is not.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP,
		syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()

	if err := buildRoot(&c); err != nil {
		return fail(err)
	}
	if err := configure(&c); err != nil {
		return fail(err)
	}
	argv0, err := lookPath(c.Args[0], c.Env)
	if err != nil {
		return fail(&SetupError{Step: "find command", Path: c.Args[0], Err: err})
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(&SetupError{Step: "prctl no_new_privs", Err: err})
	}
	attr := &syscall.ProcAttr{
		Dir:   c.Dir,
		Env:   c.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			// A nested user and mount namespace: the command's copy of
			// the mounts is locked, and uid 1000 holds no capabilities
			// after execve.
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: BuildUID, HostID: c.OuterUID, Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: BuildGID, HostID: c.OuterGID, Size: 1}},
			GidMappingsEnableSetgroups: false,
			Credential:                 &syscall.Credential{Uid: BuildUID, Gid: BuildGID, NoSetGroups: true},
			Setsid:                     !c.TTY,
			Pdeathsig:                  syscall.SIGKILL,
		},
	}
	pid, err := syscall.ForkExec(argv0, c.Args, attr)
	if err != nil {
		return fail(&SetupError{Step: "start command", Path: argv0, Err: err})
	}
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(&SetupError{Step: "wait", Err: err})
		}
		if wpid != pid {
			continue // an orphan, reaped
		}
		var r report
		code := 0
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			r.Signal = int(ws.Signal())
			code = 128 + r.Signal
		default:
			continue
		}
		r.Exit = &code
		send(r)
		// Returning ends pid 1: the kernel kills whatever is left.
		return code
	}
}

func must(step, p string, err error) error {
	if err != nil {
		return &SetupError{Step: step, Path: p, Err: err}
	}
	return nil
}

func bind(src, dst string) error {
	return must("bind "+src+" on", dst, unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""))
}

func setattr(p string, flags uint, attr uint64) error {
	return must("mount_setattr", p, unix.MountSetattr(unix.AT_FDCWD, p, flags, &unix.MountAttr{Attr_set: attr}))
}

// mkpoint makes an empty directory or file for a mount to land on.
func mkpoint(p string, dir bool) error {
	if err := os.MkdirAll(path.Dir(p), 0o755); err != nil {
		return must("mkdir", path.Dir(p), err)
	}
	if dir {
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return must("mkdir", p, err)
		}
		return nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return must("create", p, err)
	}
	return f.Close()
}

// layer reproduces the entries of host directory src under dst: symlinks
// recreated, everything else bound; skip names are left out.
func layer(src, dst string, skip map[string]bool, ro *[]string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return must("read", src, err)
	}
	for _, e := range ents {
		name := e.Name()
		if skip[name] {
			continue
		}
		s, d := src+"/"+name, dst+"/"+name
		if e.Type()&os.ModeSymlink != 0 {
			t, err := os.Readlink(s)
			if err != nil {
				return must("readlink", s, err)
			}
			if err := os.Symlink(t, d); err != nil {
				return must("symlink", d, err)
			}
			continue
		}
		if err := mkpoint(d, e.IsDir()); err != nil {
			return err
		}
		if err := bind(s, d); err != nil {
			return err
		}
		*ro = append(*ro, d)
	}
	return nil
}

const (
	scratch = "/tmp" // hidden under a tmpfs in the private mount namespace
	newRoot = "/newroot"
	oldRoot = "/oldroot"
)

// buildRoot assembles the sandbox's root and pivots into it.
func buildRoot(c *initConfig) error {
	if err := must("make / private", "/", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")); err != nil {
		return err
	}
	if err := must("mount scratch tmpfs", scratch, unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m")); err != nil {
		return err
	}
	if err := must("chdir", scratch, unix.Chdir(scratch)); err != nil {
		return err
	}
	for _, d := range []string{"newroot", "oldroot"} {
		if err := must("mkdir", d, unix.Mkdir(d, 0o755)); err != nil {
			return err
		}
	}
	if err := must("pivot_root", scratch, unix.PivotRoot(".", "oldroot")); err != nil {
		return err
	}
	if err := must("chdir", "/", unix.Chdir("/")); err != nil {
		return err
	}
	if err := must("mount root tmpfs", newRoot, unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m")); err != nil {
		return err
	}
	host := func(p string) string { return oldRoot + p }
	var ro, rw []string

	// The root tree, less what the sandbox makes and what mounts shadow.
	skip := map[string]bool{}
	for k := range reservedTop {
		skip[k] = true
	}
	for _, m := range c.Mounts {
		skip[strings.SplitN(m.Target[1:], "/", 2)[0]] = true
	}
	if err := layer(host(c.Root), newRoot, skip, &ro); err != nil {
		return err
	}
	// /etc: the root tree's entries, with passwd, group and hosts our own.
	if err := must("mkdir", "/etc", os.Mkdir(newRoot+"/etc", 0o755)); err != nil {
		return err
	}
	if fi, err := os.Lstat(host(c.Root) + "/etc"); err == nil && fi.IsDir() {
		if err := layer(host(c.Root)+"/etc", newRoot+"/etc", map[string]bool{"passwd": true, "group": true, "hosts": true}, &ro); err != nil {
			return err
		}
	}
	files := map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:root:/root:/noshell\nbuilder:x:%d:%d:cairn build user:%s:/noshell\nnobody:x:65534:65534:nobody:/nonexistent:/noshell\n", BuildUID, BuildGID, Home),
		"group":  fmt.Sprintf("root:x:0:\nbuilders:x:%d:builder\nnogroup:x:65534:\n", BuildGID),
		"hosts":  "127.0.0.1 localhost\n::1 localhost\n",
	}
	if c.Hostname != "localhost" {
		files["hosts"] += "127.0.0.1 " + c.Hostname + "\n"
	}
	for _, name := range []string{"group", "hosts", "passwd"} {
		if err := must("write", "/etc/"+name, os.WriteFile(newRoot+"/etc/"+name, []byte(files[name]), 0o644)); err != nil {
			return err
		}
	}

	// /dev
	dev := newRoot + "/dev"
	if err := mkpoint(dev, true); err != nil {
		return err
	}
	if err := must("mount tmpfs", "/dev", unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k")); err != nil {
		return err
	}
	for _, n := range []string{"full", "null", "random", "tty", "urandom", "zero"} {
		if err := mkpoint(dev+"/"+n, false); err != nil {
			return err
		}
		if err := bind(host("/dev/"+n), dev+"/"+n); err != nil {
			return err
		}
	}
	for _, l := range [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}} {
		if err := must("symlink", "/dev/"+l[1], os.Symlink(l[0], dev+"/"+l[1])); err != nil {
			return err
		}
	}
	if err := mkpoint(dev+"/pts", true); err != nil {
		return err
	}
	if err := must("mount devpts", "/dev/pts", unix.Mount("devpts", dev+"/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")); err != nil {
		return err
	}
	if err := mkpoint(dev+"/shm", true); err != nil {
		return err
	}
	if err := must("mount tmpfs", "/dev/shm", unix.Mount("tmpfs", dev+"/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("mode=1777,size=%d", c.Limits.ShmSize))); err != nil {
		return err
	}

	// /proc, /tmp
	if err := mkpoint(newRoot+"/proc", true); err != nil {
		return err
	}
	if err := must("mount proc", "/proc", unix.Mount("proc", newRoot+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")); err != nil {
		return err
	}
	if err := mkpoint(newRoot+"/tmp", true); err != nil {
		return err
	}
	if err := must("mount tmpfs", "/tmp", unix.Mount("tmpfs", newRoot+"/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("mode=1777,size=%d", c.Limits.TmpSize))); err != nil {
		return err
	}

	// The caller's mounts, then a tmpfs working directory if none is given.
	haveDir := false
	for _, m := range c.Mounts {
		d := newRoot + m.Target
		if err := mkpoint(d, m.Dir); err != nil {
			return err
		}
		if err := bind(host(m.Source), d); err != nil {
			return err
		}
		if m.Writable {
			rw = append(rw, d)
		} else {
			ro = append(ro, d)
		}
		if m.Target == c.Dir || strings.HasPrefix(c.Dir, m.Target+"/") {
			haveDir = true
		}
	}
	if !haveDir {
		d := newRoot + c.Dir
		if err := mkpoint(d, true); err != nil {
			return err
		}
		opts := fmt.Sprintf("mode=0755,uid=%d,gid=%d,size=%d", c.OuterUID, c.OuterGID, c.Limits.TmpSize)
		if err := must("mount tmpfs", c.Dir, unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts)); err != nil {
			return err
		}
	}
	for _, p := range ro {
		if err := setattr(p, unix.AT_RECURSIVE, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
			return err
		}
	}
	for _, p := range rw {
		if err := setattr(p, unix.AT_RECURSIVE, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
			return err
		}
	}

	// Leave the host behind.
	if err := must("detach", oldRoot, unix.Unmount(oldRoot, unix.MNT_DETACH)); err != nil {
		return err
	}
	if err := must("chdir", newRoot, unix.Chdir(newRoot)); err != nil {
		return err
	}
	if err := must("pivot_root", newRoot, unix.PivotRoot(".", ".")); err != nil {
		return err
	}
	if err := must("detach", "scratch root", unix.Unmount(".", unix.MNT_DETACH)); err != nil {
		return err
	}
	if err := must("chdir", "/", unix.Chdir("/")); err != nil {
		return err
	}
	if err := setattr("/", 0, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
		return err
	}
	return setattr("/dev", 0, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
}

// configure sets what the command inherits from the init.
func configure(c *initConfig) error {
	if err := must("sethostname", c.Hostname, unix.Sethostname([]byte(c.Hostname))); err != nil {
		return err
	}
	if err := must("setdomainname", c.Domainname, unix.Setdomainname([]byte(c.Domainname))); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if !c.UserNS {
		// Real root: drop root's supplementary groups, which the nested
		// namespace could not drop later.
		if err := must("setgroups", "", unix.Setgroups(nil)); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		res int
		v   uint64
	}{{unix.RLIMIT_NOFILE, c.Limits.NoFile}, {unix.RLIMIT_NPROC, c.Limits.NProc}, {unix.RLIMIT_CORE, 0}} {
		if err := must("setrlimit", strconv.Itoa(l.res), unix.Setrlimit(l.res, &unix.Rlimit{Cur: l.v, Max: l.v})); err != nil {
			return err
		}
	}
	unix.Umask(0o022)
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return must("socket", "", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return must("ifreq", "lo", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return must("get flags", "lo", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	return must("bring up", "lo", unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr))
}

// lookPath finds name in the PATH of env, inside the new root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	p := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	for _, dir := range strings.Split(p, ":") {
		if dir == "" {
			dir = "."
		}
		f := path.Join(dir, name)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", errors.New("not found in PATH " + p)
}
