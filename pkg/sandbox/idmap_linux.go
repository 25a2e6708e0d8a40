package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/cairn-build/cairn/pkg/sandbox/internal/boot"
	"golang.org/x/sys/unix"
)

// As root the command is a dedicated host id, and a writable mount is shown
// to it through an idmapped mount: the caller's uid and gid on disk appear
// as that id inside, and what the id writes lands on disk as the caller's.
// Nothing on disk changes owner, so a cairn killed at any moment leaves the
// tree as it was (the old way, chown to the id and back, lost setuid bits
// and file capabilities and, on kill -9, left the tree to the id).

// idmapUserNS is one user namespace per (caller, host id): uid and gid of
// the caller inside, the host id outside. A held process made it; the
// descriptor keeps it alive for the life of cairn.
type idmapKey struct{ uid, gid, host int }

var (
	idmapMu  sync.Mutex
	idmapFDs = map[idmapKey]int{}
)

func idmapUserNS(k idmapKey) (int, error) {
	idmapMu.Lock()
	defer idmapMu.Unlock()
	if fd, ok := idmapFDs[k]; ok {
		return fd, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer pr.Close()
	defer pw.Close()
	c := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{boot.HoldArg0}, Env: []string{}, Dir: "/", Stdin: pr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: k.uid, HostID: k.host, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: k.gid, HostID: k.host, Size: 1}},
			Pdeathsig:   syscall.SIGKILL,
		},
	}
	if err := c.Start(); err != nil {
		return -1, fmt.Errorf("user namespace for the idmapped mounts: %w", err)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", c.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	pw.Close()
	c.Wait()
	if err != nil {
		return -1, fmt.Errorf("user namespace for the idmapped mounts: %w", err)
	}
	idmapFDs[k] = fd
	return fd, nil
}

// idmappedMount returns a detached, recursive copy of the mount tree at
// src, nosuid, nodev and idmapped through the user namespace usernsFD, for
// the init to move into place.
func idmappedMount(src string, usernsFD int) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	a := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV, Userns_fd: uint64(usernsFD)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &a); err != nil {
		unix.Close(fd)
		return nil, idmapError(src, err)
	}
	return os.NewFile(uintptr(fd), "idmapped "+src), nil
}

// idmapError explains a filesystem that cannot be idmapped.
func idmapError(src string, e error) error {
	var st unix.Statfs_t
	fsName := "its filesystem"
	if unix.Statfs(src, &st) == nil {
		fsName = fmt.Sprintf("its filesystem (type 0x%x)", st.Type)
	}
	if errors.Is(e, syscall.EINVAL) || errors.Is(e, syscall.EPERM) || errors.Is(e, syscall.ENOTSUP) {
		return fmt.Errorf("%s does not support idmapped mounts (%v), and as root cairn maps a writable"+
			" directory that way rather than chown your files; use a directory on ext4, xfs, btrfs or tmpfs,"+
			" or run cairn as an ordinary user", fsName, e)
	}
	return fmt.Errorf("mount_setattr idmap: %w", e)
}
