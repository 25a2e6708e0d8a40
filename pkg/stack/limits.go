package stack

import (
	"fmt"

	"github.com/cairn-build/cairn/pkg/sandbox"
)

// Limits raise (or lower) a recipe's sandbox limits; zero fields keep the
// sandbox's defaults. A limit can only fail a step, never change what a
// step that succeeds writes, so the limits are not part of the action key
// beyond the recipe's own file.
type Limits struct {
	Memory     int64  // bytes
	Pids       uint64 // processes and threads
	OutputSize int64  // bytes: each file, and /build and /out after the step
	LogSize    int64  // bytes of log kept
}

// fileLimits is the [limits] table of recipe.toml.
type fileLimits struct {
	Memory     string `toml:"memory"`      // "8G", "512M"
	Pids       int64  `toml:"pids"`        // 1 to 1048576
	OutputSize string `toml:"output_size"` // "4G"
	LogSize    string `toml:"log_size"`    // "64M"
}

// limits checks the table and converts it.
func (v *validator) limits(fl fileLimits) Limits {
	var l Limits
	for _, f := range []struct {
		key, val string
		dst      *int64
		least    int64
	}{{"memory", fl.Memory, &l.Memory, 16 << 20}, {"output_size", fl.OutputSize, &l.OutputSize, 1}, {"log_size", fl.LogSize, &l.LogSize, 1 << 10}} {
		if f.val == "" {
			continue
		}
		n, err := sandbox.ParseSize(f.val)
		if err == nil && n < f.least {
			err = fmt.Errorf("%s: want at least %s", f.val, sandbox.FormatSize(f.least))
		}
		if err != nil {
			v.fail(v.lines.key("limits", 0, f.key), "limits."+f.key, err.Error())
			continue
		}
		*f.dst = n
	}
	if fl.Pids != 0 {
		if fl.Pids < 1 || fl.Pids > 1<<20 {
			v.fail(v.lines.key("limits", 0, "pids"), "limits.pids", fmt.Sprintf("%d: want 1 to 1048576", fl.Pids))
		} else {
			l.Pids = uint64(fl.Pids)
		}
	}
	return l
}
