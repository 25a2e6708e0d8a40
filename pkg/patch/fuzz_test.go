package patch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzApply: whatever the patch text, Apply does not panic and changes
// nothing outside the tree.
func FuzzApply(f *testing.F) {
	for _, s := range []string{change5, strings.ReplaceAll(change5, "/f.txt", "/../outside.txt"),
		"diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n+x\n",
		"--- a/f.txt\n+++ /dev/null\n@@ -1,10 +0,0 @@\n-1\n-2\n-3\n-4\n-5\n-6\n-7\n-8\n-9\n-10\n"} {
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, strip int) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "tree")
		os.MkdirAll(filepath.Join(dir, "d"), 0o755)
		os.WriteFile(filepath.Join(dir, "f.txt"), []byte(ten), 0o644)
		os.Symlink("../outside.txt", filepath.Join(dir, "link"))
		outside := filepath.Join(parent, "outside.txt")
		os.WriteFile(outside, []byte(ten), 0o644)
		Apply(context.Background(), dir, []Patch{{Name: "fuzz", Data: data, Strip: strip % 4}})
		if got, err := os.ReadFile(outside); err != nil || string(got) != ten {
			t.Fatalf("outside.txt changed: %q %v", got, err)
		}
		ents, _ := os.ReadDir(parent)
		if len(ents) != 2 {
			t.Fatalf("%d entries beside the tree", len(ents))
		}
	})
}
