package main

import "github.com/cairn-build/cairn/pkg/sandbox"

// sandboxInitHook lets the sandbox package take over a re-executed cairn
// process (the sandbox's init) before cobra sees its arguments.
var sandboxInitHook = sandbox.Init
