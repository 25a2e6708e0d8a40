package sandbox

import (
	"os"

	"github.com/cairn-build/cairn/pkg/sandbox/internal/boot"
)

// Init is the re-exec entry for binaries that call it first in main. In
// practice the init takes over earlier: importing this package runs the
// init from a package initialiser (see internal/boot), before the rest of
// the binary's initialisers, and a re-executed process never reaches main.
// Init returns handled=false in every ordinary process.
func Init() (exitCode int, handled bool) {
	if len(os.Args) > 0 {
		switch os.Args[0] {
		case boot.InitArg0:
			return boot.Main(), true
		case boot.ProbeArg0:
			return 0, true
		}
	}
	return 0, false
}
