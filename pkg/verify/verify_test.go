package verify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-build/cairn/pkg/plan"
	"github.com/cairn-build/cairn/pkg/store"
)

func TestMerge(t *testing.T) {
	got := Merge([]string{"PATH=/bin", "TZ=UTC", "HOME=/root"}, []string{"TZ=GMT-14", "EXTRA=1"})
	want := []string{"EXTRA=1", "HOME=/root", "PATH=/bin", "TZ=GMT-14"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDefaultVariation(t *testing.T) {
	for _, tc := range []struct{ ref, want int }{{0, 1}, {4, 1}, {1, 2}} {
		v := DefaultVariation(tc.ref, []string{"PATH=/usr/bin"})
		if v.Jobs != tc.want {
			t.Errorf("reference -j %d: got varied -j %d, want %d", tc.ref, v.Jobs, tc.want)
		}
		if v.Umask != 0o077 || v.Hostname == "" {
			t.Errorf("got umask %o, hostname %q; want 077 and a hostname", v.Umask, v.Hostname)
		}
		if p, _ := lookup(v.Env, "PATH"); !strings.HasPrefix(p, "/usr/bin:") {
			t.Errorf("got PATH %q, want the reference PATH extended", p)
		}
	}
}

func TestRootfsKey(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"busybox.rootfs.sha256-" + hex + ".tar.xz": "busybox.rootfs.tar.xz",
		"busybox.rootfs.sha256-short.tar.xz":       "busybox.rootfs.sha256-short.tar.xz",
		"busybox.spdx.json":                        "busybox.spdx.json",
	} {
		if got := rootfsKey(in); got != want {
			t.Errorf("rootfsKey(%q): got %q, want %q", in, got, want)
		}
	}
}

// storeWith makes a store holding one step output per name (a map of
// file name to content) and returns it with each output's digest.
func storeWith(t *testing.T, outputs map[string]map[string]string) (*store.Store, map[string]string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	digests := map[string]string{}
	for name, files := range outputs {
		dir, done, err := st.TempDir("out")
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		for f, data := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d, err := store.OutputDigest(ctx, dir, 1700000000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddOutput(ctx, dir, d, 1700000000); err != nil {
			t.Fatal(err)
		}
		digests[name] = d
	}
	return st, digests
}

func TestCompareSteps(t *testing.T) {
	ctx := context.Background()
	refStore, r := storeWith(t, map[string]map[string]string{"same": {"f": "x"}, "a": {"stamp": "100\n", "k": "k"}})
	varStore, v := storeWith(t, map[string]map[string]string{"same": {"f": "x"}, "b": {"stamp": "200\n", "k": "k"}})
	same, a, b := r["same"], r["a"], v["b"]
	rep := &Report{RefStore: refStore.Dir(), VariedStore: varStore.Dir()}
	ref := []plan.Status{
		{ID: "one", Cached: true, Output: same},
		{ID: "two", Cached: true, Output: a},
		{ID: "other", Cached: true, Output: a}, // not a target of the varied build
	}
	varied := []plan.Status{
		{ID: "one", Cached: true, Output: same},
		{ID: "two", Cached: true, Output: b},
		{ID: "other"},
	}
	if err := compareSteps(ctx, rep, ref, varied, refStore, varStore); err != nil {
		t.Fatal(err)
	}
	if len(rep.Outputs) != 2 {
		t.Fatalf("got %d outputs, want 2 (steps one and two)", len(rep.Outputs))
	}
	if o := rep.Outputs[0]; o.Name != "one" || !o.Reproducible || o.Diff != nil {
		t.Errorf("step one: got %+v, want reproducible", o)
	}
	o := rep.Outputs[1]
	if o.Name != "two" || o.Reproducible || o.Diff == nil || len(o.Diff.Changes) != 1 || o.Diff.Changes[0].Path != "stamp" {
		t.Errorf("step two: got %+v, want DIFFERS naming stamp", o)
	}
	if rep.Reproducible() {
		t.Error("report: got reproducible, want not")
	}
	// A step the varied build made that the reference store lacks is an error.
	err := compareSteps(ctx, rep, ref[:1], varied, refStore, varStore)
	if err == nil || !strings.Contains(err.Error(), "two") {
		t.Errorf("got %v, want an error naming step two", err)
	}
}

// A corrupt stored output is named as such, not reported as the step (or
// a later one) differing.
func TestCompareStepsCorruptStoredOutput(t *testing.T) {
	refStore, r := storeWith(t, map[string]map[string]string{"same": {"f": "x"}})
	varStore, _ := storeWith(t, map[string]map[string]string{"same": {"f": "x"}})
	p, _ := refStore.OutputPath(r["same"])
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := []plan.Status{{ID: "one", Cached: true, Output: r["same"]}}
	err := compareSteps(context.Background(), &Report{}, st, st, refStore, varStore)
	var se *StoredOutputError
	if !errors.As(err, &se) || se.Step != "one" || se.Which != "reference" {
		t.Fatalf("got %v, want a StoredOutputError for step one in the reference store", err)
	}
	if !strings.Contains(err.Error(), "stored output of step one does not match its digest") {
		t.Errorf("got %q, want it to say the stored output does not match", err)
	}
}

func TestCompareImages(t *testing.T) {
	hexA, hexB := strings.Repeat("a", 64), strings.Repeat("b", 64)
	write := func(dir, name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep := &Report{RefOut: t.TempDir(), VariedOut: t.TempDir()}
	write(rep.RefOut, "img.spdx.json", `{"same":1}`)
	write(rep.VariedOut, "img.spdx.json", `{"same":1}`)
	write(rep.RefOut, "img.provenance.json", `{"t":100}`)
	write(rep.VariedOut, "img.provenance.json", `{"t":200}`)
	write(rep.RefOut, "only.cdx.json", `{}`)
	// Not tarballs: named by digest, matched by image name; contents differ.
	write(rep.RefOut, "img.rootfs.sha256-"+hexA+".json", `1`)
	write(rep.VariedOut, "img.rootfs.sha256-"+hexB+".json", `1`)
	if err := compareImages(context.Background(), rep, "", ""); err != nil {
		t.Fatal(err)
	}
	got := map[string]Output{}
	var names []string
	for _, o := range rep.Outputs {
		got[o.Name] = o
		names = append(names, o.Name)
	}
	want := []string{"img.provenance.json", "img.rootfs.json", "img.spdx.json", "only.cdx.json"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("got outputs %v, want %v", names, want)
	}
	if !got["img.spdx.json"].Reproducible || !got["img.rootfs.json"].Reproducible {
		t.Errorf("got %+v, want img.spdx.json and img.rootfs.json reproducible", rep.Outputs)
	}
	if o := got["img.provenance.json"]; o.Reproducible || o.FirstDifference == nil || *o.FirstDifference != 5 {
		t.Errorf("img.provenance.json: got %+v, want DIFFERS at byte 5", o)
	}
	if o := got["only.cdx.json"]; o.Reproducible || o.PathB != "" {
		t.Errorf("only.cdx.json: got %+v, want DIFFERS, missing from the varied build", o)
	}
}
