package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The modes a sandbox must work in, each giving the same results. Every
// test of a package whose TestMain calls RunInModes runs in each of them,
// not a hand-kept list.
const (
	ModeRoot = "root" // real root
	// ModeUser is an ordinary uid with unprivileged user namespaces and a
	// cgroup delegated to it, as a systemd user session or a rootless
	// container runtime gives.
	ModeUser = "user"
	// ModeUserNSRoot is uid 0 of a user namespace that maps only an
	// ordinary uid (unshare -r as that user), with no cgroup delegated: the
	// rlimit fallback.
	ModeUserNSRoot = "userns-root"
	// ModeRootUserNS is real root under unshare -r: uid 0 mapped to 0
	// alone, which is how reprotest and rootless runners start builds.
	ModeRootUserNS = "root-userns"
)

// TestUID is the ordinary user of ModeUser and ModeUserNSRoot: nobody,
// which every Debian system has.
const TestUID = 65534

// Mode returns the mode this test process runs in.
func Mode() string {
	if m := os.Getenv("CAIRN_TEST_MODE"); m != "" {
		return m
	}
	return ModeRoot
}

// RunInModes runs m, and when this is real root and not already a re-run,
// runs the same test binary with the same -test.run, -test.v, ... again in
// ModeUser, ModeUserNSRoot and ModeRootUserNS (or those named in
// CAIRN_TEST_MODES, comma-separated), prefixing their output with the mode.
// It returns the exit status for os.Exit. Without root it runs m alone.
func RunInModes(m *testing.M) int {
	if os.Getenv("CAIRN_TEST_MODE") != "" {
		// A re-run: wait until the parent has moved us into our cgroup.
		if os.Getenv("CAIRN_TEST_MODE_SYNC") == "1" {
			f := os.NewFile(3, "sync")
			io.Copy(io.Discard, f)
			f.Close()
		}
		return m.Run()
	}
	code := m.Run()
	if os.Geteuid() != 0 {
		return code
	}
	modes := []string{ModeUser, ModeUserNSRoot, ModeRootUserNS}
	if v, ok := os.LookupEnv("CAIRN_TEST_MODES"); ok {
		modes = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" && s != ModeRoot {
				modes = append(modes, s)
			}
		}
	}
	for _, mode := range modes {
		if err := runMode(mode); err != nil {
			fmt.Printf("--- FAIL: mode %s: %v\n", mode, err)
			code = 1
		} else {
			fmt.Printf("--- PASS: mode %s\n", mode)
		}
	}
	return code
}

// forwarded are the test flags a re-run takes over.
var forwarded = []string{"run", "skip", "v", "count", "short", "failfast", "timeout", "parallel", "cpu"}

func runMode(mode string) error {
	dir, err := os.MkdirTemp("", "cairn-test-"+mode+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	exe, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		return err
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return err
	}
	uid := TestUID
	if mode == ModeRootUserNS {
		uid = 0
	}
	if err := os.Chown(home, uid, uid); err != nil {
		return err
	}
	var args []string
	for _, a := range os.Args[1:] {
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		for _, f := range forwarded {
			if name == "test."+f {
				args = append(args, a)
			}
		}
	}
	var cmd *exec.Cmd
	switch mode {
	case ModeUser:
		cmd = exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	case ModeUserNSRoot, ModeRootUserNS:
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			return fmt.Errorf("unshare (util-linux) not on PATH: %w", err)
		}
		cmd = exec.Command(unshare, append([]string{"-r", "--", bin}, args...)...)
		if uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	cmd.Dir = home
	cmd.Env = []string{"CAIRN_TEST_MODE=" + mode, "TMPDIR=" + home, "HOME=" + home, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	for _, k := range []string{"CAIRN_TEST_STRICT", "CI", "CAIRN_TEST_NETWORK"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var cg []string
	var syncW *os.File
	if mode == ModeUser {
		cg, err = delegateCgroups(filepath.Base(dir), uid)
		if err != nil {
			return fmt.Errorf("delegate a cgroup to uid %d: %w", uid, err)
		}
		defer removeCgroups(cg)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		syncW = w
		cmd.ExtraFiles = []*os.File{r}
		cmd.Env = append(cmd.Env, "CAIRN_TEST_MODE_SYNC=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	if syncW != nil {
		for _, d := range cg {
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				cmd.Process.Kill()
			}
		}
		syncW.Close()
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fmt.Printf("[%s] %s\n", mode, sc.Text())
	}
	return cmd.Wait()
}

// delegateCgroups makes, under this process's cgroup in each hierarchy of
// the memory and pids controllers, a cgroup owned by uid, as systemd's
// Delegate=yes does.
func delegateCgroups(name string, uid int) ([]string, error) {
	v2Parents = nil
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var base string
		switch {
		case f[1] == "" && f[0] == "0":
			base = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(base); err != nil {
				base = "/sys/fs/cgroup"
			}
			ctl, _ := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
			if !strings.Contains(string(ctl), "memory") && !strings.Contains(string(ctl), "pids") {
				continue
			}
			// cgroup v2, as systemd delegates: a cgroup with the
			// controllers on for its children, the process in a leaf.
			// Under the top, which can enable them (it has no
			// processes of its own to forbid it).
			d := filepath.Join(base, "cairn-test-"+name)
			if err := os.Mkdir(d, 0o755); err != nil {
				return dirs, err
			}
			dirs = append(dirs, d)
			os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+memory +pids"), 0)
			if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
				return dirs, err
			}
			leaf := filepath.Join(d, "leaf")
			if err := os.Mkdir(leaf, 0o755); err != nil {
				return dirs, err
			}
			for _, x := range []string{d, leaf} {
				for _, p := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
					if err := os.Chown(filepath.Join(x, p), uid, uid); err != nil && !os.IsNotExist(err) {
						return dirs, err
					}
				}
			}
			// The process goes into the leaf; removeCgroups takes the
			// leaf first.
			dirs[len(dirs)-1] = leaf
			v2Parents = append(v2Parents, d)
			continue
		case f[1] == "memory" || f[1] == "pids":
			base = "/sys/fs/cgroup/" + f[1]
		default:
			continue
		}
		d := filepath.Join(base, f[2], "cairn-test-"+name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return dirs, err
		}
		dirs = append(dirs, d)
		for _, p := range []string{"", "cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads"} {
			if err := os.Chown(filepath.Join(d, p), uid, uid); err != nil && !os.IsNotExist(err) {
				return dirs, err
			}
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no memory or pids cgroup hierarchy")
	}
	return dirs, nil
}

// v2Parents are the delegated v2 cgroups whose leaf delegateCgroups returned.
var v2Parents []string

func removeCgroups(dirs []string) {
	defer func() { removeCgroups2(v2Parents) }()
	removeCgroups2(dirs)
}

func removeCgroups2(dirs []string) {
	for _, d := range dirs {
		subs, _ := os.ReadDir(d)
		for _, s := range subs {
			if s.IsDir() {
				os.Remove(filepath.Join(d, s.Name()))
			}
		}
		os.Remove(d)
	}
}
