package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

type member struct {
	name, link string
	typ        byte
	data       string
}

func tarOf(t *testing.T, ms ...member) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.data))}
		if m.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(m.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestHostileTar: one row per input a layer must not be made from; each is
// refused with the entry named and a reason errors.Is can tell, and nothing
// is left in the output directory.
func TestHostileTar(t *testing.T) {
	good := tarOf(t, member{name: "etc/", typ: tar.TypeDir}, member{name: "etc/f", typ: tar.TypeReg, data: strings.Repeat("x", 2000)})
	for _, tc := range []struct {
		name  string
		input []byte
		entry string
		want  error
	}{
		{"dotdot", tarOf(t, member{name: "../evil", typ: tar.TypeReg, data: "x"}), "../evil", ErrEntryName},
		{"dotdot inside", tarOf(t, member{name: "a/../../evil", typ: tar.TypeReg}), "a/../../evil", ErrEntryName},
		{"absolute", tarOf(t, member{name: "/etc/passwd", typ: tar.TypeReg}), "/etc/passwd", ErrEntryName},
		{"char device", tarOf(t, member{name: "dev/null", typ: tar.TypeChar}), "dev/null", ErrEntryType},
		{"fifo", tarOf(t, member{name: "fifo", typ: tar.TypeFifo}), "fifo", ErrEntryType},
		{"dangling hard link", tarOf(t, member{name: "a", link: "nowhere", typ: tar.TypeLink}), "a", ErrEntryLink},
		{"xz, not tar", append(append([]byte{}, xzMagic...), bytes.Repeat([]byte{1}, 2000)...), "", ErrNotTar},
		{"truncated header", good[:700], "etc/", ErrNotTar},
		{"truncated data", good[:2024], "etc/f", ErrNotTar},
		{"empty", nil, "", ErrNotTar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Write(context.Background(), bytes.NewReader(tc.input), dir, "x", Config{})
			var ee *EntryError
			if !errors.As(err, &ee) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an *EntryError for %v", err, tc.want)
			}
			if ee.Entry != tc.entry {
				t.Errorf("entry: got %q, want %q", ee.Entry, tc.entry)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
	// A tar from another writer, with record padding after the end, passes.
	padded := append(good, make([]byte, 10240-len(good)%10240)...)
	if _, err := Write(context.Background(), bytes.NewReader(padded), t.TempDir(), "x", Config{}); err != nil {
		t.Errorf("padded tar: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"hello", true}, {"busybox-1.36", true}, {"a_b", true},
		{"", false}, {".x", false}, {"a/b", false}, {"Upper", false}, {"a:b", false}, {"a@b", false}, {"a b", false},
	} {
		if err := checkName(tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q): got %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
