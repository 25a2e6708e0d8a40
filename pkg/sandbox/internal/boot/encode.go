package boot

import (
	"errors"
	"strconv"
	"syscall"
)

// Config is what the init needs, resolved by the sandbox package.
type Config struct {
	Root       string
	Mounts     []Mount
	Args       []string
	Env        []string
	Dir        string
	Hostname   string
	Domainname string
	NoFile     uint64
	NProc      uint64
	AddrSpace  uint64 // RLIMIT_AS, 0: unlimited (the memory bound where no cgroup can be used)
	FileSize   uint64 // RLIMIT_FSIZE, 0: unlimited
	TmpSize    int64
	ShmSize    int64
	TTY        bool
	UserNS     bool // the init has a user namespace of its own
	OuterUID   int  // id in the init's namespace that the build uid maps to
	OuterGID   int
	BuildUID   int
	BuildGID   int
}

// Mount is one resolved bind.
type Mount struct {
	Target, Source string
	Writable, Dir  bool
	// FD, when above 0, is a detached mount of Source (open_tree, made
	// idmapped by Run) inherited at that descriptor: the init moves it
	// into place instead of binding Source.
	FD int
}

// The wire format: one record a line, "key" then values, each value
// strconv-quoted and preceded by a space. Repeated keys append.

func line(b *[]byte, key string, vals ...string) {
	*b = append(*b, key...)
	for _, v := range vals {
		*b = append(*b, ' ')
		*b = strconv.AppendQuote(*b, v)
	}
	*b = append(*b, '\n')
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
func btoa(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// Encode writes c in the wire format.
func (c *Config) Encode() []byte {
	var b []byte
	line(&b, "root", c.Root)
	for _, m := range c.Mounts {
		line(&b, "mount", m.Target, m.Source, btoa(m.Writable), btoa(m.Dir), itoa(int64(m.FD)))
	}
	line(&b, "args", c.Args...)
	line(&b, "env", c.Env...)
	line(&b, "dir", c.Dir)
	line(&b, "uts", c.Hostname, c.Domainname)
	line(&b, "limits", itoa(int64(c.NoFile)), itoa(int64(c.NProc)), itoa(c.TmpSize), itoa(c.ShmSize), itoa(int64(c.AddrSpace)), itoa(int64(c.FileSize)))
	line(&b, "flags", btoa(c.TTY), btoa(c.UserNS))
	line(&b, "ids", itoa(int64(c.OuterUID)), itoa(int64(c.OuterGID)), itoa(int64(c.BuildUID)), itoa(int64(c.BuildGID)))
	return b
}

var errFormat = errors.New("malformed sandbox config")

func fields(l string) (string, []string, error) {
	key, rest, _ := cut(l, " ")
	var vals []string
	for rest != "" {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", nil, errFormat
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return "", nil, errFormat
		}
		vals = append(vals, v)
		rest = trimPrefix(rest[len(q):], " ")
	}
	return key, vals, nil
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Decode parses the wire format.
func Decode(data []byte) (*Config, error) {
	c := &Config{}
	for _, l := range split(trimSuffix(string(data), "\n"), "\n") {
		key, v, err := fields(l)
		if err != nil {
			return nil, err
		}
		need := map[string]int{"root": 1, "mount": 5, "dir": 1, "uts": 2, "limits": 6, "flags": 2, "ids": 4}[key]
		if len(v) < need {
			return nil, errFormat
		}
		switch key {
		case "root":
			c.Root = v[0]
		case "mount":
			c.Mounts = append(c.Mounts, Mount{Target: v[0], Source: v[1], Writable: v[2] == "1", Dir: v[3] == "1", FD: int(atoi(v[4]))})
		case "args":
			c.Args = v
		case "env":
			c.Env = v
		case "dir":
			c.Dir = v[0]
		case "uts":
			c.Hostname, c.Domainname = v[0], v[1]
		case "limits":
			c.NoFile, c.NProc, c.TmpSize, c.ShmSize = uint64(atoi(v[0])), uint64(atoi(v[1])), atoi(v[2]), atoi(v[3])
			c.AddrSpace, c.FileSize = uint64(atoi(v[4])), uint64(atoi(v[5]))
		case "flags":
			c.TTY, c.UserNS = v[0] == "1", v[1] == "1"
		case "ids":
			c.OuterUID, c.OuterGID, c.BuildUID, c.BuildGID = int(atoi(v[0])), int(atoi(v[1])), int(atoi(v[2])), int(atoi(v[3]))
		default:
			return nil, errFormat
		}
	}
	if len(c.Args) == 0 {
		return nil, errFormat
	}
	return c, nil
}

// Report is one message of the init to Run.
type Report struct {
	// A setup failure.
	Failed bool
	Step   string
	Path   string
	Errno  syscall.Errno
	Msg    string
	// Or the command's end.
	Exit   int
	Signal int
}

// Encode writes r as one line.
func (r *Report) Encode() []byte {
	var b []byte
	if r.Failed {
		line(&b, "err", r.Step, r.Path, itoa(int64(r.Errno)), r.Msg)
	} else {
		line(&b, "exit", itoa(int64(r.Exit)), itoa(int64(r.Signal)))
	}
	return b
}

// DecodeReports parses every report in data, ignoring malformed lines.
func DecodeReports(data []byte) []Report {
	var rs []Report
	for _, l := range split(string(data), "\n") {
		key, v, err := fields(l)
		if err != nil {
			continue
		}
		switch {
		case key == "err" && len(v) == 4:
			rs = append(rs, Report{Failed: true, Step: v[0], Path: v[1], Errno: syscall.Errno(atoi(v[2])), Msg: v[3]})
		case key == "exit" && len(v) == 2:
			rs = append(rs, Report{Exit: int(atoi(v[0])), Signal: int(atoi(v[1]))})
		}
	}
	return rs
}
