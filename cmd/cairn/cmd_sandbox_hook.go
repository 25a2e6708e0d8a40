package main

// sandboxInitHook lets the sandbox package take over a re-executed cairn
// process before cobra sees its arguments. It is replaced by the sandbox
// wiring (cmd_sandbox.go) once that exists.
var sandboxInitHook = func() (int, bool) { return 0, false }
