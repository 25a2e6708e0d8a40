package sandbox

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrReservedEnv is returned (wrapped) when a Spec declares a variable the
// sandbox fixes itself.
var ErrReservedEnv = errors.New("variable is fixed by the sandbox")

// InputError says that an input of the Spec (the root tree or a mount's
// source) is missing or unusable on the host.
type InputError struct {
	What string // "root tree" or "mount /src/NAME"
	Path string // the host path
	Err  error
}

func (e *InputError) Error() string {
	return fmt.Sprintf("sandbox %s %s: %v", e.What, e.Path, e.Err)
}
func (e *InputError) Unwrap() error { return e.Err }

// SpecError is a Spec that cannot be run as written (a relative mount
// target, two mounts on one path...).
type SpecError struct {
	Field string
	Err   error
}

func (e *SpecError) Error() string { return fmt.Sprintf("sandbox spec %s: %v", e.Field, e.Err) }
func (e *SpecError) Unwrap() error { return e.Err }

// NamespaceError says that the kernel refused to create a namespace.
type NamespaceError struct {
	Namespace string // "user", "mount", "pid", "network", "uts", "ipc", "cgroup", or "" if no single one failed
	Err       error
}

func (e *NamespaceError) Error() string {
	name := e.Namespace
	if name == "" {
		name = "the set of"
	}
	msg := fmt.Sprintf("sandbox: the kernel refused to create %s namespace(s): %v", name, e.Err)
	if e.Namespace == "user" || e.Namespace == "" {
		msg += "; unprivileged user namespaces may be disabled: check the sysctls" +
			" kernel.unprivileged_userns_clone=1 (Debian, older kernels), user.max_user_namespaces (must be > 0)" +
			" and kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu), or run cairn as root"
	}
	return msg
}
func (e *NamespaceError) Unwrap() error { return e.Err }

// SetupError is a failure of the init while it built the sandbox, before the
// command started: Step names what it was doing, Path the path involved.
type SetupError struct {
	Step string
	Path string
	Err  error // a syscall.Errno when the failure was a system call
}

func (e *SetupError) Error() string {
	msg := fmt.Sprintf("sandbox setup: %s: %v", e.Step, e.Err)
	if e.Path != "" {
		msg = fmt.Sprintf("sandbox setup: %s %s: %v", e.Step, e.Path, e.Err)
	}
	if e.Step == "start command" && (errors.Is(e.Err, syscall.EACCES) || errors.Is(e.Err, syscall.EPERM)) {
		msg += "; the command's uid (1000 inside; the caller, or 0x70000000 as root) cannot execute it:" +
			" the root tree may be on a noexec mount, or on FUSE without allow_other (root cannot enter another" +
			" user's FUSE mount); put the store on a local filesystem, mount it with allow_other, or run cairn as its owner"
	}
	return msg
}
func (e *SetupError) Unwrap() error { return e.Err }
