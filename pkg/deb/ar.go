package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// arMagic opens every ar archive; each member then has a 60-byte header.
const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
	// maxMemberSize bounds a member's declared size: a .deb's data member
	// is a few hundred MB at most, and a declared size over 4 GiB is a lie.
	maxMemberSize = 1 << 32
)

// FormatError reports a malformed ar archive or .deb. Offset is the byte
// offset in the archive where the problem was found; Member names the member
// being read, if any.
type FormatError struct {
	Offset int64
	Member string
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Member != "" {
		return fmt.Sprintf("member %q at offset %d: %s", e.Member, e.Offset, e.Msg)
	}
	return fmt.Sprintf("at offset %d: %s", e.Offset, e.Msg)
}

// Header describes one ar member. Only what a .deb reader needs is kept;
// timestamps and owners are deliberately not exposed, since nothing of
// them may reach a seed.
type Header struct {
	Name string
	Size int64
	Mode int64
}

// ArReader reads the members of an ar archive in order, as dpkg writes
// them: the common format, names of up to 16 bytes, optionally ending in
// "/" (GNU). GNU long-name tables and BSD "#1/" names are refused: no .deb
// has them, so one that does is not a .deb.
type ArReader struct {
	r      io.Reader
	off    int64 // offset of the next unread byte of r
	remain int64 // unread bytes of the current member
	pad    int64 // padding byte after the current member
	cur    string
	err    error
}

// NewArReader checks the archive's magic and returns a reader positioned
// before the first member.
func NewArReader(r io.Reader) (*ArReader, error) {
	var m [len(arMagic)]byte
	n, err := io.ReadFull(r, m[:])
	if err != nil || string(m[:]) != arMagic {
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, &FormatError{Offset: 0, Msg: "not an ar archive (bad magic)"}
		}
		return nil, err
	}
	return &ArReader{r: r, off: int64(n)}, nil
}

// Next skips the rest of the current member and returns the next member's
// header, or io.EOF after the last one.
func (a *ArReader) Next() (*Header, error) {
	if a.err != nil {
		return nil, a.err
	}
	if err := a.skip(a.remain); err != nil {
		return nil, a.fail(err)
	}
	if a.pad == 1 {
		// A missing final padding byte is tolerated, as GNU ar does: the
		// header read below then meets a clean end of archive.
		n, err := io.CopyN(io.Discard, a.r, 1)
		a.off += n
		if err != nil && err != io.EOF {
			return nil, a.fail(err)
		}
	}
	a.remain, a.pad, a.cur = 0, 0, ""

	var h [arHeaderSize]byte
	n, err := io.ReadFull(a.r, h[:])
	switch {
	case err == io.EOF:
		a.err = io.EOF
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, a.fail(&FormatError{Offset: a.off, Msg: fmt.Sprintf("truncated member header (%d of %d bytes)", n, arHeaderSize)})
	case err != nil:
		return nil, a.fail(err)
	}
	start := a.off
	a.off += int64(n)

	rawName := string(bytes.TrimRight(h[0:16], " "))
	if h[58] != '`' || h[59] != '\n' {
		return nil, a.fail(&FormatError{Offset: start, Member: rawName, Msg: "bad member header terminator"})
	}
	name, err := memberName(rawName)
	if err != nil {
		return nil, a.fail(&FormatError{Offset: start, Member: rawName, Msg: err.Error()})
	}
	size, err := decimalField(h[48:58])
	if err != nil || size > maxMemberSize {
		return nil, a.fail(&FormatError{Offset: start, Member: name, Msg: fmt.Sprintf("bad size field %q", bytes.TrimRight(h[48:58], " "))})
	}
	mode, err := octalField(h[40:48])
	if err != nil {
		return nil, a.fail(&FormatError{Offset: start, Member: name, Msg: fmt.Sprintf("bad mode field %q", bytes.TrimRight(h[40:48], " "))})
	}
	a.remain, a.pad, a.cur = size, size%2, name
	return &Header{Name: name, Size: size, Mode: mode}, nil
}

// Read reads from the current member; it returns io.EOF at the member's
// end and a FormatError if the archive ends first.
func (a *ArReader) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if a.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.remain {
		p = p[:a.remain]
	}
	n, err := a.r.Read(p)
	a.off += int64(n)
	a.remain -= int64(n)
	if err == io.EOF && a.remain > 0 {
		return n, a.fail(&FormatError{Offset: a.off, Member: a.cur, Msg: fmt.Sprintf("truncated: %d bytes missing", a.remain)})
	}
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return n, a.fail(err)
	}
	return n, nil
}

func (a *ArReader) fail(err error) error {
	a.err = err
	return err
}

func (a *ArReader) skip(n int64) error {
	if n == 0 {
		return nil
	}
	m, err := io.CopyN(io.Discard, a.r, n)
	a.off += m
	if err == io.EOF {
		return &FormatError{Offset: a.off, Member: a.cur, Msg: fmt.Sprintf("truncated: %d bytes missing", n-m)}
	}
	return err
}

// memberName validates a raw ar name. A member name is a plain file name:
// printable ASCII, no slash except one GNU terminator, not "." or "..".
func memberName(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty member name")
	}
	if raw == "/" || raw == "//" || raw == "/SYM64/" {
		return "", errors.New("symbol or long-name table (not used by .deb)")
	}
	if len(raw) > 3 && raw[:3] == "#1/" {
		return "", errors.New("BSD long name (not used by .deb)")
	}
	name := raw
	if name[len(name)-1] == '/' {
		name = name[:len(name)-1]
	}
	if name == "" || name == "." || name == ".." {
		return "", fmt.Errorf("invalid member name %q", raw)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '/' || c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("invalid member name %q", raw)
		}
	}
	return name, nil
}

func decimalField(b []byte) (int64, error) {
	s := string(bytes.TrimRight(b, " "))
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not decimal")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func octalField(b []byte) (int64, error) {
	s := string(bytes.TrimRight(b, " "))
	if s == "" {
		return 0, nil
	}
	return strconv.ParseInt(s, 8, 64)
}
