package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/sandbox"
)

// TestMode checks that each test mode takes the path it should.
func TestMode(t *testing.T) {
	want := map[string]string{
		testenv.ModeRoot: "root", testenv.ModeUser: "user",
		testenv.ModeUserNSRoot: "userns-root", testenv.ModeRootUserNS: "userns-root",
	}[testenv.Mode()]
	if os.Geteuid() != 0 && testenv.Mode() == testenv.ModeRoot {
		want = "user" // go test run by an ordinary user
	}
	if got := sandbox.Mode(); got != want {
		t.Errorf("sandbox.Mode() in test mode %s: got %q, want %q", testenv.Mode(), got, want)
	}
	// Where this harness delegates a cgroup (or is root), cairn must use it.
	n := sandbox.Notice()
	switch testenv.Mode() {
	case testenv.ModeRoot, testenv.ModeUser:
		if os.Geteuid() == 0 || testenv.Mode() == testenv.ModeUser {
			if n != "" {
				t.Errorf("cgroups should be usable in mode %s: %s", testenv.Mode(), n)
			}
		}
	case testenv.ModeUserNSRoot:
		if !strings.Contains(n, "cannot be used") || !strings.Contains(n, "RLIMIT_AS") {
			t.Errorf("mode %s has no delegated cgroup: want a notice naming the fallback, got %q", testenv.Mode(), n)
		}
	default:
		// Root under unshare -r still owns the host's cgroupfs (uid 0 is
		// mapped): cgroups where it is writable, the fallback where not.
		t.Logf("mode %s: notice %q", testenv.Mode(), n)
	}
}

// memHog doubles a string until it holds 512 MiB.
const memHog = `mawk 'BEGIN { s = "x"; for (i = 0; i < 29; i++) s = s s; print length(s) }'`

func TestMemoryLimit(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", memHog)
	s.Limits.Memory = 64 << 20
	res, out := run(t, s)
	if res.Success() || strings.Contains(out, "536870912") {
		t.Fatalf("a 512 MiB string under a 64 MiB limit: got %v and %q, want a failure", res, out)
	}
	if sandbox.Notice() == "" {
		if res.Limit != "memory" || !strings.Contains(res.String(), "OOM killer") || !strings.Contains(res.String(), "64MiB") {
			t.Errorf("got %+v (%v), want the memory limit named, with OOM", res, res)
		}
	} else if res.Limit != "" {
		t.Errorf("without cgroups the limit cannot be told apart from a failed allocation; got %+v", res)
	}
	// The same command within its limit.
	s.Limits.Memory = 0
	s.Args = []string{"/bin/sh", "-c", strings.Replace(memHog, "29", "20", 1)}
	if res, out := run(t, s); !res.Success() || out != "1048576\n" {
		t.Errorf("1 MiB string under the default limit: got %v and %q", res, out)
	}
}

func TestMemoryFallback(t *testing.T) {
	needSandbox(t)
	sandbox.SetNoCgroups(true)
	defer sandbox.SetNoCgroups(false)
	if !strings.Contains(sandbox.Notice(), "RLIMIT_AS") {
		t.Errorf("Notice without cgroups: got %q, want the fallback named", sandbox.Notice())
	}
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", memHog)
	s.Limits.Memory = 64 << 20
	res, out := run(t, s)
	if res.Success() || strings.Contains(out, "536870912") {
		t.Errorf("RLIMIT_AS of 64 MiB: got %v and %q, want a failed allocation", res, out)
	}
}

func TestPidsLimit(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", "i=0; while [ $i -lt 300 ]; do sleep 100 & i=$((i+1)); done; echo spawned $i")
	s.Limits.Pids = 40
	res, out := run(t, s)
	if res.Success() || strings.Contains(out, "spawned 300") {
		t.Fatalf("got %v and %q, want the fork loop stopped", res, out)
	}
	if sandbox.Notice() == "" && (res.Limit != "pids" || !strings.Contains(res.String(), "process limit of 40")) {
		t.Errorf("got %+v (%v), want the pids limit named", res, res)
	}
}

func TestOutputSize(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	// One sparse file past the limit: RLIMIT_FSIZE refuses it at once.
	s := f.spec("/bin/sh", "-c", "truncate -s 2G /out/big")
	res, out := run(t, s)
	if res.Success() || !strings.Contains(out, "File too large") {
		t.Errorf("a 2 GiB sparse file under the default output size: got %v and %q, want File too large", res, out)
	}
	if fi, err := os.Stat(filepath.Join(f.out, "big")); err == nil && fi.Size() > sandbox.DefaultOutputSize {
		t.Errorf("/out/big is %d bytes", fi.Size())
	}
	os.Remove(filepath.Join(f.out, "big"))
	// Several sparse files, each within the limit, together past it.
	s = f.spec("/bin/sh", "-c", "for i in 1 2 3; do truncate -s 6M /out/f$i; done")
	s.Limits.OutputSize = 10 << 20
	res, _ = run(t, s)
	if res.Success() || res.Limit != "output-size" || !strings.Contains(res.String(), "/out holds 18874368 bytes") {
		t.Errorf("three 6 MiB sparse files under 10 MiB: got %+v (%v), want the output size named", res, res)
	}
}

func TestLogSize(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", "echo first; head -c 1073741824 /dev/zero; echo; echo last")
	s.Limits.LogSize = 1 << 20
	s.Timeout = 5 * time.Minute
	var out bytes.Buffer
	s.Output = &out
	res, err := sandbox.Run(context.Background(), s)
	if err != nil || !res.Success() {
		t.Fatalf("got %v, %v", res, err)
	}
	b := out.Bytes()
	if len(b) > 1<<20+200 || !bytes.HasPrefix(b, []byte("first\n")) || !bytes.HasSuffix(b, []byte("\nlast\n")) {
		t.Errorf("a 1 GiB log under a 1 MiB limit: got %d bytes, head %q, tail %q", len(b), b[:min(len(b), 10)], b[max(0, len(b)-10):])
	}
	if want := int64(1<<30+12) - 1<<20; res.LogCut != want || !bytes.Contains(b, []byte(fmt.Sprintf("%d bytes cut here", want))) {
		t.Errorf("LogCut: got %d, want %d and a line saying so", res.LogCut, want)
	}
}

// TestSetIDRefused: setuid, setgid and file capabilities cannot be made.
func TestSetIDRefused(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	rows := []struct {
		name, script, want string
		asRoot             bool
	}{
		{"chmod u+s", "touch /out/f && chmod u+s /out/f", "/out/f", false},
		{"chmod g+s on a directory", "mkdir /out/d && chmod g+s /out/d", "/out/d", false},
		{"chmod 4755 in /tmp", "touch /tmp/f && chmod 4755 /tmp/f", "/tmp/f", false},
		{"install -m 4755", "install -m 4755 /usr/bin/true /out/t", "/out/t", false},
		{"mkdir -m 2755", "mkdir -m 2755 /out/m", "/out/m", false},
		// As uid 0 of its namespace, which holds CAP_SETFCAP there.
		{"a file capability", "touch /out/c && setcap cap_net_raw=ep /out/c", "Operation not supported", true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := f.spec("/bin/sh", "-c", r.script)
			s.AsRoot = r.asRoot
			res, out := run(t, s)
			if res.Success() || !strings.Contains(out, r.want) {
				t.Errorf("got %v and %q, want a failure naming %s", res, out, r.want)
			}
		})
	}
	filepath.Walk(f.out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
		return nil
	})
	// What a build needs still works.
	res, out := run(t, f.spec("/bin/sh", "-c", "touch /out/x && chmod 755 /out/x && chmod u-s,g-s /out/x && mkdir -m 700 /out/p && stat -c %a /out/x /out/p"))
	if !res.Success() || out != "755\n700\n" {
		t.Errorf("plain chmod: got %v and %q", res, out)
	}
}

// TestSeccompDenies: calls a build never needs fail.
func TestSeccompDenies(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	res, out := run(t, f.spec("/bin/sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\\t ' ' '"))
	if !res.Success() || out != "NoNewPrivs: 1\nSeccomp: 2\n" {
		t.Errorf("got %v and %q, want seccomp mode 2", res, out)
	}
	if _, err := exec.LookPath("keyctl"); err == nil {
		res, out := run(t, f.spec("/bin/sh", "-c", "keyctl show"))
		if res.Success() {
			t.Errorf("keyctl: got %v and %q, want a failure", res, out)
		}
	}
}

// treeState records mode, owner and capability of every entry under dir.
func treeState(t testing.TB, dir string) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		s := fi.Sys().(*syscall.Stat_t)
		buf := make([]byte, 64)
		n, _ := syscall.Getxattr(p, "security.capability", buf)
		st[p] = fmt.Sprintf("%v %d:%d cap=%x", fi.Mode(), s.Uid, s.Gid, buf[:max(n, 0)])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// userTree makes a tree as a user has it: a setuid and a setgid file, a
// setgid directory, and (as root) a file with a capability.
func userTree(t testing.TB) (string, map[string]string) {
	t.Helper()
	d := t.TempDir()
	for _, p := range []struct {
		name string
		mode os.FileMode
	}{{"suid", 0o755 | os.ModeSetuid}, {"sgid", 0o2644}, {"sub/file", 0o600}, {"cap", 0o755}} {
		full := filepath.Join(d, p.name)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(p.name), 0o644); err != nil {
			t.Fatal(err)
		}
		m := p.mode
		if m == 0o2644 {
			m = 0o644 | os.ModeSetgid
		}
		if err := os.Chmod(full, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(d, "sub"), 0o755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if testenv.Mode() == testenv.ModeRoot {
		setcap := testenv.NeedTool(t, "setcap")
		if out, err := exec.Command(setcap, "cap_net_raw=ep", filepath.Join(d, "cap")).CombinedOutput(); err != nil {
			t.Fatalf("setcap: %v %s", err, out)
		}
	} else {
		t.Log("not real root: no file capability in the tree (setting one needs CAP_SETFCAP)")
	}
	return d, treeState(t, d)
}

func sameState(t testing.TB, dir string, before map[string]string, added ...string) {
	t.Helper()
	after := treeState(t, dir)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s: was %s, now %s", p, s, after[p])
		}
	}
	for _, a := range added {
		s, ok := after[filepath.Join(dir, a)]
		want := fmt.Sprintf("%d:%d", os.Geteuid(), os.Getegid())
		if !ok || !strings.Contains(s, " "+want+" ") {
			t.Errorf("%s written by the command: got %q, want owner %s", a, s, want)
		}
	}
}

// TestRWKeepsTree: a writable mount over a user's tree changes nothing the
// command does not change, and what it writes belongs to the caller.
func TestRWKeepsTree(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	d, before := userTree(t)
	if testenv.Mode() == testenv.ModeRoot && !strings.Contains(before[filepath.Join(d, "cap")], "cap=01") {
		t.Fatalf("the capability did not stick: %v", before)
	}
	s := f.spec("/bin/sh", "-c", "id -u; stat -c '%u %a' /out/suid /out/sub; echo new > /out/new; cat /out/sub/file")
	s.Mounts[2].Source = d
	res, out := run(t, s)
	if !res.Success() || out != "1000\n1000 4755\n1000 2755\nsub/file" {
		t.Errorf("got %v and %q, want the tree shown as the build uid's", res, out)
	}
	sameState(t, d, before, "new")
}

// TestRWKill9: cairn killed while the command runs leaves the tree as it was.
func TestRWKill9(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	d, before := userTree(t)
	c := exec.Command("/proc/self/exe", "-test.run=^$")
	c.Env = append(os.Environ(), "CAIRN_SANDBOX_HELPER=rw", "CAIRN_HELPER_ROOT="+f.root, "CAIRN_HELPER_DIR="+d)
	outp, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := outp.Read(buf) // the command's "running", once the sandbox is up
	if !strings.Contains(string(buf[:n]), "running") {
		c.Process.Kill()
		c.Wait()
		t.Fatalf("helper: got %q", buf[:n])
	}
	c.Process.Kill()
	c.Wait()
	time.Sleep(100 * time.Millisecond)
	sameState(t, d, before, "new")
	// The killed cairn could not remove its cgroups; the next run does.
	for _, dir := range sandbox.CgroupDirs() {
		if m, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("cairn-%d-*", c.Process.Pid))); len(m) != 1 {
			t.Errorf("the killed cairn's cgroup in %s: got %v, want one", dir, m)
		}
	}
	run(t, f.spec("/bin/true"))
	for _, dir := range sandbox.CgroupDirs() {
		if m, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("cairn-%d-*", c.Process.Pid))); len(m) != 0 {
			t.Errorf("stale cgroups of the killed cairn: %v", m)
		}
	}
}

// rwHelper is the process TestRWKill9 kills: a sandbox over the tree that
// writes one file and then waits.
func rwHelper() {
	s := sandbox.Spec{
		Root:   os.Getenv("CAIRN_HELPER_ROOT"),
		Mounts: []sandbox.Mount{{Target: "/usr", Source: "/usr"}, {Target: "/out", Source: os.Getenv("CAIRN_HELPER_DIR"), Writable: true}},
		Args:   []string{"/bin/sh", "-c", "echo new > /out/new; echo running; exec sleep 100"},
		Output: os.Stdout,
	}
	sandbox.Run(context.Background(), s)
	os.Exit(0)
}
