// Package boot is the sandbox's init: the code a re-executed cairn runs as
// pid 1 of the new namespaces.
//
// It takes over in a package init function, not in main: by the time main
// runs, a binary like cairn has run some 150 package initialisers, about 2 to
// 3 ms on the reference machine, while this package depends only on os and
// syscall and so is initialised within the first millisecond. That is most of
// the difference between a start-up slower and faster than bubblewrap. The
// price is that the init process ends with syscall.Exit from here; it is not
// cairn at that point, only a small program that happens to share its binary.
//
// The configuration arrives on fd 3 and the reports go out on fd 4 in a
// small line format (encode.go) rather than JSON, to keep encoding/json and
// its initialisation out of the init's path.
package boot

import (
	"os"
	"syscall"
)

// The argv[0] markers of a re-executed cairn.
const (
	InitArg0  = "cairn-sandbox-init"
	ProbeArg0 = "cairn-sandbox-probe"
	// HoldArg0 marks a process that only holds a user namespace open for
	// Run (the idmapping of writable mounts) until its stdin closes.
	HoldArg0 = "cairn-sandbox-userns"
)

// The init's inherited descriptors.
const (
	ConfigFD = 3
	ReportFD = 4
)

func init() {
	if len(os.Args) == 0 {
		return
	}
	switch os.Args[0] {
	case InitArg0:
		syscall.Exit(Main())
	case ProbeArg0:
		syscall.Exit(0)
	case HoldArg0:
		var b [1]byte
		for {
			if n, err := syscall.Read(0, b[:]); n <= 0 && err != syscall.EINTR {
				syscall.Exit(0)
			}
		}
	}
}
