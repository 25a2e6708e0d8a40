// Package sandbox runs one command as one sandboxed process tree on Linux and
// reports how it ended.
//
// Run re-executes the running binary (/proc/self/exe) with a marker argv[0].
// Go cannot unshare a user namespace in a running, multi-threaded process, so
// the namespaces are made by clone(2) flags on the re-executed process:
// mount, pid, network, uts, ipc, cgroup, and a user namespace when the caller
// is not root (uid and gid 0 inside mapped to the caller). That process
// becomes the sandbox's init in a package initialiser of internal/boot, which
// depends on os and syscall only and so runs before the binary's other
// initialisers (2 to 3 ms of them in cairn); Init is there for a main that
// wants to say so explicitly. The resolved Spec travels to the init in a
// small quoted line format on an inherited pipe; setup failures and the
// final status come back on a second pipe.
//
// The init, holding every capability in its namespaces, builds the root fresh
// on a tmpfs, the way bubblewrap does: a scratch tmpfs is pivoted in so that
// the host's tree stays reachable at /oldroot while the new root is assembled;
// the root tree's top-level entries are bound read-only (symlinks such as
// bin -> usr/bin are recreated), the caller's mounts are bound read-only or
// writable, /tmp is a sized tmpfs, /dev holds only bind mounts of the host's
// null, zero, full, random, urandom and tty plus a private devpts and shm,
// /proc is new, and a synthetic /etc/passwd, /etc/group and /etc/hosts are
// layered over the root tree's /etc. Then the host is detached, the new root
// pivoted in, the tmpfs and /dev remounted read-only, the hostname set and
// lo brought up.
//
// Read-only binds alone do not hold: a process with CAP_SYS_ADMIN in the user
// namespace that owns the mount namespace can remount them writable. So the
// command never runs in the init's namespaces: the init starts it in a nested
// user and mount namespace, as uid 1000 and gid 100 (the Nix convention),
// with no_new_privs set. Mounts inherited by a less privileged mount
// namespace are locked by the kernel, and the command, a non-root uid after
// execve, holds no capabilities at all. Whatever it creates nested (another
// user namespace, say) still cannot unlock them.
//
// Who the command is on the host: without real root (an ordinary user, or
// root of a user namespace that maps only itself, as under unshare -r), uid
// 1000 inside maps to the caller, so files it writes to /out belong to the
// caller. With real root there is no outer user namespace, and the nested
// one maps uid 1000 to a dedicated host id (Spec.HostID, default
// DefaultHostID) rather than to root: root is exempt from RLIMIT_NPROC, so a
// fork bomb mapped to root would not stop. The writable mounts are then
// idmapped (mount_setattr MOUNT_ATTR_IDMAP through a user namespace mapping
// the caller to that id), so no file on disk changes owner. Since 5.14 the
// kernel counts RLIMIT_NPROC per user namespace, so each sandbox's nested
// namespace has its own process budget even when several run at once.
//
// Limits: each run gets a cgroup of its own under cairn's (memory with swap
// off, pids), joined by the init before it starts the command; where none
// can be made, rlimits per process instead, and Notice says so. A seccomp
// filter, installed last by the init and inherited by the command, refuses
// setuid and setgid modes, extended attributes and kernel surfaces a build
// never needs.
//
// The re-executed init is the cairn binary (runc CVE-2019-5736): the command
// cannot reach it, because the init sets PR_SET_DUMPABLE to 0 and lives in a
// more privileged user namespace than the command, so /proc/1/exe cannot be
// opened, and the host's path to the binary is not mounted.
//
// A terminal (Spec.TTY, for a shell): the init sits in a process group of
// its own and gives the command's group the terminal's foreground, so ^C
// reaches the command and not the init; Run takes the foreground back.
// Without a terminal the command runs in a new session (no TIOCSTI).
//
// The end: the init is pid 1 of its pid namespace and reaps every orphan;
// when the command exits the init exits, and the kernel kills every process
// left in the namespace before the host sees the init's exit. A time limit or
// a cancelled context kills the init with SIGKILL, which has the same effect.
// The init dies with Run's OS thread (PR_SET_DEATHSIG, with the thread locked,
// golang/go#27505), so a dying cairn takes its sandboxes with it.
package sandbox
