package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/plan"
)

// TestBuildStepLimits: a recipe's [limits] reach its sandbox, and a step
// over one fails with the limit named in the error and in its log; a
// step's chmod u+s is refused with the path named in its log.
func TestBuildStepLimits(t *testing.T) {
	for _, tc := range []struct {
		name, script, limits string
		inErr, inLog         string
	}{
		{"hog", "mawk 'BEGIN { s = \"x\"; for (i = 0; i < 29; i++) s = s s; print length(s) }'\n", "\n[limits]\nmemory = \"64M\"\n",
			"went over its memory limit of 64MiB: the kernel's OOM killer", "OOM killer"},
		{"suid", "touch /out/s\nchmod u+s /out/s\n", "",
			"exit status 1", "changing permissions of '/out/s': Operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, map[string][2]string{tc.name: {"", tc.script}})
			rt := filepath.Join(f.dir, "recipes", tc.name, "recipe.toml")
			data, _ := os.ReadFile(rt)
			if err := os.WriteFile(rt, append(data, tc.limits...), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := f.builder(2).Build(context.Background())
			var se *plan.StepError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.inErr) {
				t.Fatalf("got %v, want a step error saying %q", err, tc.inErr)
			}
			if log, _ := os.ReadFile(se.Log); !strings.Contains(string(log), tc.inLog) {
				t.Errorf("log %s = %q, want %q", se.Log, log, tc.inLog)
			}
		})
	}
}
