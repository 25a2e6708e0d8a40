package boot

import (
	"reflect"
	"syscall"
	"testing"
)

func TestConfigRoundTrip(t *testing.T) {
	rows := []*Config{
		{Root: "/r", Args: []string{"/bin/true"}, Dir: "/build", Hostname: "localhost", Domainname: "(none)"},
		{
			Root:   "/with space/and\nnewline",
			Mounts: []Mount{{Target: "/src/a b", Source: "/x\"y", Dir: true}, {Target: "/out", Source: "/o", Writable: true, FD: 5}},
			Args:   []string{"sh", "-c", "echo 'a b'\nexit 3", ""},
			Env:    []string{"A=1", "B=line\nbreak", "C=\\\"q\\\""},
			Dir:    "/build", Hostname: "h", Domainname: "d",
			NoFile: 4096, NProc: 1024, AddrSpace: 8 << 30, FileSize: 1 << 30, TmpSize: 2 << 30, ShmSize: 64 << 20,
			TTY: true, UserNS: true, OuterUID: 0x70000000, OuterGID: 7, BuildUID: 1000, BuildGID: 100,
		},
	}
	for _, c := range rows {
		got, err := Decode(c.Encode())
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("Decode(Encode(%+v)): got %+v, %v", c, got, err)
		}
	}
}

func TestDecodeRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "root\n", "args \"unterminated\n", "nonsense \"x\"\n", "root \"/\"\n"} {
		if c, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q): got %+v, want an error", in, c)
		}
	}
}

func TestReportRoundTrip(t *testing.T) {
	in := []Report{{Failed: true, Step: "bind /oldroot/x on", Path: "/newroot/y z", Errno: syscall.ENOENT, Msg: "no such\nfile"}, {Exit: 7}, {Exit: 137, Signal: 9}}
	var data []byte
	for _, r := range in {
		data = append(data, r.Encode()...)
	}
	if got := DecodeReports(data); !reflect.DeepEqual(got, in) {
		t.Errorf("got %+v, want %+v", got, in)
	}
}
