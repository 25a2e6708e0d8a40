package main

import (
	"os"
	"syscall"
)

// testKillEnv names a point at which cairn kills itself with SIGKILL, for
// the crash tests (e2e_store_test.go, cmd_store_test.go): "step" (a step
// has written its first output), "storing" (an output synced, not yet
// renamed into the store), "xz" (a rootfs tarball half placed in out/),
// "oci" (an OCI layout being staged in out/), "mounted" (verify's tmpfs
// mounted). Read here only: packages below take a hook function.
const testKillEnv = "CAIRN_TEST_KILL_AT"

// testHook returns the hook for CAIRN_TEST_KILL_AT, or nil when unset.
func testHook() func(point string) {
	at := os.Getenv(testKillEnv)
	if at == "" {
		return nil
	}
	return func(point string) {
		if point == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not delivered synchronously
		}
	}
}
