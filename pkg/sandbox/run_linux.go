package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/cairn-build/cairn/pkg/sandbox/internal/boot"
	"golang.org/x/sys/unix"
)

// Run runs s.Args in a fresh sandbox and returns how it ended. The error is
// non-nil only when the sandbox could not be made (an *InputError,
// *SpecError, *NamespaceError or *SetupError) or ctx was cancelled
// (ctx.Err(), with a partial Result); a command that fails, is killed or
// times out is reported in Result. When Run returns, every process of the
// sandbox is gone.
func Run(ctx context.Context, s Spec) (Result, error) {
	hostID := s.HostID
	if hostID == 0 {
		hostID = DefaultHostID
	}
	root := realRoot(hostID)
	c, err := s.prepare(root)
	if err != nil {
		return Result{}, err
	}
	cgh := cgroups()
	if cgh.memory == nil {
		c.AddrSpace = uint64(s.Limits.Memory)
	}
	if cgh.pids != nil {
		// The cgroup is the bound, and names itself when hit; RLIMIT_NPROC,
		// counted per user along the chain of user namespaces, stays as
		// a looser second one.
		c.NProc = 2*s.Limits.Pids + 64
	}
	var extra []*os.File
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	if root {
		// The command is hostID on the host: it sees the writable mounts
		// through an idmapping, the caller's ids shown as its own.
		var nsfd int
		for i := range c.Mounts {
			m := &c.Mounts[i]
			if !m.Writable {
				continue
			}
			if nsfd == 0 {
				if nsfd, err = idmapUserNS(idmapKey{os.Geteuid(), os.Getegid(), hostID}); err != nil {
					return Result{}, &SetupError{Step: "idmap", Err: err}
				}
			}
			f, err := idmappedMount(m.Source, nsfd)
			if err != nil {
				return Result{}, &InputError{What: "mount " + m.Target, Path: m.Source, Err: err}
			}
			m.FD = firstExtraFD + len(extra)
			extra = append(extra, f)
		}
	}
	sc, err := newStepCgroup(cgh, s.Limits.Memory, s.Limits.Pids)
	if err != nil {
		return Result{}, err
	}
	defer sc.remove()

	var lim *headTail
	if !s.TTY && s.Output != nil {
		lim = newHeadTail(s.Output, s.Limits.LogSize)
		s.Output = lim
	}
	res, err := start(ctx, &s, c, extra, sc)
	if lim != nil {
		res.LogCut, _ = lim.Close()
	}
	if err != nil {
		return res, err
	}
	switch {
	case sc.oomKills() > 0:
		res.Limit = "memory"
		res.LimitMsg = fmt.Sprintf("went over its memory limit of %s: the kernel's OOM killer killed it (%s)", FormatSize(s.Limits.Memory), res.plain())
	case !res.Success() && sc.pidsRefused() > 0:
		res.Limit = "pids"
		res.LimitMsg = fmt.Sprintf("%s after the process limit of %d refused %d forks", res.plain(), s.Limits.Pids, sc.pidsRefused())
	}
	if res.Limit == "" {
		for _, m := range c.Mounts {
			if !m.Writable || !m.Dir {
				continue
			}
			n, err := apparentSize(m.Source)
			if err != nil {
				return res, fmt.Errorf("sandbox: size of %s (%s): %w", m.Target, m.Source, err)
			}
			if n > s.Limits.OutputSize {
				res.Limit = "output-size"
				res.LimitMsg = fmt.Sprintf("%s holds %d bytes (apparent size), over the output size limit of %s", m.Target, n, FormatSize(s.Limits.OutputSize))
				break
			}
		}
	}
	return res, nil
}

// firstExtraFD is where the descriptors after the config and report pipes
// start in the init.
const firstExtraFD = 5

func start(ctx context.Context, s *Spec, c *boot.Config, extra []*os.File, sc *stepCgroup) (Result, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return Result{}, err
	}
	defer cfgR.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		cfgW.Close()
		return Result{}, err
	}
	defer repR.Close()

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{boot.InitArg0},
		Env:        []string{},
		Dir:        "/",
		ExtraFiles: append([]*os.File{cfgR, repW}, extra...),
		Stdin:      s.Stdin,
		Stdout:     s.Output,
		Stderr:     s.Output,
		WaitDelay:  time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags(c.UserNS),
			Pdeathsig:  syscall.SIGKILL,
			Setsid:     !s.TTY,
		},
	}
	if c.UserNS {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	var tty int = -1
	if s.TTY {
		tty = int(s.Stdin.(*os.File).Fd())
		// The init stays in the session but in a group of its own; it
		// hands the terminal's foreground to the command.
		cmd.SysProcAttr.Setpgid = true
	}

	// Pdeathsig fires when the creating thread exits: hold it until the
	// init is reaped.
	// A configuration that fits in the pipe goes in before Start, so the
	// init need not wait for this goroutine to be scheduled.
	cfg := c.Encode()
	if _, err := cfgW.Write(cfg[:min(len(cfg), pipeSize)]); err != nil {
		cfgW.Close()
		repW.Close()
		return Result{}, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		cfgW.Close()
		repW.Close()
		return Result{}, startError(c.UserNS, err)
	}
	repW.Close()
	if sc != nil {
		// Into the step's cgroups before the init reads the end of its
		// configuration, so before it starts the command.
		if err := sc.join(cmd.Process.Pid); err != nil {
			cfgW.Close()
			cmd.Process.Kill()
			cmd.Wait()
			return Result{}, err
		}
	}
	if len(cfg) <= pipeSize {
		cfgW.Close() // written before Start: the init reads it at once
	} else {
		go func() {
			cfgW.Write(cfg[pipeSize:])
			cfgW.Close()
		}()
	}
	reports := make(chan []boot.Report, 1)
	go func() {
		data, _ := io.ReadAll(io.LimitReader(repR, 1<<20))
		reports <- boot.DecodeReports(data)
	}()

	var timeout <-chan time.Time
	if s.Timeout > 0 {
		tm := time.NewTimer(s.Timeout)
		defer tm.Stop()
		timeout = tm.C
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var res Result
	var ctxErr error
	select {
	case <-waited:
	case <-timeout:
		cmd.Process.Kill()
		<-waited
		res.TimedOut, res.Timeout = true, s.Timeout
	case <-ctx.Done():
		cmd.Process.Kill()
		<-waited
		ctxErr = ctx.Err()
	}
	res.Elapsed = time.Since(t0)
	if tty >= 0 {
		restoreForeground(tty)
	}
	rs := <-reports
	res.ExitCode = -1
	for _, r := range rs {
		if r.Failed {
			var err error = errors.New(r.Msg)
			if r.Errno != 0 {
				err = r.Errno
			}
			return res, &SetupError{Step: r.Step, Path: r.Path, Err: err}
		}
		if !res.TimedOut && ctxErr == nil {
			res.ExitCode = r.Exit
			if r.Signal != 0 {
				res.ExitCode, res.Signal = -1, syscall.Signal(r.Signal)
			}
		}
	}
	if ctxErr != nil {
		return res, ctxErr
	}
	if !res.TimedOut && res.ExitCode == -1 && res.Signal == 0 {
		// The init died without a word: killed from outside.
		st, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if st.Signaled() {
			res.Signal = st.Signal()
		}
		return res, &SetupError{Step: "init", Err: fmt.Errorf("sandbox init ended without a status (%v)", cmd.ProcessState)}
	}
	return res, nil
}

// pipeSize is what a pipe holds without a reader (Linux's default is 64 KiB).
const pipeSize = 60 << 10

func cloneFlags(userns bool) uintptr {
	f := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
		syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | boot.CloneNewCgroup)
	if userns {
		f |= syscall.CLONE_NEWUSER
	}
	return f
}

var namespaces = []struct {
	name string
	flag uintptr
}{
	{"user", syscall.CLONE_NEWUSER}, {"mount", syscall.CLONE_NEWNS}, {"pid", syscall.CLONE_NEWPID},
	{"network", syscall.CLONE_NEWNET}, {"uts", syscall.CLONE_NEWUTS}, {"ipc", syscall.CLONE_NEWIPC},
	{"cgroup", boot.CloneNewCgroup},
}

// startError turns a failed clone into a NamespaceError naming the
// namespace the kernel refused, found by trying them one at a time.
func startError(userns bool, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) || (errno != syscall.EPERM && errno != syscall.EINVAL && errno != syscall.ENOSPC && errno != syscall.EACCES) {
		return fmt.Errorf("sandbox: start init: %w", err)
	}
	for _, ns := range namespaces {
		if ns.flag == syscall.CLONE_NEWUSER && !userns {
			continue
		}
		sys := &syscall.SysProcAttr{Cloneflags: ns.flag}
		if userns && ns.flag != syscall.CLONE_NEWUSER {
			sys.Cloneflags |= syscall.CLONE_NEWUSER
		}
		p := exec.Command("/proc/self/exe")
		p.Args = []string{boot.ProbeArg0}
		p.Env = []string{}
		p.SysProcAttr = sys
		if perr := p.Run(); perr != nil {
			return &NamespaceError{Namespace: ns.name, Err: err}
		}
	}
	return &NamespaceError{Err: err}
}

// restoreForeground gives the terminal back to cairn's process group.
func restoreForeground(fd int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp())
}
