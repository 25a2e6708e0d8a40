package oci

import "github.com/cairn-build/cairn/pkg/stack"

// ConfigFor is the image config a stack's image declares, created at epoch
// (the stack's SourceDateEpoch).
func ConfigFor(img stack.Image, epoch int64) Config {
	return Config{
		Entrypoint: img.Entrypoint,
		Cmd:        img.Cmd,
		User:       img.User,
		Env:        img.Env,
		WorkingDir: img.WorkingDir,
		Ports:      img.Ports,
		StopSignal: img.StopSignal,
		Epoch:      epoch,
	}
}
