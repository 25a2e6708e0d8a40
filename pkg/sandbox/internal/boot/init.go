package boot

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// Kernel interfaces syscall does not name. The numbers of mount_setattr and
// close_range are the same on every architecture (the unified table, 5.9+).
const (
	sysCloseRange       = 436
	sysMountSetattr     = 442
	sysMoveMount        = 429
	moveMountFEmptyPath = 0x4
	closeRangeCloexec   = 1 << 2
	atRecursive         = 0x8000
	mountAttrRdonly     = 0x1
	mountAttrNosuid     = 0x2
	mountAttrNodev      = 0x4
	mountAttrNoexec     = 0x8
	prSetDumpable       = 4
	prSetNoNewPrivs     = 38
	cloneNewCgroup      = 0x02000000
	iffUp, iffRunning   = 0x1, 0x40
	siocgifflags        = 0x8913
	siocsifflags        = 0x8914
	defaultPath         = "/usr/bin:/bin:/usr/sbin:/sbin"
	scratch             = "/tmp" // hidden under a tmpfs in the private mount namespace
	newRoot, oldRoot    = "/newroot", "/oldroot"
	buildHome           = "/homeless-shelter"
	setupFailureStatus  = 125
)

// CloneNewCgroup is CLONE_NEWCGROUP, for the sandbox package.
const CloneNewCgroup = cloneNewCgroup

// SetupError is a failed step of the init.
type SetupError struct {
	Step, Path string
	Err        error
}

func (e *SetupError) Error() string { return e.Step + " " + e.Path + ": " + e.Err.Error() }

func must(step, p string, err error) error {
	if err != nil {
		return &SetupError{Step: step, Path: p, Err: err}
	}
	return nil
}

// Main runs the init and returns its exit status.
func Main() int {
	// One thread for all of it: no_new_privs is per thread, and the
	// command's Pdeathsig is tied to the thread that forks it.
	runtime.LockOSThread()
	rep := os.NewFile(ReportFD, "report")
	fail := func(err error) int {
		r := Report{Failed: true, Step: "init", Msg: err.Error()}
		var se *SetupError
		if errors.As(err, &se) {
			r.Step, r.Path, r.Msg = se.Step, se.Path, se.Err.Error()
			err = se.Err
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			r.Errno = errno
		}
		rep.Write(r.Encode())
		return setupFailureStatus
	}
	// Everything the init makes (mount points, /etc) must not follow
	// cairn's umask: with 077 the command could not enter /src or /etc.
	syscall.Umask(0o022)
	cf := os.NewFile(ConfigFD, "config")
	data, err := io.ReadAll(cf)
	cf.Close()
	if err != nil {
		return fail(&SetupError{Step: "read config", Err: err})
	}
	c, err := Decode(data)
	if err != nil {
		return fail(&SetupError{Step: "read config", Err: err})
	}
	// Nothing the caller's caller left open without O_CLOEXEC reaches the
	// command: it gets 0, 1 and 2 only.
	if _, _, e := syscall.Syscall(sysCloseRange, 3, ^uintptr(0), closeRangeCloexec); e != 0 {
		return fail(&SetupError{Step: "close_range", Err: e})
	}
	// The command must not reach this binary through /proc/1/exe (runc
	// CVE-2019-5736); it is also in a less privileged user namespace.
	if err := prctl(prSetDumpable, 0); err != nil {
		return fail(&SetupError{Step: "prctl PR_SET_DUMPABLE", Err: err})
	}
	if err := buildRoot(c); err != nil {
		return fail(err)
	}
	if err := configure(c); err != nil {
		return fail(err)
	}
	argv0, err := lookPath(c.Args[0], c.Env)
	if err != nil {
		return fail(&SetupError{Step: "find command", Path: c.Args[0], Err: err})
	}
	if err := prctl(prSetNoNewPrivs, 1); err != nil {
		return fail(&SetupError{Step: "prctl PR_SET_NO_NEW_PRIVS", Err: err})
	}
	// A write past RLIMIT_FSIZE then fails with EFBIG, which tools report
	// with the file's name, instead of killing the writer with SIGXFSZ;
	// the command inherits the ignored signal across execve.
	signal.Ignore(syscall.SIGXFSZ)
	// Last, so that nothing above is filtered; the command inherits it.
	if err := installSeccomp(); err != nil {
		return fail(err)
	}
	sys := &syscall.SysProcAttr{
		// A nested user namespace: the mount namespace belongs to the
		// init's, where the command has no capability (and as a non-root
		// uid it holds none after execve, not even in its own). Any mount
		// namespace it makes is owned by a less privileged user namespace,
		// so the kernel locks the mounts copied into it.
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: c.BuildUID, HostID: c.OuterUID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: c.BuildGID, HostID: c.OuterGID, Size: 1}},
		// setgroups stays denied for the build uid; uid 0 of the nested
		// namespace may call it (daemons do before dropping ids), and can
		// only name the one gid mapped there.
		GidMappingsEnableSetgroups: c.BuildUID == 0 && !c.UserNS,
		Credential:                 &syscall.Credential{Uid: uint32(c.BuildUID), Gid: uint32(c.BuildGID), NoSetGroups: true},
		Setsid:                     !c.TTY,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if c.TTY {
		// The command's group takes the terminal, so ^C reaches it and
		// not the init.
		sys.Setpgid, sys.Foreground, sys.Ctty = true, true, 0
	}
	// RLIMIT_AS (the memory bound where no cgroup can be used) cannot be
	// the init's: the Go runtime's own reservations exceed it. So the
	// command starts traced, stops at its first instruction after execve,
	// gets the limit from here, and goes on untraced.
	sys.Ptrace = c.AddrSpace > 0
	pid, err := syscall.ForkExec(argv0, c.Args, &syscall.ProcAttr{Dir: c.Dir, Env: c.Env, Files: []uintptr{0, 1, 2}, Sys: sys})
	if err != nil {
		return fail(&SetupError{Step: "start command", Path: argv0, Err: err})
	}
	if sys.Ptrace {
		if err := limitAddrSpace(pid, c.AddrSpace); err != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			return fail(err)
		}
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fail(&SetupError{Step: "wait", Err: err})
		}
		if wpid != pid {
			continue // an orphan, reaped
		}
		var r Report
		switch {
		case ws.Exited():
			r.Exit = ws.ExitStatus()
		case ws.Signaled():
			r.Signal = int(ws.Signal())
			r.Exit = 128 + r.Signal
		default:
			continue
		}
		rep.Write(r.Encode())
		// Ending pid 1 ends the namespace: the kernel kills what is left.
		return r.Exit
	}
}

// limitAddrSpace waits for the traced command's stop after execve, sets its
// RLIMIT_AS and lets it go.
func limitAddrSpace(pid int, limit uint64) error {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, syscall.WALL, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return must("wait for the command's start", "", err)
		}
		break
	}
	if !ws.Stopped() {
		return must("wait for the command's start", "", syscall.ECHILD)
	}
	rl := syscall.Rlimit{Cur: limit, Max: limit}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_AS, uintptr(unsafe.Pointer(&rl)), 0, 0, 0); e != 0 {
		return must("setrlimit", "RLIMIT_AS", e)
	}
	return must("ptrace detach", "", syscall.PtraceDetach(pid))
}

func prctl(op, arg uintptr) error {
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, op, arg, 0, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

func bind(src, dst string) error {
	return must("bind "+src+" on", dst, syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""))
}

type mountAttr struct {
	set, clr, propagation, userns uint64
}

func setattr(p string, flags uintptr, attr uint64) error {
	b, err := syscall.BytePtrFromString(p)
	if err != nil {
		return must("mount_setattr", p, err)
	}
	a := mountAttr{set: attr}
	fdcwd := -100 // AT_FDCWD
	_, _, e := syscall.Syscall6(sysMountSetattr, uintptr(fdcwd), uintptr(unsafe.Pointer(b)), flags, uintptr(unsafe.Pointer(&a)), unsafe.Sizeof(a), 0)
	if e != 0 {
		return must("mount_setattr", p, e)
	}
	return nil
}

// moveMount attaches the detached mount at fd on dst.
func moveMount(fd int, dst string) error {
	empty, _ := syscall.BytePtrFromString("")
	to, err := syscall.BytePtrFromString(dst)
	if err != nil {
		return must("move_mount", dst, err)
	}
	fdcwd := -100 // AT_FDCWD
	_, _, e := syscall.Syscall6(sysMoveMount, uintptr(fd), uintptr(unsafe.Pointer(empty)), uintptr(fdcwd), uintptr(unsafe.Pointer(to)), moveMountFEmptyPath, 0)
	syscall.Close(fd)
	if e != 0 {
		return must("move_mount", dst, e)
	}
	return nil
}

// mkpoint makes an empty directory or file for a mount to land on.
func mkpoint(p string, dir bool) error {
	if i := lastIndexByte(p, '/'); i > 0 {
		if err := os.MkdirAll(p[:i], 0o755); err != nil {
			return must("mkdir", p[:i], err)
		}
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
// recreated, everything else bound; names in skip are left out.
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

func tmpfs(what, dst string, flags uintptr, opts string) error {
	return must("mount tmpfs", what, syscall.Mount("tmpfs", dst, "tmpfs", flags, opts))
}

// regularFiles reports whether dir holds each of files as a regular file.
func regularFiles(dir string, files [][2]string) bool {
	for _, f := range files {
		fi, err := os.Lstat(dir + "/" + f[0])
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// buildRoot assembles the sandbox's root and pivots into it.
func buildRoot(c *Config) error {
	steps := []func() error{
		func() error {
			return must("make / private", "/", syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""))
		},
		func() error {
			return tmpfs("scratch", scratch, syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=1m")
		},
		func() error { return must("chdir", scratch, syscall.Chdir(scratch)) },
		func() error { return must("mkdir", "newroot", syscall.Mkdir("newroot", 0o755)) },
		func() error { return must("mkdir", "oldroot", syscall.Mkdir("oldroot", 0o755)) },
		func() error { return must("pivot_root", scratch, syscall.PivotRoot(".", "oldroot")) },
		func() error { return must("chdir", "/", syscall.Chdir("/")) },
		func() error { return tmpfs("/", newRoot, syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=16m") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	host := func(p string) string { return oldRoot + p }
	var ro, rw []string

	// The root tree, less what the sandbox makes itself and what mounts shadow.
	skip := map[string]bool{"dev": true, "proc": true, "tmp": true, "sys": true, "etc": true}
	for _, m := range c.Mounts {
		top, _, _ := cut(m.Target[1:], "/")
		skip[top] = true
	}
	if err := layer(host(c.Root), newRoot, skip, &ro); err != nil {
		return err
	}
	// /etc: the root tree's, with passwd, group and hosts our own.
	uid, gid := strconv.Itoa(c.BuildUID), strconv.Itoa(c.BuildGID)
	hosts := "127.0.0.1 localhost\n::1 localhost\n"
	if c.Hostname != "localhost" {
		hosts += "127.0.0.1 " + c.Hostname + "\n"
	}
	etc := [][2]string{
		{"group", "root:x:0:\nbuilders:x:" + gid + ":builder\nnogroup:x:65534:\n"},
		{"hosts", hosts},
		{"passwd", "root:x:0:0:root:/root:/noshell\nbuilder:x:" + uid + ":" + gid + ":cairn build user:" + buildHome + ":/noshell\nnobody:x:65534:65534:nobody:/nonexistent:/noshell\n"},
	}
	rootEtc := host(c.Root) + "/etc"
	if fi, err := os.Lstat(rootEtc); err == nil && fi.IsDir() && regularFiles(rootEtc, etc) {
		// The usual case: one bind of the whole /etc (a distribution's has
		// a hundred entries), our three files bound over its own. They
		// live on the scratch tmpfs, which the binds keep alive.
		if err := mkpoint(newRoot+"/etc", true); err != nil {
			return err
		}
		if err := bind(rootEtc, newRoot+"/etc"); err != nil {
			return err
		}
		ro = append(ro, newRoot+"/etc")
		for _, f := range etc {
			if err := must("write", "/etc/"+f[0], os.WriteFile("/etc-"+f[0], []byte(f[1]), 0o644)); err != nil {
				return err
			}
			if err := bind("/etc-"+f[0], newRoot+"/etc/"+f[0]); err != nil {
				return err
			}
		}
	} else {
		// No /etc, or one without those files: a tmpfs /etc of the root
		// tree's entries and ours.
		if err := must("mkdir", "/etc", os.Mkdir(newRoot+"/etc", 0o755)); err != nil {
			return err
		}
		if fi != nil && fi.IsDir() {
			if err := layer(rootEtc, newRoot+"/etc", map[string]bool{"passwd": true, "group": true, "hosts": true}, &ro); err != nil {
				return err
			}
		}
		for _, f := range etc {
			if err := must("write", "/etc/"+f[0], os.WriteFile(newRoot+"/etc/"+f[0], []byte(f[1]), 0o644)); err != nil {
				return err
			}
		}
	}

	// /dev: the host's harmless nodes, links, a private devpts and shm.
	dev := newRoot + "/dev"
	if err := mkpoint(dev, true); err != nil {
		return err
	}
	if err := tmpfs("/dev", dev, syscall.MS_NOSUID|syscall.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
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
	if err := must("mount devpts", "/dev/pts", syscall.Mount("devpts", dev+"/pts", "devpts", syscall.MS_NOSUID|syscall.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")); err != nil {
		return err
	}
	if err := mkpoint(dev+"/shm", true); err != nil {
		return err
	}
	if err := tmpfs("/dev/shm", dev+"/shm", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777,size="+strconv.FormatInt(c.ShmSize, 10)); err != nil {
		return err
	}

	// /proc (while the host's is still visible, which the kernel requires
	// in a user namespace), /tmp.
	if err := mkpoint(newRoot+"/proc", true); err != nil {
		return err
	}
	if err := must("mount proc", "/proc", syscall.Mount("proc", newRoot+"/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "")); err != nil {
		return err
	}
	if err := mkpoint(newRoot+"/tmp", true); err != nil {
		return err
	}
	if err := tmpfs("/tmp", newRoot+"/tmp", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777,size="+strconv.FormatInt(c.TmpSize, 10)); err != nil {
		return err
	}

	// The caller's mounts, then a tmpfs working directory if none is given.
	haveDir := false
	for _, m := range c.Mounts {
		d := newRoot + m.Target
		if err := mkpoint(d, m.Dir); err != nil {
			return err
		}
		if m.FD > 0 {
			// Already made nosuid, nodev and idmapped by Run.
			if err := moveMount(m.FD, d); err != nil {
				return err
			}
		} else if err := bind(host(m.Source), d); err != nil {
			return err
		}
		switch {
		case m.FD > 0:
		case m.Writable:
			rw = append(rw, d)
		default:
			ro = append(ro, d)
		}
		if m.Target == c.Dir || hasPrefix(c.Dir, m.Target+"/") {
			haveDir = true
		}
	}
	if !haveDir {
		d := newRoot + c.Dir
		if err := mkpoint(d, true); err != nil {
			return err
		}
		opts := "mode=0755,uid=" + strconv.Itoa(c.OuterUID) + ",gid=" + strconv.Itoa(c.OuterGID) + ",size=" + strconv.FormatInt(c.TmpSize, 10)
		if err := tmpfs(c.Dir, d, syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
			return err
		}
	}
	for _, p := range ro {
		if err := setattr(p, atRecursive, mountAttrRdonly|mountAttrNosuid|mountAttrNodev); err != nil {
			return err
		}
	}
	for _, p := range rw {
		if err := setattr(p, atRecursive, mountAttrNosuid|mountAttrNodev); err != nil {
			return err
		}
	}

	// Leave the host behind, then make the root and /dev read-only.
	steps = []func() error{
		func() error { return must("detach", oldRoot, syscall.Unmount(oldRoot, syscall.MNT_DETACH)) },
		func() error { return must("chdir", newRoot, syscall.Chdir(newRoot)) },
		func() error { return must("pivot_root", newRoot, syscall.PivotRoot(".", ".")) },
		func() error { return must("detach", "the scratch root", syscall.Unmount(".", syscall.MNT_DETACH)) },
		func() error { return must("chdir", "/", syscall.Chdir("/")) },
		func() error { return setattr("/", 0, mountAttrRdonly|mountAttrNosuid|mountAttrNodev) },
		func() error { return setattr("/dev", 0, mountAttrRdonly|mountAttrNosuid|mountAttrNoexec) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// configure sets what the command inherits from the init.
func configure(c *Config) error {
	if err := must("sethostname", c.Hostname, syscall.Sethostname([]byte(c.Hostname))); err != nil {
		return err
	}
	if err := must("setdomainname", c.Domainname, syscall.Setdomainname([]byte(c.Domainname))); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if err := lowPortsForAll(); err != nil {
		return err
	}
	if !c.UserNS {
		// Real root: drop root's supplementary groups, which the nested
		// namespace could not drop later.
		if err := must("setgroups", "", syscall.Setgroups(nil)); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		name string
		res  int
		v    uint64
	}{{"RLIMIT_NOFILE", syscall.RLIMIT_NOFILE, c.NoFile}, {"RLIMIT_NPROC", 6, c.NProc}, {"RLIMIT_CORE", syscall.RLIMIT_CORE, 0},
		{"RLIMIT_FSIZE", syscall.RLIMIT_FSIZE, c.FileSize}} {
		if l.v == 0 && l.res == syscall.RLIMIT_FSIZE {
			continue // unlimited
		}
		if err := must("setrlimit", l.name, syscall.Setrlimit(l.res, &syscall.Rlimit{Cur: l.v, Max: l.v})); err != nil {
			return err
		}
	}
	syscall.Umask(0o022)
	return nil
}

// ifreq is struct ifreq as SIOC[GS]IFFLAGS use it.
type ifreq struct {
	name  [16]byte
	flags uint16
	_     [22]byte
}

// lowPortsForAll lets any uid bind ports below 1024 in the sandbox's network
// namespace: binding them needs CAP_NET_BIND_SERVICE over that namespace,
// which the command never holds, and in a namespace with only lo a low port
// is nobody else's. A DNS server on port 53 is the case in point.
func lowPortsForAll() error {
	const knob = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	fd, err := syscall.Open(knob, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return must("open", knob, err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.Write(fd, []byte("0\n")); err != nil {
		return must("write", knob, err)
	}
	return nil
}

func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return must("socket", "", err)
	}
	defer syscall.Close(fd)
	var ifr ifreq
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), siocgifflags, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return must("get flags of", "lo", e)
	}
	ifr.flags |= iffUp | iffRunning
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), siocsifflags, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return must("bring up", "lo", e)
	}
	return nil
}

// lookPath finds name in the PATH of env, inside the new root.
func lookPath(name string, env []string) (string, error) {
	if contains(name, "/") {
		return name, nil
	}
	p := defaultPath
	for _, kv := range env {
		if v, ok := cutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	for _, dir := range split(p, ":") {
		if dir == "" {
			dir = "."
		}
		f := dir + "/" + name
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", errors.New("not found in PATH " + p)
}
