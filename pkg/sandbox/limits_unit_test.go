package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHeadTail(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int64
		want  string
		cut   int64
	}{
		{"short", 100, "short", 0},
		{"0123456789", 10, "0123456789", 0},
		{"0123456789abcdef", 10, "01234\n[cairn: output over the log limit of 10: 6 bytes cut here; kept the first 5 and the last 5 of 16]\nbcdef", 6},
		{"0123456789", 1, "\n[cairn: output over the log limit of 1: 9 bytes cut here; kept the first 0 and the last 1 of 10]\n9", 9},
	} {
		for _, chunk := range []int{1, 3, 1000} {
			var out bytes.Buffer
			h := newHeadTail(&out, tc.limit)
			for i := 0; i < len(tc.in); i += chunk {
				h.Write([]byte(tc.in[i:min(i+chunk, len(tc.in))]))
			}
			cut, err := h.Close()
			if err != nil || out.String() != tc.want || cut != tc.cut {
				t.Errorf("%q limit %d chunk %d: got %q cut %d, want %q cut %d", tc.in, tc.limit, chunk, out.String(), cut, tc.want, tc.cut)
			}
		}
	}
}

func TestApparentSize(t *testing.T) {
	d := t.TempDir()
	f, err := os.Create(filepath.Join(d, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(3 << 30) // no blocks
	f.Close()
	os.Mkdir(filepath.Join(d, "sub"), 0o755)
	os.WriteFile(filepath.Join(d, "sub", "f"), []byte("12345"), 0o644)
	os.Symlink("sparse", filepath.Join(d, "link"))
	if n, err := apparentSize(d); err != nil || n != 3<<30+5+6 {
		t.Errorf("got %d, %v, want %d", n, err, 3<<30+5+6)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"100": 100, "4K": 4 << 10, "512M": 512 << 20, "8G": 8 << 30, "2GiB": 2 << 30, "1T": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1G", "lots", "1.5G", "9999999999T"} {
		if _, err := ParseSize(in); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseSize(%q): got %v, want an error naming it", in, err)
		}
	}
	if FormatSize(8<<30) != "8GiB" || FormatSize(1000) != "1000" {
		t.Errorf("FormatSize: %s %s", FormatSize(8<<30), FormatSize(1000))
	}
}
