package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
)

// The fixtures were made by dpkg-deb --root-owner-group -Z{xz,gzip,none}
// from one tree: usr/bin/hello (a script) and bin/hi -> ../usr/bin/hello.
func TestDataFixtures(t *testing.T) {
	want := []string{"./", "./bin/", "./bin/hi -> ../usr/bin/hello", "./usr/", "./usr/bin/", "./usr/bin/hello"}
	for _, tc := range []struct {
		file string
		comp Compression
	}{
		{"hello-xz.deb", XZ},
		{"hello-gzip.deb", Gzip},
		{"hello-none.deb", None},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rc, comp, err := Data(f)
			if err != nil {
				t.Fatalf("Data: %v", err)
			}
			defer rc.Close()
			if comp != tc.comp {
				t.Errorf("compression: got %s, want %s", comp, tc.comp)
			}
			var got []string
			var body []byte
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("tar: %v", err)
				}
				s := h.Name
				if h.Typeflag == tar.TypeSymlink {
					s += " -> " + h.Linkname
				}
				if h.Name == "./usr/bin/hello" {
					body, _ = io.ReadAll(tr)
				}
				got = append(got, s)
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("entries: got %q, want %q", got, want)
			}
			if string(body) != "#!/bin/sh\necho hello\n" {
				t.Errorf("usr/bin/hello: got %q", body)
			}
		})
	}
}

// arHeader formats one ar member header the way ar(5) lays it out.
func arHeader(name string, size string) string {
	return fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10s`\n", name, "0", "0", "0", "100644", size)
}

func member(name, body string) string {
	s := arHeader(name, fmt.Sprint(len(body))) + body
	if len(body)%2 == 1 {
		s += "\n"
	}
	return s
}

func TestArReader(t *testing.T) {
	in := arMagic + member("debian-binary", "2.0\n") + member("odd/", "abc") + member("x", "")
	a, err := NewArReader(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		h, err := a.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		b, err := io.ReadAll(a)
		if err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
		got = append(got, fmt.Sprintf("%s:%d:%o:%q", h.Name, h.Size, h.Mode, b))
	}
	want := []string{`debian-binary:4:100644:"2.0\n"`, `odd:3:100644:"abc"`, `x:0:100644:""`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Each row is one way an archive can lie; every one must be refused with
// a *FormatError and never read as a package.
func TestMalformed(t *testing.T) {
	good, err := os.ReadFile("testdata/hello-xz.deb")
	if err != nil {
		t.Fatal(err)
	}
	dataAt := bytes.Index(good, []byte("data.tar.xz"))
	bin := member("debian-binary", "2.0\n")
	ctl := member("control.tar", "")
	for _, tc := range []struct {
		name string
		in   string
		msg  string // a piece of the error text
	}{
		{"empty file", "", "bad magic"},
		{"bad magic", "!<arch\n" + bin, "bad magic"},
		{"empty archive", arMagic, "empty archive"},
		{"truncated header", arMagic + bin[:30], "truncated member header"},
		{"bad terminator", arMagic + strings.Replace(bin, "`\n", "xx", 1), "terminator"},
		{"size not decimal", arMagic + arHeader("debian-binary", "0x10") + "2.0\n", "bad size"},
		{"negative size", arMagic + arHeader("debian-binary", "-4") + "2.0\n", "bad size"},
		{"huge size", arMagic + arHeader("debian-binary", "9999999999") + "2.0\n", "bad size"},
		{"name with slash", arMagic + member("../evil", "x"), "invalid member name"},
		{"GNU name table", arMagic + member("//", "x"), "long-name table"},
		{"BSD long name", arMagic + member("#1/20", "x"), "BSD long name"},
		{"first not debian-binary", arMagic + member("control.tar", ""), "first member"},
		{"format version 3", arMagic + member("debian-binary", "3.0\n"), "format version"},
		{"no data member", arMagic + bin + ctl, "no data member"},
		{"data before control", arMagic + bin + member("data.tar", ""), "before control"},
		{"unknown member", arMagic + bin + ctl + member("evil", ""), "unexpected member"},
		{"two control members", arMagic + bin + ctl + ctl, "unexpected control"},
		{"unknown compression", arMagic + bin + ctl + member("data.tar.lz4", ""), "unknown data compression"},
		{"member truncated", arMagic + bin + ctl + arHeader("_x", "100") + "short", "truncated"},
		{"truncated real deb", string(good[:dataAt+arHeaderSize-16]), "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, _, err := Data(strings.NewReader(tc.in))
			if err == nil {
				rc.Close()
				t.Fatal("got no error")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("got %T %v, want a *FormatError", err, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q, want it to say %q", err, tc.msg)
			}
		})
	}
}

func TestZstdRefused(t *testing.T) {
	in := arMagic + member("debian-binary", "2.0\n") + member("control.tar.zst", "") + member("data.tar.zst", "x")
	_, comp, err := Data(strings.NewReader(in))
	if !errors.Is(err, ErrUnsupportedCompression) {
		t.Fatalf("got %v, want ErrUnsupportedCompression", err)
	}
	if comp != Zstd {
		t.Errorf("compression: got %s, want zstd", comp)
	}
}

// A data member cut short is seen by the tar reader as an error, not as a
// shorter package.
func TestTruncatedData(t *testing.T) {
	good, err := os.ReadFile("testdata/hello-none.deb")
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := Data(bytes.NewReader(good[:len(good)-5000]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("got %v, want a truncation *FormatError", err)
	}
}

// FuzzData: whatever the bytes, Data and the tar stream it returns end in
// an error or EOF, never a panic or a hang.
func FuzzData(f *testing.F) {
	for _, name := range []string{"hello-xz.deb", "hello-gzip.deb", "hello-none.deb"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(arMagic + member("debian-binary", "2.0\n")))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, _, err := Data(bytes.NewReader(b))
		if err != nil {
			return
		}
		defer rc.Close()
		io.Copy(io.Discard, io.LimitReader(rc, 16<<20))
	})
}
