package build

import (
	"testing"

	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/stack"
)

// An image's key changes with every field of its config, so a changed
// Cmd, PATH or stop signal writes a new image instead of reusing the old.
func TestImageKeyFollowsConfig(t *testing.T) {
	base := stack.Image{Name: "busybox", Recipe: "busybox-image", Cmd: []string{"sh"},
		Env: []string{"PATH=/bin"}, WorkingDir: "/", StopSignal: "SIGTERM"}
	key := func(img stack.Image) string { return plan.KeyOf(ImageLines(img, "sha256:00", 1)) }
	k0 := key(base)
	if key(base) != k0 {
		t.Fatal("the same image gives two keys")
	}
	for name, edit := range map[string]func(*stack.Image){
		"entrypoint":  func(i *stack.Image) { i.Entrypoint = []string{"/bin/sh"} },
		"cmd":         func(i *stack.Image) { i.Cmd = []string{"ls"} },
		"env":         func(i *stack.Image) { i.Env = []string{"PATH=/usr/bin:/bin"} },
		"user":        func(i *stack.Image) { i.User = "65534" },
		"working_dir": func(i *stack.Image) { i.WorkingDir = "/tmp" },
		"ports":       func(i *stack.Image) { i.Ports = []string{"53/udp"} },
		"stop_signal": func(i *stack.Image) { i.StopSignal = "SIGQUIT" },
		"no signal":   func(i *stack.Image) { i.StopSignal = "" },
	} {
		img := base
		edit(&img)
		if key(img) == k0 {
			t.Errorf("changing %s leaves the image key %s", name, k0)
		}
	}
}
