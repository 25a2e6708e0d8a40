package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// member is one entry of a test archive.
type member struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
	size     int64             // overrides len(body) in the header when set
	pax      map[string]string // PAX records
}

func reg(name, body string) member {
	return member{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func exe(name, body string) member {
	return member{name: name, typ: tar.TypeReg, mode: 0o755, body: body}
}
func dir(name string) member { return member{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) member {
	return member{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}
}
func hardlink(name, target string) member {
	return member{name: name, typ: tar.TypeLink, mode: 0o644, linkname: target}
}

// makeTar builds a tar archive from ms with headers made from scratch.
func makeTar(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		size := int64(len(m.body))
		if m.typ != tar.TypeReg {
			size = 0
		}
		if m.size != 0 {
			size = m.size
		}
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: m.mode, Linkname: m.linkname, Size: size,
			PAXRecords: m.pax}
		if m.typ == tar.TypeChar || m.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if m.pax != nil {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", m.name, err)
		}
		if m.typ == tar.TypeReg && m.body != "" {
			if _, err := tw.Write([]byte(m.body)); err != nil {
				t.Fatalf("tar body %q: %v", m.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gnuSparse returns a one-member tar whose header is patched to the old GNU
// sparse type 'S' (archive/tar cannot write it), checksum fixed.
func gnuSparse(t testing.TB, name string) []byte {
	t.Helper()
	b := makeTar(t, member{name: name, typ: tar.TypeReg, mode: 0o644})
	b[156] = tar.TypeGNUSparse
	copy(b[257:265], "ustar  \x00") // GNU magic, so that the reader honours 'S'
	for i := 148; i < 156; i++ {
		b[i] = ' '
	}
	var sum int64
	for _, c := range b[:512] {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// listTree returns every path under root (relative, sorted) with a type
// letter and, for symlinks, the target: a full picture of what was written.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s := rel + " " + fi.Mode().String()
		if fi.Mode()&fs.ModeSymlink != 0 {
			tg, _ := os.Readlink(p)
			s += " -> " + tg
		} else if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			s += " " + string(b)
		}
		out = append(out, s)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
