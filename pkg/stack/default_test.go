package stack

import (
	"path/filepath"
	"testing"
)

// The repository's own default stack must always load.
func TestDefaultStackLoads(t *testing.T) {
	st, err := Load(filepath.Join("..", "..", "toolchain", "stack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"musl", "busybox", "djbdns"} {
		if st.Source(name) == nil {
			t.Errorf("default stack lacks source %q", name)
		}
	}
	if m := st.Source("musl"); m.Pin.GitTree != "2deb5f7c62d8c9e9733c9ed77d9210b708bbb69e" {
		t.Errorf("musl git tree pin = %q", m.Pin.GitTree)
	}
}
