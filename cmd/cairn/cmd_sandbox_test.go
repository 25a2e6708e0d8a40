package main

import (
	"testing"

	"github.com/cairn-build/cairn/pkg/sandbox"
)

func TestParseMount(t *testing.T) {
	rows := []struct {
		spec     string
		writable bool
		want     sandbox.Mount
		bad      bool
	}{
		{spec: "musl=/s/musl", want: sandbox.Mount{Target: "/src/musl", Source: "/s/musl"}},
		{spec: "/deps/musl=/o/musl", want: sandbox.Mount{Target: "/deps/musl", Source: "/o/musl"}},
		{spec: "/out=/o", writable: true, want: sandbox.Mount{Target: "/out", Source: "/o", Writable: true}},
		{spec: "out=/o", writable: true, bad: true},
		{spec: "a/b=/x", bad: true},
		{spec: "musl", bad: true},
		{spec: "=/x", bad: true},
		{spec: "musl=", bad: true},
	}
	for _, r := range rows {
		got, err := parseMount(r.spec, r.writable)
		if r.bad {
			if err == nil {
				t.Errorf("parseMount(%q): got %+v, want an error", r.spec, got)
			}
			continue
		}
		if err != nil || got != r.want {
			t.Errorf("parseMount(%q): got %+v, %v, want %+v", r.spec, got, err, r.want)
		}
	}
}
