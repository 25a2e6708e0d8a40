package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Default limits: what a 2-core, 24 GiB machine survives with two steps at
// once and room to spare. A stack or recipe raises them ([limits]).
const (
	DefaultMemory     = 8 << 30
	DefaultPids       = 1024
	DefaultOutputSize = 1 << 30
	DefaultLogSize    = 32 << 20
)

// FormatSize writes n bytes the way the limits are given (8GiB, 512MiB, 100).
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseSize reads a size: a number of bytes, with an optional suffix K, M,
// G, T (powers of 1024, also written KiB, MiB...).
func ParseSize(s string) (int64, error) {
	num := s
	mult := int64(1)
	for _, u := range []struct {
		suf string
		n   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}} {
		if len(s) > len(u.suf) && s[len(s)-len(u.suf):] == u.suf {
			num, mult = s[:len(s)-len(u.suf)], u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with K, M, G or T", s)
	}
	return n * mult, nil
}

// headTail passes the first head bytes through at once, keeps the last
// tail bytes in a ring, and on Close writes a line saying how much was cut
// and then the tail: a runaway log is bounded, and what a reader needs
// (how it started, how it ended) stays.
type headTail struct {
	mu         sync.Mutex
	w          io.Writer
	head, tail int64
	written    int64 // of head
	ring       []byte
	pos        int   // next write position in ring
	full       bool  // ring has wrapped
	cut        int64 // bytes dropped between head and tail
	total      int64
}

func newHeadTail(w io.Writer, limit int64) *headTail {
	h := limit / 2
	return &headTail{w: w, head: h, tail: limit - h, ring: make([]byte, 0, min(limit-h, 1<<20))}
}

func (h *headTail) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(p)
	h.total += int64(n)
	if h.written < h.head {
		k := min(int64(len(p)), h.head-h.written)
		if _, err := h.w.Write(p[:k]); err != nil {
			return 0, err
		}
		h.written += k
		p = p[k:]
	}
	for len(p) > 0 {
		if h.tail == 0 {
			h.cut += int64(len(p))
			break
		}
		if int64(len(h.ring)) < h.tail && !h.full {
			k := min(int64(len(p)), h.tail-int64(len(h.ring)))
			h.ring = append(h.ring, p[:k]...)
			p = p[k:]
			if int64(len(h.ring)) == h.tail {
				h.full, h.pos = true, 0
			}
			continue
		}
		k := copy(h.ring[h.pos:], p)
		h.cut += int64(k)
		h.pos = (h.pos + k) % len(h.ring)
		p = p[k:]
	}
	return n, nil
}

// Close writes the tail; it returns how many bytes were cut.
func (h *headTail) Close() (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cut > 0 {
		msg := fmt.Sprintf("\n[cairn: output over the log limit of %s: %d bytes cut here; kept the first %d and the last %d of %d]\n",
			FormatSize(h.head+h.tail), h.cut, h.head, h.tail, h.total)
		if _, err := io.WriteString(h.w, msg); err != nil {
			return h.cut, err
		}
	}
	var err error
	if h.full {
		if _, err = h.w.Write(h.ring[h.pos:]); err == nil {
			_, err = h.w.Write(h.ring[:h.pos])
		}
	} else {
		_, err = h.w.Write(h.ring)
	}
	return h.cut, err
}

// apparentSize sums the sizes of the regular files under dir as stat
// reports them, holes and all, and symlink targets: what a tar of the tree
// would hold, so a sparse file counts at its full length.
func apparentSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrPermission) {
			// A directory the command made unreadable: what it holds
			// was bounded file by file (RLIMIT_FSIZE), and whoever packs
			// the tree will have to read it.
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	if os.IsNotExist(err) {
		err = nil
	}
	return total, err
}
