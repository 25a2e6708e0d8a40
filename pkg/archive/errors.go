package archive

import (
	"errors"
	"fmt"
)

// Reasons an archive member is refused; test them with errors.Is on the
// *EntryError that Walk and Unpack return.
var (
	ErrUnsafePath     = errors.New("absolute path or .. component")
	ErrNameTooLong    = errors.New("name too long")
	ErrLinkEscape     = errors.New("symlink target leaves the tree")
	ErrThroughSymlink = errors.New("path goes through a symlink")
	ErrHardlink       = errors.New("hardlink target is not an earlier regular file")
	ErrTypeChange     = errors.New("entry changes the type of an earlier path")
	ErrDevice         = errors.New("device node")
	ErrFIFO           = errors.New("FIFO")
	ErrSpecialBits    = errors.New("setuid, setgid or sticky bit")
	ErrSparse         = errors.New("sparse file")
	ErrUnsupported    = errors.New("unsupported entry type")
	ErrTooLarge       = errors.New("unpacked size over the limit")
	ErrTooManyEntries = errors.New("entry count over the limit")
	ErrCorrupt        = errors.New("corrupt or truncated archive")
	ErrExists         = errors.New("path already exists on disk")
)

// ErrDirNotEmpty is returned by Unpack when DIR exists and holds entries
// and Merge was not given.
var ErrDirNotEmpty = errors.New("destination exists and is not empty")

// EntryError is a refused or unreadable archive member.
type EntryError struct {
	Archive string // as given by Name, or "archive"
	Entry   string // the member's name as written in the archive; "" before the first
	Reason  error  // one of the Err* sentinels above
	Err     error  // the underlying cause, if any
}

func (e *EntryError) Error() string {
	s := e.Archive
	if e.Entry != "" {
		s += fmt.Sprintf(": entry %q", e.Entry)
	}
	s += ": " + e.Reason.Error()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *EntryError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}
