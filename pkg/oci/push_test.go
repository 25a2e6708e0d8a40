package oci

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cairn-build/cairn/internal/testenv"
)

func TestPushRegistry(t *testing.T) {
	skopeo := testenv.NeedTool(t, "skopeo")
	addr := testenv.StartRegistry(t)
	res := writeFixture(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	progress := make(chan v1.Update, 100)
	var last v1.Update
	got := make(chan struct{})
	go func() {
		for u := range progress {
			last = u
		}
		close(got)
	}()
	ref := addr + "/cairn/hello:v1"
	digest, err := Push(ctx, res.Layout, ref, WithProgress(progress))
	if err != nil {
		t.Fatal(err)
	}
	<-got
	if digest != res.Manifest {
		t.Errorf("Push: got digest %s, want the local %s", digest, res.Manifest)
	}
	if last.Total == 0 || last.Complete != last.Total {
		t.Errorf("progress: last update %+v, want complete", last)
	}

	var insp struct{ Digest string }
	run(t, &insp, skopeo, "inspect", "--tls-verify=false", "docker://"+ref)
	if insp.Digest != res.Manifest {
		t.Errorf("skopeo inspect: got %s, want %s", insp.Digest, res.Manifest)
	}
	// Copy it back into a layout and check the manifest and layer came back whole.
	back := filepath.Join(t.TempDir(), "back")
	run(t, nil, skopeo, "copy", "--src-tls-verify=false", "--preserve-digests", "docker://"+ref, "oci:"+back+":latest")
	var again struct {
		Digest string
		Layers []string
	}
	run(t, &again, skopeo, "inspect", "oci:"+back+":latest")
	if again.Digest != res.Manifest || len(again.Layers) != 1 || again.Layers[0] != res.Layer {
		t.Errorf("pulled back: got %+v, want digest %s layer %s", again, res.Manifest, res.Layer)
	}

	// Pushing again is idempotent and gives the same digest.
	if d, err := Push(ctx, res.Layout, addr+"/cairn/hello:latest"); err != nil || d != res.Manifest {
		t.Errorf("second push: got %s, %v, want %s", d, err, res.Manifest)
	}
}

func TestPushErrors(t *testing.T) {
	res := writeFixture(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name, dir, ref string
		is             error
	}{
		{"not a layout", t.TempDir(), dead + "/x:y", nil},
		{"bad reference", res.Layout, "UPPER/Case::", nil},
		{"nothing listening", res.Layout, dead + "/x:y", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Push(ctx, tc.dir, tc.ref)
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), tc.dir) && !strings.Contains(err.Error(), tc.ref) {
				t.Errorf("error %q names neither the layout nor the reference", err)
			}
		})
	}
}

func TestSchemeGuard(t *testing.T) {
	next := roundTripFunc(func(*http.Request) (*http.Response, error) { return &http.Response{StatusCode: 200}, nil })
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"http://127.0.0.1:5000/v2/", false, true},
		{"http://127.1.2.3/v2/", false, true},
		{"http://[::1]:5000/v2/", false, true},
		{"http://localhost:5000/v2/", false, true},
		{"http://10.0.0.1:5000/v2/", false, false},
		{"http://192.168.1.1/v2/", false, false},
		{"http://registry.example.invalid/v2/", false, false},
		{"http://127.0.0.1.example.invalid/v2/", false, false},
		{"http://registry.example.invalid/v2/", true, true},
		{"https://registry.example.invalid/v2/", false, true},
	} {
		req, err := http.NewRequest("GET", tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = schemeGuard{next: next, insecure: tc.insecure}.RoundTrip(req)
		if got := err == nil; got != tc.ok {
			t.Errorf("%s insecure=%v: got err %v, want ok=%v", tc.url, tc.insecure, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrPlainHTTP) {
			t.Errorf("%s: got %v, want ErrPlainHTTP", tc.url, err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPushClosesProgress: every return closes the progress channel, so a
// caller ranging over it cannot hang on an early error.
func TestPushClosesProgress(t *testing.T) {
	for _, ref := range []string{"UPPER/Case::", "127.0.0.1:1/x:y"} {
		ch := make(chan v1.Update, 10)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		if _, err := Push(context.Background(), t.TempDir(), ref, WithProgress(ch)); err == nil {
			t.Errorf("%s: got no error", ref)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: progress channel not closed", ref)
		}
	}
}
