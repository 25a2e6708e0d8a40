package boot

import (
	"encoding/binary"
	"syscall"
	"testing"
)

// eval runs prog, the way the kernel would, on one system call.
func eval(t *testing.T, prog []sockFilter, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], nr)
	binary.LittleEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.code {
		case bpfLdAbs:
			acc = binary.LittleEndian.Uint32(data[in.k:])
		case bpfJeq, bpfJset:
			hit := acc == in.k
			if in.code == bpfJset {
				hit = acc&in.k != 0
			}
			if hit {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		case bpfRet:
			return in.k
		default:
			t.Fatalf("instruction %d: unknown code %#x", pc, in.code)
		}
	}
	t.Fatal("fell off the end of the program")
	return 0
}

func TestSeccompProgram(t *testing.T) {
	prog := program(filterTables)
	if len(prog) == 0 || len(prog) > 4096 {
		t.Fatalf("program of %d instructions", len(prog))
	}
	native := filterTables[0].audit
	eperm := uint32(retErrno | uint32(syscall.EPERM))
	for _, r := range filterTables[0].rules {
		switch r.act {
		case denySetID:
			args := make([]uint64, 6)
			args[r.arg] = 0o4755
			if got := eval(t, prog, native, r.nr, args...); got != eperm {
				t.Errorf("nr %d with mode 4755: got %#x, want EPERM", r.nr, got)
			}
			args[r.arg] = 0o2755
			if got := eval(t, prog, native, r.nr, args...); got != eperm {
				t.Errorf("nr %d with mode 2755: got %#x, want EPERM", r.nr, got)
			}
			args[r.arg] = 0o1777 | 0xffffffff00000000
			if got := eval(t, prog, native, r.nr, args...); got != retAllow {
				t.Errorf("nr %d with mode 1777: got %#x, want allow", r.nr, got)
			}
		case denyErrno:
			if got := eval(t, prog, native, r.nr); got != retErrno|uint32(r.errno) {
				t.Errorf("nr %d: got %#x, want errno %d", r.nr, got, r.errno)
			}
		case denyArgEq:
			if got := eval(t, prog, native, r.nr, 1, uint64(r.val)); got != eperm {
				t.Errorf("nr %d arg %#x: got %#x, want EPERM", r.nr, r.val, got)
			}
			if got := eval(t, prog, native, r.nr, 1, uint64(r.val)+1); got != retAllow {
				t.Errorf("nr %d other arg: got %#x, want allow", r.nr, got)
			}
		}
	}
	// An ordinary call passes; a foreign architecture is killed.
	if got := eval(t, prog, native, 0); got != retAllow {
		t.Errorf("nr 0: got %#x, want allow", got)
	}
	if got := eval(t, prog, 0x12345678, 0); got != retKill {
		t.Errorf("unknown architecture: got %#x, want kill", got)
	}
	// Every other table is reached by its architecture.
	for _, tb := range filterTables[1:] {
		for _, r := range tb.rules {
			if r.act == denyErrno {
				if got := eval(t, prog, tb.audit, r.nr); got != retErrno|uint32(r.errno) {
					t.Errorf("arch %#x nr %d: got %#x", tb.audit, r.nr, got)
				}
			}
		}
		if got := eval(t, prog, tb.audit, 3); got != retAllow {
			t.Errorf("arch %#x nr 3: got %#x, want allow", tb.audit, got)
		}
	}
	if filterTables[0].x32 {
		if got := eval(t, prog, native, x32Bit|1); got != retErrno|uint32(syscall.ENOSYS) {
			t.Errorf("x32 call: got %#x, want ENOSYS", got)
		}
	}
}
