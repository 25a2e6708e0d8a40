package sandbox

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

type ids struct{ uid, gid int }
type owner = ids

// chownTree walks the host directory (or file) top without following
// symlinks and swaps ownership between the invoking user and the build id:
// toBuild hands entries owned by from to build, !toBuild hands entries owned
// by build back to from. Every step is relative to an fd opened with
// O_NOFOLLOW, so a symlink planted by the command leads nowhere.
func chownTree(top string, from owner, build ids, toBuild bool) error {
	src, dst := build, from
	if toBuild {
		src, dst = from, build
	}
	fd, err := unix.Open(top, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := fix(fd, "", &st, src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	return walk(top, src, dst)
}

func fix(dirfd int, name string, st *unix.Stat_t, src, dst ids) error {
	uid, gid := -1, -1
	if int(st.Uid) == src.uid {
		uid = dst.uid
	}
	if int(st.Gid) == src.gid {
		gid = dst.gid
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	return unix.Fchownat(dirfd, name, uid, gid, flags)
}

func walk(dir string, src, dst ids) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return walkFD(fd, src, dst)
}

func walkFD(fd int, src, dst ids) error {
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	var errs []error
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := fix(fd, n, &st, src, dst); err != nil {
				errs = append(errs, err)
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if err := walkFD(sub, src, dst); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}
