package boot

import (
	"syscall"
	"unsafe"
)

// SeccompVersion names the filter below; the sandbox's SpecVersion changes
// with it, so a new filter means new action keys.
const SeccompVersion = "cairn-seccomp-v1"

// What the filter does with a system call.
type action int

const (
	denyErrno action = iota // always fail with errno
	denySetID               // fail with EPERM when the mode argument has S_ISUID or S_ISGID
	denyArgEq               // fail with EPERM when the argument equals val
)

// rule is one system call of one architecture's table.
type rule struct {
	nr    uint32
	act   action
	arg   int    // the argument denySetID and denyArgEq look at
	val   uint32 // denyArgEq
	errno syscall.Errno
}

// archTable is the filter of one audit architecture.
type archTable struct {
	audit uint32
	x32   bool // the native table of amd64: x32 numbers (bit 30) are refused
	rules []rule
}

// The classic BPF instructions the filter uses.
const (
	bpfLdAbs   = 0x20 // BPF_LD|BPF_W|BPF_ABS
	bpfJeq     = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	bpfJset    = 0x45 // BPF_JMP|BPF_JSET|BPF_K
	bpfRet     = 0x06 // BPF_RET|BPF_K
	retAllow   = 0x7fff0000
	retErrno   = 0x00050000
	retKill    = 0x80000000 // SECCOMP_RET_KILL_PROCESS
	offNr      = 0
	offArch    = 4
	offArgs    = 16
	setIDBits  = 0o6000
	x32Bit     = 0x40000000
	tiocsti    = 0x5412
	seccompSet = 1 // SECCOMP_SET_MODE_FILTER
	prSeccomp  = 22
	modeFilter = 2
)

type sockFilter struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

type sockFprog struct {
	len    uint16
	filter *sockFilter
}

func stmt(code uint16, k uint32) sockFilter { return sockFilter{code: code, k: k} }
func jump(code uint16, k uint32, jt, jf uint8) sockFilter {
	return sockFilter{code: code, jt: jt, jf: jf, k: k}
}

// program compiles the tables: for each architecture a section that tests
// the system call number against each rule in turn and allows the rest; an
// architecture without a table is killed, so a foreign ABI cannot reach the
// calls by their other numbers.
func program(tables []archTable) []sockFilter {
	var prog []sockFilter
	prog = append(prog, stmt(bpfLdAbs, offArch))
	for _, t := range tables {
		var sec []sockFilter
		sec = append(sec, stmt(bpfLdAbs, offNr))
		if t.x32 {
			sec = append(sec, jump(bpfJset, x32Bit, 0, 1), stmt(bpfRet, retErrno|uint32(syscall.ENOSYS)))
		}
		for _, r := range t.rules {
			var body []sockFilter
			switch r.act {
			case denyErrno:
				body = []sockFilter{stmt(bpfRet, retErrno|uint32(r.errno))}
			case denySetID:
				body = []sockFilter{
					stmt(bpfLdAbs, uint32(offArgs+8*r.arg)), // the low word, little-endian
					jump(bpfJset, setIDBits, 0, 1),
					stmt(bpfRet, retErrno|uint32(syscall.EPERM)),
					stmt(bpfRet, retAllow),
				}
			case denyArgEq:
				body = []sockFilter{
					stmt(bpfLdAbs, uint32(offArgs+8*r.arg)),
					jump(bpfJeq, r.val, 0, 1),
					stmt(bpfRet, retErrno|uint32(syscall.EPERM)),
					stmt(bpfRet, retAllow),
				}
			}
			sec = append(sec, jump(bpfJeq, r.nr, 0, uint8(len(body))))
			sec = append(sec, body...)
		}
		sec = append(sec, stmt(bpfRet, retAllow))
		if len(sec) > 255 {
			return nil // a jump cannot skip it; installSeccomp refuses
		}
		prog = append(prog, jump(bpfJeq, t.audit, 0, uint8(len(sec))))
		prog = append(prog, sec...)
	}
	return append(prog, stmt(bpfRet, retKill))
}

// common lists the rules by name; each architecture's file gives numbers.
// The denied calls: setuid and setgid bits (one rule for outputs: refused,
// see docs/sandbox.md), extended attributes (file capabilities live in
// security.capability; ENOTSUP, as Nix does, so cp -a and tar carry on),
// and kernel surfaces a build never needs: keyrings, BPF, perf, userfaultfd,
// io_uring, module and kexec loading, file handles, mounts, TIOCSTI.
func rules(nr map[string]uint32) []rule {
	var rs []rule
	setID := []struct {
		name string
		arg  int
	}{
		{"chmod", 1}, {"fchmod", 1}, {"fchmodat", 2}, {"fchmodat2", 2},
		// A file or directory created with the bits: the mode is ignored
		// without O_CREAT, and callers pass 0 then.
		{"open", 2}, {"openat", 3}, {"creat", 1}, {"mkdir", 1}, {"mkdirat", 2}, {"mknod", 1}, {"mknodat", 2},
	}
	for _, s := range setID {
		if n, ok := nr[s.name]; ok {
			rs = append(rs, rule{nr: n, act: denySetID, arg: s.arg})
		}
	}
	for _, name := range []string{"setxattr", "lsetxattr", "fsetxattr", "setxattrat"} {
		if n, ok := nr[name]; ok {
			rs = append(rs, rule{nr: n, act: denyErrno, errno: syscall.ENOTSUP})
		}
	}
	for _, name := range []string{"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
		"io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module", "open_by_handle_at",
		// Mounts: the init has made all there are. A tmpfs mounted in a
		// nested user namespace would hold memory no rlimit bounds.
		"mount", "umount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"} {
		if n, ok := nr[name]; ok {
			rs = append(rs, rule{nr: n, act: denyErrno, errno: syscall.EPERM})
		}
	}
	if n, ok := nr["ioctl"]; ok {
		rs = append(rs, rule{nr: n, act: denyArgEq, arg: 1, val: tiocsti})
	}
	return rs
}

// installSeccomp loads the filter on the calling thread; what it starts
// inherits it. no_new_privs must be set first.
func installSeccomp() error {
	if len(filterTables) == 0 {
		return must("seccomp", "", errNoFilter)
	}
	prog := program(filterTables)
	if len(prog) == 0 {
		return must("seccomp", "", strErr("filter too long for its jumps"))
	}
	fp := sockFprog{len: uint16(len(prog)), filter: &prog[0]}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSeccomp, modeFilter, uintptr(unsafe.Pointer(&fp))); e != 0 {
		return must("seccomp", "", e)
	}
	return nil
}

type strErr string

func (e strErr) Error() string { return string(e) }

const errNoFilter = strErr("no seccomp filter for this architecture")
