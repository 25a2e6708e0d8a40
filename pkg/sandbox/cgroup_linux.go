package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-build/cairn/internal/mountinfo"
)

// A step's memory and process count are bounded by a cgroup of its own,
// made under the cgroup cairn runs in (so a limit of the caller's own, a
// systemd slice or a CI job, still holds around it): cgroup v2 where the
// unified hierarchy has the controller, else the v1 hierarchy of that
// controller. Where neither can be written (no delegation to this user, a
// read-only cgroupfs, a nested container), Notice says so and the step is
// bounded per process by rlimits instead (RLIMIT_AS, RLIMIT_NPROC).

// controller is where one controller can be used: our own cgroup's
// directory in the hierarchy that has it.
type controller struct {
	name string // "memory" or "pids"
	dir  string
	v2   bool
}

type cgroupHost struct {
	memory, pids *controller
	why          []string // why a controller cannot be used
}

var (
	cgroupOnce sync.Once
	cgroupInfo cgroupHost
	cgroupSeq  atomic.Int64
	// noCgroups makes every run take the rlimit fallback (tests).
	noCgroups bool
)

func cgroups() *cgroupHost {
	cgroupOnce.Do(func() { cgroupInfo = probeCgroups() })
	if noCgroups {
		return &cgroupHost{why: []string{"cgroups turned off for a test"}}
	}
	return &cgroupInfo
}

// Notice is empty when every step gets its own cgroup for memory and
// processes; otherwise it says, once for the caller to show, what cannot be
// used, why, how the steps are bounded instead and what would fix it.
func Notice() string {
	h := cgroups()
	if h.memory != nil && h.pids != nil {
		return ""
	}
	msg := "sandbox: cgroups cannot be used here (" + strings.Join(h.why, "; ") + ")"
	if h.memory == nil {
		msg += "; memory is bounded per process (RLIMIT_AS), not per step, and an overrun shows as a failed allocation, not as OOM"
	}
	if h.pids == nil {
		msg += "; processes are bounded by RLIMIT_NPROC only"
	}
	return msg + ". To fix: run cairn as root, or in a cgroup delegated to this user (systemd-run --user --scope -p Delegate=yes, or a container runtime's delegated cgroup)."
}

type mountInfo struct {
	root, point, fstype, super string
}

func readMounts() []mountInfo {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var ms []mountInfo
	for _, l := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		ms = append(ms, mountInfo{root: mountinfo.Unescape(a[3]), point: mountinfo.Unescape(a[4]), fstype: b[0], super: b[2]})
	}
	return ms
}

// under joins a cgroup path to the mount that shows the hierarchy.
func under(m mountInfo, cg string) (string, bool) {
	rel := cg
	if m.root != "/" {
		r, ok := strings.CutPrefix(cg, m.root)
		if !ok || (r != "" && !strings.HasPrefix(r, "/")) {
			return "", false
		}
		rel = r
	}
	return filepath.Join(m.point, rel), true
}

func probeCgroups() cgroupHost {
	var h cgroupHost
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		h.why = append(h.why, "/proc/self/cgroup: "+err.Error())
		return h
	}
	v1 := map[string]string{} // controller -> path
	v2 := ""
	hasV2 := false
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			v2, hasV2 = f[2], true
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			v1[c] = f[2]
		}
	}
	mounts := readMounts()
	for _, name := range []string{"memory", "pids"} {
		c, why := findController(name, mounts, v1, v2, hasV2)
		if c == nil {
			h.why = append(h.why, name+": "+why)
		}
		if name == "memory" {
			h.memory = c
		} else {
			h.pids = c
		}
	}
	return h
}

// removeStale removes the empty cgroups of cairn processes that no longer
// exist: a cairn killed with SIGKILL cannot remove its own.
func removeStale(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "cairn-")
		if !ok || !e.IsDir() {
			continue
		}
		rest = strings.TrimPrefix(rest, "probe-")
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.Remove(filepath.Join(dir, e.Name())) // fails, harmlessly, while in use
		}
	}
}

func findController(name string, mounts []mountInfo, v1 map[string]string, v2 string, hasV2 bool) (*controller, string) {
	var whys []string
	if hasV2 {
		for _, m := range mounts {
			if m.fstype != "cgroup2" {
				continue
			}
			dir, ok := under(m, v2)
			if !ok {
				continue
			}
			ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
			if err != nil || !hasWord(string(ctl), name) {
				whys = append(whys, "cgroup v2 at "+dir+" lacks the controller")
				break
			}
			sub, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
			if !hasWord(string(sub), name) {
				// Possible only where this cgroup has no processes of its
				// own (the "no internal processes" rule) or is the root.
				if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+name), 0); err != nil {
					// Root in a cgroup with other processes (a login
					// scope): a cgroup of cairn's own at the top, empty
					// of processes, holds the steps instead.
					// Else the parent, where it is ours and has the
					// controller for its children (a delegated cgroup
					// with cairn in a leaf of it, as rootless runtimes
					// set it up): the steps are cairn's siblings.
					// Else, as root, a cgroup of cairn's own at the top,
					// empty of processes.
					parent := filepath.Dir(dir)
					psub, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
					if parent != m.point && hasWord(string(psub), name) && tryChild(&controller{name: name, dir: parent, v2: true}) == nil {
						dir = parent
					} else if top, terr := topCgroup(m.point, name); terr == nil {
						dir = top
					} else {
						whys = append(whys, "cgroup v2 at "+dir+": cannot enable "+name+" for children: "+errText(err)+"; nor use its parent or the top: "+errText(terr))
						break
					}
				}
			}
			c := &controller{name: name, dir: dir, v2: true}
			if err := tryChild(c); err != nil {
				whys = append(whys, err.Error())
				break
			}
			return c, ""
		}
	}
	if p, ok := v1[name]; ok {
		for _, m := range mounts {
			if m.fstype != "cgroup" || !hasWord(strings.ReplaceAll(m.super, ",", " "), name) {
				continue
			}
			dir, ok := under(m, p)
			if !ok {
				continue
			}
			c := &controller{name: name, dir: dir}
			if err := tryChild(c); err != nil {
				whys = append(whys, err.Error())
				break
			}
			return c, ""
		}
	}
	if len(whys) == 0 {
		whys = append(whys, "no cgroup hierarchy with the controller is mounted")
	}
	return nil, strings.Join(whys, ", ")
}

// topCgroup makes (or reuses) cairn-sandbox at the top of the cgroup2
// hierarchy at point, with the controller enabled for its children.
func topCgroup(point, name string) (string, error) {
	if err := os.WriteFile(filepath.Join(point, "cgroup.subtree_control"), []byte("+"+name), 0); err != nil {
		return "", err
	}
	top := filepath.Join(point, "cairn-sandbox")
	if err := os.Mkdir(top, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(top, "cgroup.subtree_control"), []byte("+"+name), 0); err != nil {
		return "", err
	}
	return top, nil
}

// tryChild checks that a child cgroup with the controller's files can be
// made here.
func tryChild(c *controller) error {
	d := filepath.Join(c.dir, fmt.Sprintf("cairn-probe-%d", os.Getpid()))
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cannot make a cgroup in %s: %s", c.dir, errText(err))
	}
	defer os.Remove(d)
	want := []string{"pids.max"}
	if c.name == "memory" {
		want = []string{"memory.max", "memory.limit_in_bytes"}
	}
	if !exists(d, want...) {
		return fmt.Errorf("a cgroup in %s has no %s files", c.dir, c.name)
	}
	return nil
}

func exists(dir string, names ...string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// stepCgroup is the cgroups of one run: one directory per hierarchy.
type stepCgroup struct {
	memDir, pidsDir string
	memV2, pidsV2   bool
	dirs            []string
}

// newStepCgroup makes the run's cgroups and sets the limits; nil when the
// host offers none (the init then sets rlimits).
func newStepCgroup(h *cgroupHost, memory int64, pids uint64) (*stepCgroup, error) {
	if h.memory == nil && h.pids == nil {
		return nil, nil
	}
	for _, c := range []*controller{h.memory, h.pids} {
		if c != nil {
			removeStale(c.dir)
		}
	}
	name := fmt.Sprintf("cairn-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	sc := &stepCgroup{}
	mk := func(c *controller) (string, error) {
		d := filepath.Join(c.dir, name)
		for _, x := range sc.dirs {
			if x == d {
				return d, nil
			}
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
		sc.dirs = append(sc.dirs, d)
		return d, nil
	}
	write := func(dir, file, v string) error {
		return os.WriteFile(filepath.Join(dir, file), []byte(v), 0)
	}
	fail := func(err error) (*stepCgroup, error) {
		sc.remove()
		return nil, fmt.Errorf("sandbox cgroup: %w", err)
	}
	if c := h.memory; c != nil {
		d, err := mk(c)
		if err != nil {
			return fail(err)
		}
		sc.memDir, sc.memV2 = d, c.v2
		n := strconv.FormatInt(memory, 10)
		if c.v2 {
			if err := write(d, "memory.max", n); err != nil {
				return fail(err)
			}
			if exists(d, "memory.swap.max") {
				if err := write(d, "memory.swap.max", "0"); err != nil {
					return fail(err)
				}
			}
			// One process over the limit ends the whole step.
			_ = write(d, "memory.oom.group", "1")
		} else {
			if err := write(d, "memory.limit_in_bytes", n); err != nil {
				return fail(err)
			}
			if exists(d, "memory.memsw.limit_in_bytes") {
				if err := write(d, "memory.memsw.limit_in_bytes", n); err != nil {
					return fail(err)
				}
			} else {
				_ = write(d, "memory.swappiness", "0")
			}
		}
	}
	if c := h.pids; c != nil {
		d, err := mk(c)
		if err != nil {
			return fail(err)
		}
		sc.pidsDir, sc.pidsV2 = d, c.v2
		if err := write(d, "pids.max", strconv.FormatUint(pids, 10)); err != nil {
			return fail(err)
		}
	}
	return sc, nil
}

// join moves process pid (the init, before it starts the command) into
// every cgroup of the run.
func (sc *stepCgroup) join(pid int) error {
	for _, d := range sc.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("sandbox cgroup: join %s: %w", d, err)
		}
	}
	return nil
}

// counter reads "key N" from a flat-keyed cgroup file.
func counter(file, key string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// oomKills is how many processes the kernel killed for the memory limit.
func (sc *stepCgroup) oomKills() int64 {
	if sc == nil || sc.memDir == "" {
		return 0
	}
	if sc.memV2 {
		return counter(filepath.Join(sc.memDir, "memory.events"), "oom_kill")
	}
	return counter(filepath.Join(sc.memDir, "memory.oom_control"), "oom_kill")
}

// pidsRefused is how many forks the pids limit refused.
func (sc *stepCgroup) pidsRefused() int64 {
	if sc == nil || sc.pidsDir == "" {
		return 0
	}
	return counter(filepath.Join(sc.pidsDir, "pids.events"), "max")
}

// remove deletes the run's cgroups once their processes are gone (the
// kernel may take a moment to let go of the last one).
func (sc *stepCgroup) remove() {
	if sc == nil {
		return
	}
	for _, d := range sc.dirs {
		for i := 0; i < 100; i++ {
			if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
