package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// realRoot reports whether this process can run the sandbox the root way:
// no user namespace of its own for the init, the command mapped to a
// dedicated host id. That takes euid 0 in a user namespace where hostID is
// mapped too, as in the initial one. Root of a namespace that maps only
// itself (unshare -r, a rootless container) cannot hand out hostID, so it
// takes the unprivileged path, as an ordinary user does.
func realRoot(hostID int) bool {
	if os.Geteuid() != 0 {
		return false
	}
	return idMapped("/proc/self/uid_map", hostID) && idMapped("/proc/self/gid_map", hostID)
}

var mapCache sync.Map // file and id -> bool

// idMapped reports whether id (of this namespace) appears in the map file.
func idMapped(file string, id int) bool {
	key := file + ":" + strconv.Itoa(id)
	if v, ok := mapCache.Load(key); ok {
		return v.(bool)
	}
	ok := false
	if f, err := os.Open(file); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) != 3 {
				continue
			}
			in, _ := strconv.ParseInt(fs[0], 10, 64)
			n, _ := strconv.ParseInt(fs[2], 10, 64)
			if int64(id) >= in && int64(id) < in+n {
				ok = true
			}
		}
		f.Close()
	}
	mapCache.Store(key, ok)
	return ok
}

// Mode says how this process runs sandboxes, for diagnostics and tests:
// "root" (real root: the command is a dedicated host id, writable mounts
// idmapped), "user" (an ordinary uid in its own user namespace), or
// "userns-root" (uid 0 of a user namespace without the host's ids, such as
// unshare -r: the same path as "user").
func Mode() string {
	switch {
	case realRoot(DefaultHostID):
		return "root"
	case os.Geteuid() == 0:
		return "userns-root"
	default:
		return "user"
	}
}

func (m Mount) String() string { return fmt.Sprintf("%s=%s", m.Target, m.Source) }
