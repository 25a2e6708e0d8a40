package oci

import (
	"fmt"
	"testing"

	"github.com/cairn-build/cairn/pkg/stack"
)

// Every run-time field a stack's [[image]] declares reaches the config.
func TestConfigFor(t *testing.T) {
	img := stack.Image{
		Name: "busybox", Recipe: "busybox-image",
		Entrypoint: []string{"/bin/tini", "--"}, Cmd: []string{"sh"}, User: "0:0",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/", Ports: []string{"53/udp"}, StopSignal: "SIGTERM",
	}
	got := ConfigFor(img, 42)
	want := Config{Entrypoint: img.Entrypoint, Cmd: img.Cmd, User: img.User, Env: img.Env,
		WorkingDir: img.WorkingDir, Ports: img.Ports, StopSignal: img.StopSignal, Epoch: 42}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Errorf("ConfigFor:\ngot  %#v\nwant %#v", got, want)
	}
}
