package sandbox

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestNamespaceErrorHints(t *testing.T) {
	rows := []struct {
		ns        string
		wantHints bool
	}{{"user", true}, {"", true}, {"network", false}}
	for _, r := range rows {
		err := error(&NamespaceError{Namespace: r.ns, Err: syscall.EPERM})
		msg := err.Error()
		hints := strings.Contains(msg, "kernel.unprivileged_userns_clone") && strings.Contains(msg, "user.max_user_namespaces") &&
			strings.Contains(msg, "kernel.apparmor_restrict_unprivileged_userns")
		if hints != r.wantHints || !errors.Is(err, syscall.EPERM) || (r.ns != "" && !strings.Contains(msg, r.ns+" namespace")) {
			t.Errorf("%q: got %q, want the namespace named and hints %v", r.ns, msg, r.wantHints)
		}
	}
}

// TestStartErrorNamesNamespace: a refused clone is retried one namespace at
// a time; on a kernel that grants each alone, no single one is blamed.
func TestStartErrorNamesNamespace(t *testing.T) {
	err := startError(false, syscall.EPERM)
	var ne *NamespaceError
	if !errors.As(err, &ne) || !errors.Is(err, syscall.EPERM) {
		t.Fatalf("got %v, want a *NamespaceError wrapping EPERM", err)
	}
	if err := startError(false, syscall.ENOENT); errors.As(err, &ne) {
		t.Errorf("ENOENT: got %v, want a plain start error", err)
	}
}

func TestSetupErrorDiagnosis(t *testing.T) {
	err := &SetupError{Step: "start command", Path: "/bin/sh", Err: syscall.EACCES}
	if !strings.Contains(err.Error(), "FUSE without allow_other") || !strings.Contains(err.Error(), "/bin/sh") {
		t.Errorf("got %q, want the cause and the fix", err)
	}
}
