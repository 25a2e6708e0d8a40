package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
	"github.com/cairn-build/cairn/pkg/sandbox"
)

func TestMain(m *testing.M) {
	// The test binary is its own sandbox init, as cairn is.
	if code, ok := sandbox.Init(); ok {
		// syscall.Exit, not os.Exit: a -race binary sleeps a second in
		// os.Exit(0) (GORACE atexit_sleep_ms), and the init is this binary.
		syscall.Exit(code)
	}
	if os.Getenv("CAIRN_SANDBOX_HELPER") == "rw" {
		rwHelper()
	}
	// Every test again as an ordinary user, as root of a user namespace
	// without the host's ids, and as root under unshare -r.
	os.Exit(testenv.RunInModes(m))
}

// needSandbox skips (or fails in CI) when this process can make no sandbox:
// not root and the kernel refuses unprivileged user namespaces.
func needSandbox(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	c := exec.Command("/proc/self/exe")
	c.Args = []string{"cairn-sandbox-probe"}
	c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET}
	if err := c.Run(); err != nil {
		testenv.SkipOrFail(t, "not root and the kernel refuses an unprivileged user namespace: "+err.Error())
	}
}

// fixture is a root tree exposing the host's /usr, a read-only input, a
// writable /out and a secret the sandbox must not see.
type fixture struct {
	dir, root, in, out, secret string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	d := t.TempDir()
	f := &fixture{dir: d, root: filepath.Join(d, "root"), in: filepath.Join(d, "in"), out: filepath.Join(d, "out"), secret: filepath.Join(d, "secret")}
	for _, p := range []string{f.root, f.in, f.out} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(f.root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.in, "file"), []byte("original\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.secret, []byte("host-secret-canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) spec(args ...string) sandbox.Spec {
	return sandbox.Spec{
		Root: f.root,
		Mounts: []sandbox.Mount{
			{Target: "/usr", Source: "/usr"},
			{Target: "/src/in", Source: f.in},
			{Target: "/out", Source: f.out, Writable: true},
		},
		Args:            args,
		SourceDateEpoch: 1700000000,
		Timeout:         20 * time.Second,
	}
}

func run(t testing.TB, s sandbox.Spec) (sandbox.Result, string) {
	t.Helper()
	var out bytes.Buffer
	s.Output = &out
	res, err := sandbox.Run(context.Background(), s)
	if err != nil {
		t.Fatalf("Run(%q): %v\noutput:\n%s", s.Args, err, out.String())
	}
	return res, out.String()
}

// canary is a TCP listener on all of the host's addresses that counts
// the connections it receives.
type canary struct {
	ln    net.Listener
	count atomic.Int64
}

func newCanary(t testing.TB) *canary {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.count.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *canary) port() int { return c.ln.Addr().(*net.TCPAddr).Port }

// outsideAddr is a non-loopback address of the host, or TEST-NET-1.
func outsideAddr() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "192.0.2.1"
}

// TestEscapes runs each attempt in its own sandbox. Every attempt is written
// "if ATTEMPT; then echo ESCAPED; exit 0; fi; exit 1", after a check that the
// tools it uses exist (exit 99), so a missing tool cannot pass as a block.
func TestEscapes(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	cn := newCanary(t)
	host, _ := os.Hostname()
	victim := exec.Command("sleep", "300")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	t.Setenv("CAIRN_HOST_SECRET", "leaked")
	// A descriptor left open without O_CLOEXEC, as a careless parent of
	// cairn would: it must not reach the command.
	leak, err := syscall.Open(f.secret, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(leak) })

	port := cn.port()
	rows := []struct {
		name, tools, attempt string
	}{
		{"tcp to host loopback", "bash", fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d'", port)},
		{"tcp to host outside address", "bash", fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/%s/%d'", outsideAddr(), port)},
		{"udp to outside", "bash", "bash -c 'echo x > /dev/udp/192.0.2.1/53'"},
		{"tcp over ipv6 loopback", "bash", fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/::1/%d'", port)},
		{"resolve a name", "getent", "getent ahosts example.org"},
		{"an interface other than lo", "", "grep -v -e '^ *lo:' -e '|' /proc/net/dev"},
		{"read a host file", "cat", "cat " + f.secret},
		{"reach the old root", "ls", "ls /oldroot/"},
		{"see host processes", "grep", "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -e 'sandbox[.]test' -e 'sleep 30[0]'"},
		{"read init's environment", "cat", "cat /proc/1/environ"},
		{"read init's memory", "cat", "head -c1 /proc/1/mem"},
		{"write init's binary", "", "echo x >> /proc/1/exe"},
		{"open init's root", "ls", "ls /proc/1/root/"},
		{"write a read-only input", "", "echo pwned > /src/in/file"},
		{"create in a read-only input", "touch", "touch /src/in/new"},
		{"write the root tree", "touch", "touch /usr/pwned"},
		{"write /", "touch", "touch /pwned"},
		{"write /etc", "touch", "touch /etc/pwned"},
		{"write /etc/passwd", "", "echo 'x::0:0::/:/bin/sh' >> /etc/passwd"},
		{"write /dev", "touch", "touch /dev/pwned"},
		{"write /proc", "", "echo 1 > /proc/sys/kernel/sysrq"},
		{"create a device node", "mknod", "mknod /tmp/null c 1 3"},
		{"mount a tmpfs", "mount", "mount -t tmpfs none /tmp"},
		{"mount a tmpfs in a nested user namespace", "unshare mount", "unshare -Urm sh -c 'mount -t tmpfs -o size=64g none /tmp'"},
		{"remount an input rw", "mount", "mount -o remount,rw /src/in && echo pwned > /src/in/file"},
		{"remount rw in a nested user namespace", "unshare mount", "unshare -Urm sh -c 'mount -o remount,rw /src/in && echo pwned > /src/in/file'"},
		{"remount the root rw in a nested user namespace", "unshare mount", "unshare -Urm sh -c 'mount -o remount,rw / && touch /pwned'"},
		{"umount to see below", "unshare umount", "unshare -Urm sh -c 'umount -l /src/in && ls /src/in/file'"},
		{"change the hostname", "hostname", "hostname pwned"},
		{"gain a capability", "grep", "grep -q '^CapEff:.*[1-9a-f]' /proc/self/status"},
		{"no_new_privs is off", "grep", "grep -q '^NoNewPrivs:.*0' /proc/self/status"},
		{"kill the host's processes", "kill", fmt.Sprintf("kill -9 -1; sleep 0.2; kill -0 %d", victim.Process.Pid)},
		{"an inherited descriptor", "ls", "ls /proc/self/fd | grep -v -x -e 0 -e 1 -e 2 -e 3"},
		{"a caller's variable", "env", "env | grep CAIRN_HOST_SECRET"},
		{"a controlling terminal", "", "sh -c 'exec 3</dev/tty'"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			script := ""
			for _, tool := range strings.Fields(r.tools) {
				script += fmt.Sprintf("command -v %s >/dev/null || { echo missing %s; exit 99; }\n", tool, tool)
			}
			script += "if " + r.attempt + "; then echo ESCAPED; exit 0; fi; exit 1\n"
			res, out := run(t, f.spec("/bin/sh", "-c", script))
			if res.ExitCode != 1 || strings.Contains(out, "ESCAPED") {
				t.Errorf("got %v, want exit status 1 (attempt blocked); output:\n%s", res, out)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(f.in, "file")); string(b) != "original\n" {
		t.Errorf("read-only input: got %q, want %q", b, "original\n")
	}
	if _, err := os.Stat(filepath.Join(f.in, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only input gained a file: %v", err)
	}
	if h, _ := os.Hostname(); h != host {
		t.Errorf("host's hostname: got %q, want %q", h, host)
	}
	if n := cn.count.Load(); n != 0 {
		t.Errorf("canary listener: got %d connections, want 0", n)
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("host process killed from inside: %v", err)
	}
}

// TestInside checks what the command sees, positively.
func TestInside(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	rows := []struct{ name, script, want string }{
		{"identity", "id -u; id -g", "1000\n100\n"},
		{"working directory", "pwd", "/build\n"},
		{"umask", "umask", "0022\n"},
		{"hostname", "hostname; domainname", "localhost\n(none)\n"},
		{"localhost resolves", "getent hosts 127.0.0.1", "127.0.0.1       localhost\n"},
		{"loopback works", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/1' 2>&1 | grep -q 'Connection refused' && echo up", "up\n"},
		{"interfaces", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", "lo\n"},
		{"input readable", "cat /src/in/file", "original\n"},
		{"tmp writable", "echo x > /tmp/x && cat /tmp/x", "x\n"},
		{"dev", "ls /dev | tr '\\n' ' '", "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "},
		{"top level", "ls / | tr '\\n' ' '", "bin build dev etc lib lib64 out proc sbin src tmp usr "},
		{"the shell's parent is pid 1", "cut -d' ' -f4 /proc/$$/stat", "1\n"},
		{"nofile limit", "ulimit -n", "4096\n"},
		{"core limit", "ulimit -c", "0\n"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			res, out := run(t, f.spec("/bin/sh", "-c", r.script))
			if !res.Success() || out != r.want {
				t.Errorf("got %v and %q, want exit status 0 and %q", res, out, r.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	t.Setenv("CAIRN_HOST_SECRET", "leaked")
	s := f.spec("env")
	s.Env = []string{"FOO=bar", "PATH=/usr/bin:/bin"}
	res, out := run(t, s)
	got := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(got)
	want := []string{"FOO=bar", "HOME=/homeless-shelter", "LC_ALL=C", "PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=1700000000", "TMPDIR=/tmp", "TZ=UTC"}
	if !res.Success() || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("env: got %v and %q, want exit status 0 and %q", res, got, want)
	}
}

func TestExitStatusAndOutput(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	res, out := run(t, f.spec("/bin/sh", "-c", "echo out; echo err >&2; exit 7"))
	if res.ExitCode != 7 || out != "out\nerr\n" {
		t.Errorf("got %v and %q, want exit status 7 and %q", res, out, "out\nerr\n")
	}
	res, _ = run(t, f.spec("/bin/sh", "-c", "kill -TERM $$"))
	if res.Signal != syscall.SIGTERM || res.ExitCode != -1 {
		t.Errorf("got %v, want killed by SIGTERM", res)
	}
	s := f.spec("/bin/cat")
	s.Stdin = strings.NewReader("in\n")
	if res, out := run(t, s); !res.Success() || out != "in\n" {
		t.Errorf("stdin: got %v and %q, want exit status 0 and %q", res, out, "in\n")
	}
}

func TestCompileC(t *testing.T) {
	needSandbox(t)
	if _, err := os.Stat("/usr/bin/gcc"); err != nil {
		testenv.SkipOrFail(t, "no /usr/bin/gcc on the host for the root tree")
	}
	f := newFixture(t)
	script := `cat > hello.c <<'EOF'
#include <stdio.h>
int main(void) { printf("hello from %s\n", "inside"); return 3; }
EOF
gcc -O2 -o hello hello.c && ./hello; echo "status $?"; cp hello /out/hello && mkdir /out/sub && ln -s /etc/shadow /out/sub/link`
	res, out := run(t, f.spec("/bin/sh", "-c", script))
	if !res.Success() || out != "hello from inside\nstatus 3\n" {
		t.Fatalf("got %v and %q, want exit status 0 and %q", res, out, "hello from inside\nstatus 3\n")
	}
	for _, p := range []string{"", "hello", "sub", "sub/link"} {
		fi, err := os.Lstat(filepath.Join(f.out, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
			t.Errorf("/out/%s: got owner %d:%d, want %d:%d", p, st.Uid, st.Gid, os.Geteuid(), os.Getegid())
		}
	}
	if sandbox.Mode() == "root" {
		var st syscall.Stat_t
		if err := syscall.Stat("/etc/shadow", &st); err == nil && st.Uid != 0 {
			t.Errorf("/etc/shadow: got owner %d, want 0 (a symlink was followed)", st.Uid)
		}
	}
}

// pidNSGone fails t if any host process is in the pid namespace ns.
func pidNSGone(t testing.TB, ns string) {
	t.Helper()
	if !strings.HasPrefix(ns, "pid:[") {
		t.Fatalf("pid namespace from inside: got %q, want pid:[N]", ns)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			t.Errorf("process %s (%q) of the sandbox's %s survived Run", e.Name(), cmd, ns)
		}
	}
}

func TestStrayProcessDies(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	res, out := run(t, f.spec("/bin/sh", "-c", "sleep 1000 & setsid sleep 1001 & (sleep 1002 &) ; readlink /proc/self/ns/pid"))
	if !res.Success() {
		t.Fatalf("got %v, want exit status 0", res)
	}
	pidNSGone(t, strings.TrimSpace(out))
}

func TestForkBomb(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", "i=0; while [ $i -lt 300 ]; do sleep 100 & i=$((i+1)); done; echo spawned $i")
	s.Limits.Pids = 50
	res, out := run(t, s)
	if res.Success() || !strings.Contains(out, "fork") || strings.Contains(out, "spawned 300") {
		t.Errorf("got %v and %q, want a failed fork", res, out)
	}
	s = f.spec("/bin/sh", "-c", "readlink /proc/self/ns/pid; b() { b | b & }; b; wait")
	s.Limits.Pids = 50
	s.Timeout = 2 * time.Second
	res, out = run(t, s)
	pidNSGone(t, strings.SplitN(out, "\n", 2)[0])
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Errorf("the host cannot fork after the bomb: %v", err)
	}
	_ = res
}

func TestTimeout(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", "readlink /proc/self/ns/pid; exec sleep 100")
	// Long enough for the command to start on a loaded machine, where a
	// sandbox can take a few hundred milliseconds.
	s.Timeout = 2 * time.Second
	res, out := run(t, s)
	if !res.TimedOut || res.String() != "timed out after 2 s" || res.ExitCode != -1 {
		t.Errorf("got %+v (%v), want timed out after 2 s", res, res)
	}
	pidNSGone(t, strings.TrimSpace(out))
}

func TestCancel(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := f.spec("/bin/sh", "-c", "readlink /proc/self/ns/pid; sleep 100 & exec sleep 100")
	var out syncBuffer
	s.Output = &out
	go func() {
		for !strings.Contains(out.String(), "\n") {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err := sandbox.Run(ctx, s)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	pidNSGone(t, strings.TrimSpace(out.String()))
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	missing := filepath.Join(f.dir, "missing")
	rows := []struct {
		name   string
		modify func(*sandbox.Spec)
		check  func(error) bool
	}{
		{"missing root", func(s *sandbox.Spec) { s.Root = missing }, func(err error) bool {
			var ie *sandbox.InputError
			return errors.As(err, &ie) && ie.What == "root tree" && ie.Path == missing && errors.Is(err, fs.ErrNotExist)
		}},
		{"missing input", func(s *sandbox.Spec) { s.Mounts = append(s.Mounts, sandbox.Mount{Target: "/src/x", Source: missing}) }, func(err error) bool {
			var ie *sandbox.InputError
			return errors.As(err, &ie) && ie.What == "mount /src/x" && ie.Path == missing && errors.Is(err, fs.ErrNotExist)
		}},
		{"relative target", func(s *sandbox.Spec) { s.Mounts = append(s.Mounts, sandbox.Mount{Target: "src/x", Source: f.in}) }, isSpecError},
		{"target on /proc", func(s *sandbox.Spec) { s.Mounts = append(s.Mounts, sandbox.Mount{Target: "/proc/x", Source: f.in}) }, isSpecError},
		{"nested targets", func(s *sandbox.Spec) { s.Mounts = append(s.Mounts, sandbox.Mount{Target: "/src/in/x", Source: f.in}) }, isSpecError},
		{"target inside the root tree", func(s *sandbox.Spec) { s.Mounts = append(s.Mounts, sandbox.Mount{Target: "/bin/x", Source: f.in}) }, isSpecError},
		{"fixed variable", func(s *sandbox.Spec) { s.Env = []string{"HOME=/root"} }, func(err error) bool { return errors.Is(err, sandbox.ErrReservedEnv) }},
		{"no command", func(s *sandbox.Spec) { s.Args = nil }, isSpecError},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := f.spec("/bin/true")
			r.modify(&s)
			_, err := sandbox.Run(context.Background(), s)
			if err == nil || !r.check(err) {
				t.Errorf("got %v (%T), want the typed error", err, err)
			}
		})
	}
	t.Run("command not found", func(t *testing.T) {
		needSandbox(t)
		_, err := sandbox.Run(context.Background(), f.spec("no-such-command"))
		var se *sandbox.SetupError
		if !errors.As(err, &se) || se.Path != "no-such-command" {
			t.Errorf("got %v, want a SetupError naming no-such-command", err)
		}
	})
}

func isSpecError(err error) bool {
	var se *sandbox.SpecError
	return errors.As(err, &se)
}

// TestConcurrent runs sandboxes side by side, as a build's parallel steps do:
// each sees its own /out and its own process budget.
func TestConcurrent(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			out := filepath.Join(f.dir, fmt.Sprintf("out%d", i))
			if err := os.Mkdir(out, 0o755); err != nil {
				errs <- err
				return
			}
			s := f.spec("/bin/sh", "-c", fmt.Sprintf("echo %d > /out/n; ls /out | wc -l", i))
			s.Mounts[2].Source = out
			var buf bytes.Buffer
			s.Output = &buf
			res, err := sandbox.Run(context.Background(), s)
			if err == nil && (!res.Success() || buf.String() != "1\n") {
				err = fmt.Errorf("sandbox %d: got %v and %q, want exit status 0 and %q", i, res, buf.String(), "1\n")
			}
			if err == nil {
				if b, _ := os.ReadFile(filepath.Join(out, "n")); string(b) != fmt.Sprintf("%d\n", i) {
					err = fmt.Errorf("sandbox %d: /out/n: got %q", i, b)
				}
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestRootEtc layers cairn's passwd, group and hosts over a root tree's own
// /etc, whether it has those files or not.
func TestRootEtc(t *testing.T) {
	needSandbox(t)
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("root tree has passwd: %v", own), func(t *testing.T) {
			f := newFixture(t)
			etc := filepath.Join(f.root, "etc")
			if err := os.Mkdir(etc, 0o755); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{"os-release": "ID=fixture\n"}
			if own {
				files["passwd"] = "evil::0:0::/:/bin/sh\n"
				files["group"] = "evil::0:\n"
				files["hosts"] = "192.0.2.1 localhost\n"
			}
			for n, c := range files {
				if err := os.WriteFile(filepath.Join(etc, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, out := run(t, f.spec("/bin/sh", "-c", "cat /etc/os-release; grep -c evil /etc/passwd /etc/group; getent hosts localhost | head -n1 | cut -d' ' -f1; touch /etc/x 2>/dev/null || echo ro"))
			want := "ID=fixture\n/etc/passwd:0\n/etc/group:0\n::1\nro\n"
			if res.ExitCode != 0 || out != want {
				t.Errorf("got %v and %q, want exit status 0 and %q", res, out, want)
			}
		})
	}
}

// TestLargeSpec sends a configuration larger than a pipe holds.
func TestLargeSpec(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	s := f.spec("/bin/sh", "-c", "echo ${#BIG}")
	s.Env = []string{"BIG=" + strings.Repeat("x", 100000)}
	if res, out := run(t, s); !res.Success() || out != "100000\n" {
		t.Errorf("got %v and %q, want exit status 0 and %q", res, out, "100000\n")
	}
}

// AsRoot gives the command uid 0 of its own user namespace, for daemons
// that chroot and drop ids; the sandbox's mounts must stay locked.
func TestAsRoot(t *testing.T) {
	needSandbox(t)
	// setgroups needs it allowed in every user namespace up the chain; a
	// caller without root has it denied in its own (no newgidmap).
	setgroups := 1
	if sandbox.Mode() == "root" {
		setgroups = 0
	}
	f := newFixture(t)
	for _, tc := range []struct {
		name, script string
		want         int
	}{
		{"is uid 0 inside", `test "$(id -u):$(id -g)" = 0:0`, 0},
		{"may chroot", "chroot / /usr/bin/true", 0},
		{"may setgroups to its gid", "setpriv --groups 0 true", setgroups},
		{"cannot remount the root tree rw", "mount -o remount,rw /usr", 1},
		{"cannot remount in a new mount namespace", "unshare -m sh -c 'mount -o remount,rw /usr && touch /usr/cairn-escape'", 1},
		{"cannot write a read-only input", "echo x > /src/in/file", 1},
		{"cannot reach another uid", "setpriv --reuid 1 true", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.spec("/bin/sh", "-c", tc.script+" >/dev/null 2>&1 || exit 1")
			s.AsRoot = true
			res, out := run(t, s)
			if res.ExitCode != tc.want {
				t.Errorf("%s: exit %d, want %d\n%s", tc.script, res.ExitCode, tc.want, out)
			}
		})
	}
	if _, err := os.Stat("/usr/cairn-escape"); err == nil {
		os.Remove("/usr/cairn-escape")
		t.Error("the command wrote to the host's /usr")
	}
	if data, _ := os.ReadFile(filepath.Join(f.in, "file")); string(data) != "original\n" {
		t.Errorf("read-only input changed: %q", data)
	}
}

// cairn's own umask must not reach what the sandbox makes: with 077 the
// command could not enter the mount points or read /etc/passwd.
func TestCallerUmask(t *testing.T) {
	needSandbox(t)
	f := newFixture(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	res, out := run(t, f.spec("/bin/sh", "-c", "cat /src/in/file /etc/passwd >/dev/null && test \"$(umask)\" = 0022"))
	if res.ExitCode != 0 {
		t.Errorf("under umask 077: exit %d, want 0\n%s", res.ExitCode, out)
	}
}
